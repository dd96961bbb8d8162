"""A stream: the leaves of one draw laid end to end in one counter space, drawn by one loop.

:func:`jinit._tree.build.build_all` puts every unsharded leaf whose draw has an element-wise
form (``Draw.block``) into its draw's :class:`Stream` (on a CPU, ``group=True``): one loop
whose step is one kernel, compiled once per draw for the whole tree, in chunks of consecutive
leaves; each leaf is then cut out of the chunk's buffer and finished. A leaf's counters are its
own row-major indices under its own key: the bits of the leaf drawn alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jinit._rng import draws as _draws
from jinit._tree import sharding as _sharding
from jinit._tree import xla
from jinit._tree.keys import KeyTable
from jinit._tree.leaf import Leaf

# A Stream's rows: ROW consecutive counters under one key; a loop step draws STEP_ROWS rows
# (256 KiB of float32), a leaf's last row is padded (at most ROW - 1 spare draws per leaf).
ROW = 1024
STEP_ROWS = 64
# On GPU a step is a kernel launch and a host round trip (XLA:GPU runs a loop's condition on
# the host): up to 16x the rows (4 MiB of float32) make a stream's trips 16x fewer; the step is
# ``build.block_size`` (``fixed_step``), the same for every stream of the tree.
GPU_STEP_ROWS = 1024
# The fewest elements of a GPU block (``build.block_size``): a block is a loop trip.
MIN_BLOCK = 64 * ROW
# A padded entry of a stream's table of first rows: past every row (rows are int32 below it).
PAST = np.iinfo(np.int32).max


class Stream:
    """The leaves of one draw laid end to end in one counter space, drawn by one loop.

    Leaf ``m`` takes rows ``starts[m] .. starts[m + 1]`` of :data:`ROW` elements each; element
    ``e`` of its row ``r`` holds the value at row-major index ``(r - starts[m]) * ROW + e`` under
    its own key (:attr:`Draw.block <jinit.Draw>`), exactly as when the leaf is drawn alone (the
    end of its last row is spare). A loop step draws :data:`STEP_ROWS` rows, each row finding
    its leaf among ``starts``: the step's kernel depends on the draw alone, not on the leaves'
    shapes. The leaves are drawn in chunks of consecutive leaves of at most ``budget_rows``
    rows; every chunk's first row, step count and every leaf's offset in its chunk are read
    from traced tables at indices XLA sees as parameters (:class:`xla.Opaque`), so that all chunks'
    loops are one computation and all cuts of one shape and finish another, each compiled once.
    """

    def __init__(
        self,
        draw: _draws.Draw,
        keys: KeyTable,
        paths: list[str],
        sizes: list[int],
        budget_rows: int,
        step_rows: int = STEP_ROWS,
        fixed_step: bool = False,
        factors: list[Any] | None = None,
        dtype: Any = np.float32,
        table: int = 0,
        scales: list[Any] | None = None,
    ):
        rows = [-(-n // ROW) for n in sizes]
        starts = np.cumsum([0, *rows])
        self.step = step_rows if fixed_step else step_size(int(starts[-1]), step_rows)
        if starts[-1] >= 2**31 - self.step:
            raise ValueError(f"jinit: a stream of {starts[-1]} rows overflows its int32 rows.")
        self.chunks = list(_row_chunks(rows, budget_rows))
        first = np.array([starts[lo] for lo, _ in self.chunks])
        steps = np.array([-(-(starts[hi] - starts[lo]) // self.step) for lo, hi in self.chunks])
        chunk_of = np.repeat(np.arange(len(self.chunks)), [hi - lo for lo, hi in self.chunks])
        offsets = (starts[:-1] - first[chunk_of]) * ROW
        self.rows = int(steps.max(initial=0)) * self.step  # the most rows a chunk draws
        assert draw.block is not None  # (see _streamable)
        self.elementwise, self.args = draw.block, draw.args
        # The tables a step reads have ``table`` rows in every stream of a tree (the leaves'
        # rows padded with the last's: spare), so the step is one computation for all.
        pad = max(0, table - 1 - len(sizes))
        # finished in the step: each row times its leaf's factor, in the leaves' dtype
        self.dtype = np.dtype(dtype)
        self.factors = None
        if factors is not None:
            self.factors = _factors([*factors, *factors[-1:] * pad], keys.opaque.zero)
        # finished after the cut: each leaf times its factor (1 where it has none), read from a
        # table, so that every cut of one shape is one kernel (:meth:`cut`)
        self.scales = None
        if scales is not None:
            self.scales = _factors([1.0 if f is None else f for f in scales], keys.opaque.zero)
        self.opaque = keys.opaque
        self.words = jax.random.key_data(keys.take([*paths, *paths[-1:] * pad]))
        self.shift = lax.convert_element_type(keys.opaque.zero, np.uint32)  # (a traced 0)
        # Traced (not constants), so that reading them at opaque indices gives XLA parameters.
        self.starts, self.first, self.steps, self.offsets = (
            jnp.asarray(t, np.int32) + keys.opaque.zero
            for t in (np.append(starts, [PAST] * pad), first, steps, offsets)
        )

    def _at(self, table: jax.Array, j: int) -> jax.Array:
        return xla.row(table, self.opaque(j))

    def step_rows(self, first_row: jax.Array) -> jax.Array:
        """Rows ``first_row .. first_row + step`` of the stream, as ``(step, ROW)``: one loop
        step's draw."""
        return _draw_rows(
            self.elementwise,
            self.args,
            first_row,
            self.shift,
            self.starts,
            self.words,
            self.step,
            self.factors,
            self.dtype,
        )

    def draw_chunk(
        self, c: int, buffer: jax.Array, carry: list[jax.Array]
    ) -> tuple[jax.Array, list[jax.Array]]:
        """Chunk ``c``'s rows into the flat float32 ``buffer`` (in place), from its start.

        ``carry`` (float32 leaves cut from ``buffer`` before, or none) rides through the loop,
        and every step reads one element of each (:func:`xla.pipelined`): the loop then cannot
        start before those cuts are done, so it may overwrite the buffer they were cut from,
        and one buffer serves chunk after chunk. (A value computed from those leaves outside the
        loop does not order the cuts: XLA reads it from the buffer instead. Leaves of other
        dtypes are not carried: XLA's CPU backend would carry a bfloat16 array through a loop as
        a float32 copy. Their chunks reuse the buffer all the same when each new buffer is made
        from one element of each leaf, :func:`xla.zeros_after`; ``tests/test_grouping.py`` checks
        both.)
        """
        first, size = self._at(self.first, c), self.step * ROW
        return xla.pipelined(
            buffer,
            buffer[:size].reshape(self.step, ROW),
            self._at(self.steps, c),
            lambda i: self.step_rows(first + i * self.step),
            lambda z, d, i: lax.dynamic_update_slice(
                z, d.reshape(-1), (i * np.int32(size),), **xla.IN_BOUNDS
            ),
            wait=True,
            carry=carry,
        )

    def cut(
        self,
        buffer: jax.Array,
        m: int,
        shape: tuple[int, ...],
        apart: bool = False,
        dtype: Any = None,
    ) -> jax.Array:
        """Leaf ``m`` out of ``buffer``, which holds its chunk's rows. ``apart``: behind an
        ``optimization_barrier`` of its own, so that XLA does not fuse the cuts of a chunk into
        one kernel with several outputs (XLA:GPU's sibling fusion), which differs from chunk
        to chunk: each cut of one shape and finish stays one computation, compiled once for
        the whole tree, however deep (``python -m bench --aot cuda:h100 --depths 12,48``).
        ``dtype``: finished, times the leaf's factor from ``scales``, cast to ``dtype``."""
        hi, lo = self.opaque.parts(m)
        tables = (self.offsets, self.scales)
        if apart:  # (the index's parts and the tables, not their reads: the cut reads them)
            buffer, hi, lo, tables = lax.optimization_barrier((buffer, hi, lo, tables))
        offsets, scales = tables
        j = hi + lo
        offset = xla.row(offsets, j)
        out = lax.dynamic_slice(buffer, (offset,), (math.prod(shape),), **xla.IN_BOUNDS)
        if dtype is not None:
            assert scales is not None
            out = (out * xla.row(scales, j)).astype(dtype)
        return out.reshape(shape)


def _factors(factors: list[Any], zero: jax.Array) -> jax.Array:
    """The leaves' factors, a float32 table XLA cannot see is constant (plus a traced zero):
    a constant table would be sunk into the loop and be part of the step's kernel, one kernel
    per set of factors."""
    return jnp.stack(factors).astype(np.float32) + zero.astype(np.float32)


class Block:
    """The tables of a GPU block of one leaf (:func:`jinit._tree.build._draw_in_blocks`), made
    once, outside its loop: ``table`` rows, as a stream's, of the leaf's key (read at an index
    XLA sees as a parameter: one computation for every such leaf) and first row 0 (every row
    of a block is the leaf's); with ``factor``, each row's factor."""

    def __init__(self, keys: KeyTable, path: str, table: int, factor: Any = None) -> None:
        zero = keys.opaque.zero
        self.words = jnp.broadcast_to(jax.random.key_data(keys.one(path)), (table - 1, 2))
        self.starts = jnp.asarray([0, *[PAST] * (table - 1)], np.int32) + zero
        self.factors = None if factor is None else _factors([factor] * (table - 1), zero)

    def draw(
        self, draw: _draws.Draw, i: jax.Array, start: jax.Array, size: int, dtype: Any
    ) -> jax.Array:
        """Block ``i``: counters ``start .. start + size`` of the leaf (``size`` a stream's GPU
        step), drawn by the streams' step computation, as ``(size // ROW, ROW)``: the same
        kernels hash and transform it (with factors, finished in the step: times the factor,
        cast to ``dtype``). Its rows are ``i * size // ROW ..``, as a stream's step's, and its
        counters are shifted by ``start - i * size`` (mod 2**32: 0 but for the last block)."""
        assert draw.block is not None and size % ROW == 0  # (see blockwise, build.block_size)
        first_row = i * np.int32(size // ROW)
        u32 = functools.partial(lax.convert_element_type, new_dtype=np.uint32)
        shift = u32(start) - u32(i) * np.uint32(size)
        args = (draw.block, draw.args, first_row, shift, self.starts, self.words, size // ROW)
        return _draw_rows(*args, self.factors, np.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(0, 1, 6, 8))
def _draw_rows(
    elementwise: Callable[..., jax.Array],
    args: tuple[Any, ...],
    first_row: jax.Array,
    shift: jax.Array,
    starts: jax.Array,
    words: jax.Array,
    count: int,
    factors: jax.Array | None,
    dtype: np.dtype,
) -> jax.Array:
    """:meth:`Stream.step_rows`, jitted: traced once per draw, not once per chunk. Each row's
    key is its leaf's; ``elementwise`` is the draw's element-wise form (``Draw.block``); with
    ``factors``, each row is finished in the step: times its leaf's factor, cast to ``dtype``
    (``Sampling.factor``: the leaf's finish). Every counter is shifted by ``shift`` (a traced
    zero in a stream; a GPU block's, :class:`Block`). Both leave a barrier first: whatever
    computed them (a stream's wait for its buffer, a block's start), the step's kernels are
    the same."""
    first_row, shift = lax.optimization_barrier((first_row, shift))
    r = first_row + lax.iota(np.int32, count)
    m = jnp.searchsorted(starts, r, side="right", method="compare_all") - 1
    m = jnp.clip(m, 0, words.shape[0] - 1)
    k = words.at[m].get(mode="promise_in_bounds")
    first = r - starts.at[m].get(mode="promise_in_bounds")
    first = lax.convert_element_type(first, np.uint32) * np.uint32(ROW) + shift
    counters = first[:, None] + lax.broadcasted_iota(np.uint32, (count, ROW), 1)
    out = elementwise(k[:, 0:1], k[:, 1:2], counters, *args)
    if factors is None:
        return out
    return (out * factors.at[m].get(mode="promise_in_bounds")[:, None]).astype(dtype)


def block_rows(counters: jax.Array) -> jax.Array:
    """A GPU block's counters shaped as a stream step's ``(rows, ROW)``: one shape for every
    block and step of a tree, so that the hash's operands and the draw's transform are each one
    kernel, shared by the streams and the leaves drawn alone (a block of another size, as tests
    force, stays flat)."""
    return counters.reshape(-1, ROW) if counters.size % ROW == 0 else counters


def blockwise(draw: _draws.Draw, leaf: Leaf) -> bool:
    """Whether ``leaf`` can be drawn by its draw's block form (:attr:`Draw.block`), a block of
    counters at a time: a looped float32 draw with a block form, of a leaf on one device or
    replicated, of at most ``2**32`` elements."""
    return (
        draw.block is not None
        and not draw.vmap
        and np.dtype(draw.dtype) == np.float32
        and not _sharding.is_split(leaf.sharding)
        and math.prod(leaf.shape) <= 2**32
    )


def streamable(draw: _draws.Draw, leaf: Leaf, budget: int) -> bool:
    """Whether ``leaf`` is drawn in its draw's :class:`Stream`: :func:`blockwise`, and of at
    most half a chunk (a larger leaf is drawn alone)."""
    return blockwise(draw, leaf) and 2 * 4 * math.prod(leaf.shape) <= budget


def step_size(rows: int, step_rows: int) -> int:
    """The rows a stream of ``rows`` rows draws a step: ``step_rows``, or a quarter of a smaller
    stream (a step's words are temporaries: on GPU jax's hash kernel takes and returns them
    whole, six words an element)."""
    return min(step_rows, max(STEP_ROWS, -(-rows // 4)))


def _row_chunks(rows: list[int], budget_rows: int) -> Iterator[tuple[int, int]]:
    """Consecutive runs ``lo .. hi`` of leaves of at most ``budget_rows`` rows (at least one)."""
    lo, total = 0, 0
    for m, r in enumerate(rows):
        if m > lo and total + r > budget_rows:
            yield lo, m
            lo, total = m, 0
        total += r
    if rows:
        yield lo, len(rows)
