"""Builds every leaf of a planned tree inside one trace, drawing leaves that sample alike together.

Compile time, not sampling, is what a user waits for: XLA compiles one kernel per distinct sampler
expression, and a tree built one leaf at a time has one such kernel per leaf (a transformer's grows
with its depth). Here, the leaves whose initializers declare the same
:class:`~jinit._rng.draws.Draw` form a stream (:mod:`jinit._tree.stream`), whatever their shapes:
laid end to end in rows of ``ROW`` counters, each row under its leaf's key, they are drawn by one
loop whose step (a fixed number of rows) is one kernel, compiled once per draw for the whole tree;
each leaf is then cut out and finished (scaled, cast) in a cheap copy. A leaf's counters are its own
row-major indices under its own path key, as when it is drawn alone, so the values are bit-identical
to the per-leaf path (``tests/test_invariants.py``), and the number of sampler kernels depends on
the tree's draws, not on its depth or shapes (``tests/test_grouping.py``). Sharded leaves, and draws
without a block form (a batched QR), are grouped by draw, shape and sharding instead and drawn
stacked, one loop or one batched call per group.

Memory: a stream is drawn in chunks of at most :func:`chunk_budget` bytes of float32 draw (on
GPU, of a narrower tree's dtype, the rows finished in the loop: :func:`finished_in_step`), so
XLA's temporaries are about one chunk, whatever the tree's size (measured in
``bench/RESULTS.md``; bounded in ``tests/test_grouping.py``). Every chunk is drawn into a flat
buffer of the tree's one size, so XLA reuses the same memory for every chunk (in float32, a
chunk's loop carries the previous chunk's leaves so that it overwrites the buffer they were cut
from); sharded groups keep a stacked buffer per chunk. The price is one loop per chunk (XLA runs
its passes over each loop's copy of the step), and the number of loops does not grow with depth
once the tree is past :data:`SMALL_TREE_BYTES` (a leaf larger than half a chunk is drawn
alone). Every key, chunk start and cut offset is read at an index XLA sees as a parameter
(:class:`xla.Opaque`), so each computation is compiled once however many leaves or chunks use
it. Leaf paths' keys are derived at once (:class:`~jinit._tree.keys.KeyTable`). Leaves whose
initializer does not implement the protocol (a user's own ``init(key, shape, dtype)``),
non-threefry keys and non-float32 draws go leaf by leaf. A stack of layers
(``Init.stack``, :func:`jinit.stacked`) is its own loop, each layer under its unrolled path's
key.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import AxisType, NamedSharding, PartitionSpec, Sharding

from jinit import _value
from jinit._rng import draws as _draws
from jinit._rng import portable as _portable
from jinit._tree import keys as _keys
from jinit._tree import parts as _parts
from jinit._tree import sharding as _sharding
from jinit._tree import shards as _shards
from jinit._tree import stream as _stream
from jinit._tree import xla
from jinit._tree.leaf import Leaf

# A chunk's float32 draw (a narrower dtype's, where the loop finishes the leaves) is at most this
# fraction of the bytes a device holds (of SMALL_TREE_BYTES for a smaller tree), counted on that
# device (a split leaf's shard): the bound on XLA's temporaries (figures: bench/RESULTS.md). A
# stream's chunks share one buffer; a sharded group's stacked buffers, of several sizes, fragment
# XLA's heap and two are alive at once, so theirs are smaller. Fewer, larger chunks are fewer
# loops, and loops are most of the compile time (each loop's body is a copy of its draw's
# transform for XLA's passes).
CHUNK_FRACTION = {"flat": 0.08, "stacked": 0.0125}
SMALL_TREE_BYTES = 1 << 30
MAX_CHUNK_BYTES = 1 << 31  # (a flat buffer's int32 offsets stay below 2**29)


def _axis_types(s: NamedSharding) -> set[AxisType]:
    """The types of the mesh axes that ``s``'s spec names (empty when replicated)."""
    types = dict(zip(s.mesh.axis_names, s.mesh.axis_types, strict=True))
    return {types[n] for part in s.spec for n in _sharding.axes(part)}


def initializer_sharding(s: Sharding | None):
    """The `out_sharding` to hand an initializer: only specs over Explicit mesh axes.

    Under Auto axes, `jit(out_shardings=...)` already makes each device compute only its shard
    (jax's threefry is partitionable); jax.random refuses Auto axis names in `out_sharding`.
    """
    if isinstance(s, NamedSharding) and _axis_types(s) == {AxisType.Explicit}:
        return s
    return None


@contextlib.contextmanager
def leaf_errors(leaf: Leaf, where: str) -> Iterator[None]:
    """Re-raises an initializer's TypeError/ValueError with the parameter's path and rule."""
    try:
        yield
    except (TypeError, ValueError) as e:
        if type(e) not in (TypeError, ValueError):  # keep jax's own error types intact
            raise
        raise type(e)(f"`{where}`: the parameter {leaf.path!r} (rule {leaf.pattern!r}): {e}") from e


def _checked(out: jax.Array, leaf: Leaf, where: str) -> jax.Array:
    if not (hasattr(out, "shape") and hasattr(out, "dtype")):  # e.g. a Python float
        raise TypeError(
            f"`{where}`: the initializer for {leaf.path!r} (rule {leaf.pattern!r}) must return "
            f"an array of {leaf.dtype}{list(leaf.shape)}; got {type(out).__name__} {out!r}."
        )
    if tuple(out.shape) != leaf.shape or np.dtype(out.dtype) != leaf.dtype:
        raise ValueError(
            f"`{where}`: the initializer for {leaf.path!r} (rule {leaf.pattern!r}) "
            f"returned {out.dtype}{list(out.shape)}; expected "
            f"{leaf.dtype}{list(leaf.shape)}."
        )
    return out


def _paths(leaf: Leaf, where: str) -> list[str]:
    """The paths whose keys ``leaf`` needs: its own, or its layers' unrolled paths."""
    v = _value.of(leaf.init)
    if v is not None and v.stack is not None:
        with leaf_errors(leaf, where):
            return v.stack.paths(leaf.path, leaf.shape)
    return [leaf.path]


def build_one(keys: _keys.KeyTable, leaf: Leaf, where: str) -> jax.Array:
    """One leaf, by calling its initializer with its path key (a stack: each layer's key)."""
    v = _value.of(leaf.init)
    if v is not None and v.stack is not None:
        layers = keys.take(v.stack.paths(leaf.path, leaf.shape))
        with leaf_errors(leaf, where):
            return _checked(v.layers(layers, leaf.shape, leaf.dtype), leaf, where)
    key = keys.one(leaf.path)
    out_sharding = initializer_sharding(leaf.sharding)
    with leaf_errors(leaf, where):
        if out_sharding is None:  # Flax's documented form: init(key, shape, dtype)
            out = leaf.init(key, leaf.shape, leaf.dtype)
        elif _takes_out_sharding(leaf.init):
            out = leaf.init(key, leaf.shape, leaf.dtype, out_sharding)
        else:  # a three-argument init: made whole, then laid out
            out = _checked(leaf.init(key, leaf.shape, leaf.dtype), leaf, where)
            out = jax.sharding.reshard(out, out_sharding)
    return _checked(out, leaf, where)


def _takes_out_sharding(init: Any) -> bool:
    """Whether ``init`` can be called as ``init(key, shape, dtype, out_sharding)``."""
    try:
        signature = inspect.signature(init)
    except (TypeError, ValueError):  # no signature to read (some builtins): assume jax's form
        return True
    try:
        signature.bind(None, None, None, None)
    except TypeError:
        return False
    return True


def chunk_budget(leaves: Sequence[Leaf]) -> int:
    """The most bytes of float32 draw one chunk may hold on a device, for this tree."""
    total = sum(math.prod(shape_of_shard(leaf)) * leaf.dtype.itemsize for leaf in leaves)
    kind = "stacked" if any(_sharding.is_split(leaf.sharding) for leaf in leaves) else "flat"
    return min(MAX_CHUNK_BYTES, int(CHUNK_FRACTION[kind] * max(total, SMALL_TREE_BYTES)))


def _chunks(members: list[Any], nbytes: int, budget: int) -> Iterator[list[Any]]:
    """Consecutive runs of `members`, each of at most `budget` bytes (at least one member)."""
    per = max(1, budget // max(nbytes, 1))
    for i in range(0, len(members), per):
        yield members[i : i + per]


def _batch_sharding(s: Sharding | None) -> NamedSharding | None:
    """A leaf's NamedSharding with an unsharded leading (batch) axis."""
    if not isinstance(s, NamedSharding):
        return None
    return NamedSharding(s.mesh, PartitionSpec(None, *s.spec))


def _draw_batch(
    draw: _draws.Draw,
    keys: jax.Array,
    shape: tuple[int, ...],
    sharding: Any,
    after: list[jax.Array],
    after_shardings: Sequence[Any] = (),
    factors: tuple[jax.Array, Any] | None = None,
    block: int = 0,
) -> jax.Array:
    """``draw`` for every key, stacked on a new leading axis, each device making its shard;
    with ``factors`` (a factor per key and a dtype), each leaf finished: times its factor, cast.

    A loop, not a ``vmap`` (unless ``draw.vmap``): its body is one kernel, compiled once, and
    XLA cannot fuse it into the leaves' copies (a vmapped sampler behind an
    ``optimization_barrier`` compiles well on a GPU, but XLA's CPU pipeline drops the barrier,
    materialises the ``erf_inv`` halves and re-fuses the hash into every copy).

    The loop's buffer is made from one element of each array of ``after`` (the previous chunk's
    leaves), so it exists only once the previous loop has ended: without that data dependence
    XLA's scheduler allocates every chunk's buffer at the start. (XLA reads that element from
    the previous chunk's buffer, so two chunks' buffers are alive at once, and buffers of
    several sizes fragment its heap. Unsharded leaves are drawn in a stream instead.)
    """
    n, batch, leaf_sharding = (
        keys.shape[0],
        _batch_sharding(sharding),
        initializer_sharding(sharding),
    )
    # Explicit axes: the buffer's type carries the sharding; Auto axes: a constraint; a
    # replicated leaf needs neither (jit's out_shardings place it).
    place: Callable[[jax.Array, Any], jax.Array] = lambda x, _: x
    if leaf_sharding is not None:
        place = jax.sharding.reshard
    elif batch is not None and _axis_types(batch) == {AxisType.Auto}:
        place = lax.with_sharding_constraint
    if draw.vmap:  # one batched call (a batched QR): no loop buffer to order
        return place(jax.vmap(lambda k: draw(k, shape))(keys), batch)
    dtype = draw.dtype if factors is None else factors[1]
    if after and batch is not None and _shards.on_one_mesh([*after_shardings, batch]):
        # each device makes its part from its own parts of `after`: no collective
        z = _shards.zeros_after_parts(after, after_shardings, (n, *shape), dtype, batch)
    else:
        z = xla.zeros_after(after or [jax.random.key_data(keys)], (n, *shape), dtype)
    z = place(z, batch)
    # (A sharded buffer's element lives on one device: reading it would cost a collective.)
    local = _shards.local(draw, shape, sharding)
    z, _ = xla.pipelined(
        z,
        z[0],
        n,
        lambda i: (
            _shards.draw(draw, keys[i], shape, sharding, _in_loop(factors, i), block)
            if local
            else draw(keys[i], shape, leaf_sharding)
        ),
        lambda z, d, i: lax.dynamic_update_index_in_dim(z, d, i, 0, **xla.IN_BOUNDS),
        wait=not _sharding.is_split(batch),
    )
    return place(z, batch)


def _in_loop(
    factors: tuple[jax.Array, Any] | None, i: jax.Array
) -> Callable[[jax.Array], jax.Array]:
    """What the loop does to key ``i``'s shard: times ``factors[0][i]``, cast to
    ``factors[1]``; without ``factors`` nothing (the cut finishes the leaf), still given as a
    finish so that :func:`_shards.draw <jinit._tree.shards.draw>` draws the shard in blocks of
    the tree's one shape: one transform kernel for every shard's shape."""
    if factors is None:
        return lambda v: v
    return lambda v: (v * factors[0][i]).astype(factors[1])


# The platforms on which leaves are grouped into streams by default (``init_tree(group=None)``).
# Chosen by measurement (bench/RESULTS.md, ``python -m bench`` and ``python -m bench --aot``):
# on a CPU, streams compile in a fraction of the per-leaf time (XLA:CPU compiles each kernel
# with LLVM) and run as fast. On TPU (one chip, deviceless: ``python -m bench --aot tpu:v5e:2x2``)
# a user waits for the compile plus the run, and the compile is seconds where the run is
# milliseconds: XLA:TPU compiles every kernel that holds the hash on its own, and the streams hold
# a hash kernel per loop where one kernel per leaf holds one per leaf shape (fused) and grows
# with depth (GPT-2 small 4.7 s against 6.0, 48 layers 8.3 s against 18.3, LLaMA-1B 10.9 s
# against 14.7). The streams' run is longer (their rows are drawn into a buffer, then cut out and
# laid out leaf by leaf: 3 to 10x writing the bytes in XLA's cost model, 3 to 30 ms), but
# that is under 1% of the compile it saves; their temporaries stay under 10% of the chip's
# parameters. A leaf split over chips is drawn alone there (:data:`SPLIT_ALONE_PLATFORMS`).
# On GPU (the H100 compiler, deviceless: ``python -m bench --aot
# cuda:h100``), what a user waits for is XLA:GPU's compile, which runs LLVM and ptxas on every
# kernel that holds the hash and its transform: a kernel per leaf is one copy per leaf, the
# streams one per draw (figures: bench/RESULTS.md, "GPU compiler, deviceless"). On GPU
# a stream's step is a block (:func:`block_size`, at most GPU_STEP_ROWS rows: a trip is a host
# round trip), the shape in which a leaf drawn alone is drawn too, so that each draw's transform
# is one kernel (``stream.block_rows``); and leaves of every dtype ride through the next chunk's
# loop, so one buffer serves every chunk.
GPU_SCHEDULE = "streams"  # "streams" or "per-leaf" on cuda/rocm devices
GPU_PLATFORMS = frozenset({"cuda", "rocm", "gpu"})
GROUPED_PLATFORMS = frozenset({"cpu", "tpu"}) | (
    GPU_PLATFORMS if GPU_SCHEDULE == "streams" else set()
)
# The platforms on which a leaf split over devices is drawn alone, also when grouping: one
# kernel per leaf, each device writing its shard in place (TPU: LLaMA-7B over 16 chips, 27.0 s
# so, the same program as ``group=False``, against 32.6 s in batched loops of 44 trips;
# bench/RESULTS.md).
SPLIT_ALONE_PLATFORMS = frozenset({"tpu"})


# On a CPU, a draw whose streamable leaves have fewer shapes than this, and at most 1/8 of a
# chunk's bytes, is drawn by shape groups (its leaves of one shape: one kernel): a stream's loop
# (its row lookup, its cuts) compiles slower than that kernel (the adapters of fine-tuning
# surgery, ``python -m bench surgery``), and so small a group's buffer costs no memory.
STREAM_SHAPES = 2


def _grouped_instead(leaves: Sequence[Leaf], members: list[Any], budget: int) -> bool:
    shapes = {leaves[i].shape for i, _ in members}
    nbytes = sum(4 * math.prod(leaves[i].shape) for i, _ in members)
    return len(shapes) < STREAM_SHAPES and 8 * nbytes <= budget


def platform_of(leaves: Sequence[Leaf]) -> str:
    """The platform the tree is built on: its sharded leaves' devices', else jax's default."""
    for leaf in leaves:
        platform = _sharding.platform(leaf.sharding)
        if platform is not None:
            return platform
    return jax.default_backend()


def default_group(leaves: Sequence[Leaf]) -> bool:
    """``group``'s value when not given: streams where they win (:data:`GROUPED_PLATFORMS`)."""
    return platform_of(leaves) in GROUPED_PLATFORMS


def build_all(
    root: jax.Array,
    leaves: Sequence[Leaf],
    where: str,
    group: bool = True,
    portable: bool = False,
    table: Any = None,
) -> list[jax.Array]:
    """Every leaf, in order: grouped draws where the protocol allows (and ``group``), else one
    by one; ``portable``: with the portable samplers (:mod:`jinit._rng.portable`); ``table``:
    the key table of :func:`key_paths`, made on the host (:meth:`KeyTable.host_table
    <jinit._tree.keys.KeyTable.host_table>`), or ``None`` to derive it here."""
    with _portable.mode(portable):
        return _build_all(root, leaves, where, group, portable, table)


def key_paths(leaves: Sequence[Leaf], where: str) -> list[str]:
    """The paths whose keys the leaves need, in the key table's order."""
    return [p for leaf in leaves for p in _paths(leaf, where)]


Members = list[tuple[int, _draws.Sampling]]  # (leaf index, its sampling), in tree order


def _build_all(
    root: jax.Array,
    leaves: Sequence[Leaf],
    where: str,
    group: bool,
    portable: bool,
    table: Any,
) -> list[jax.Array]:
    if portable:
        _check_portable(root, leaves, where)
    keys = _keys.KeyTable(root, key_paths(leaves, where), table)
    outs: list[Any] = [None] * len(leaves)
    budget = chunk_budget(leaves)
    streams: dict[_draws.Draw, Members] = {}
    groups: dict[tuple[Any, ...], Members] = {}
    split_alone = platform_of(leaves) in SPLIT_ALONE_PLATFORMS
    for i, leaf in enumerate(leaves):
        s = None
        v = _value.of(leaf.init)
        alone = split_alone and _sharding.is_split(leaf.sharding)
        if group and not alone and (v is None or v.stack is None):  # a stack is its own loop
            with leaf_errors(leaf, where):
                s = _draws.sampling_of(leaf.init, leaf.shape, leaf.dtype)
                s = _draws.applicable(s, root, leaf.shape, portable, where)
        if s is None or 0 in leaf.shape:
            outs[i] = build_one(keys, leaf, where)  # (an empty leaf: nothing to draw)
        elif _stream.streamable(s.draw, leaf, budget):
            streams.setdefault(s.draw, []).append((i, s))
        else:
            groups.setdefault((s.draw, leaf.shape, leaf.sharding), []).append((i, s))
    if platform_of(leaves) not in GPU_PLATFORMS:  # a small draw of one shape: one kernel
        for draw in [d for d, ms in streams.items() if _grouped_instead(leaves, ms, budget)]:
            for i, s in streams.pop(draw):
                groups.setdefault((s.draw, leaves[i].shape, leaves[i].sharding), []).append((i, s))
    # the rows of every stream's tables (one step computation for all); a leaf drawn alone in
    # blocks on GPU is drawn by that step too, unless the tree has split leaves, whose shards
    # are drawn in blocks of their own computation (``shards.draw``), which it then shares
    table = 1 + max((len(members) for members in streams.values()), default=1)
    previous = _draw_streams(streams, keys, leaves, outs, budget, where, table)
    split = any(_sharding.is_split(leaf.sharding) for leaf in leaves)
    block = block_size(leaves)
    _draw_groups(groups, keys, leaves, outs, budget, previous, where, block, 0 if split else table)
    return outs


def _check_portable(root: jax.Array, leaves: Sequence[Leaf], where: str) -> None:
    """Portable mode needs a threefry key and jinit's initializers (jax.random's values differ
    between backends)."""
    _portable.check_key(where, root)
    for leaf in leaves:
        if not _value.covers(leaf.init):
            raise ValueError(
                f"`{where}(portable=True)`: the parameter {leaf.path!r} has the initializer "
                f"{leaf.init!r}, which is not jinit's: it draws with jax.random, whose "
                "values differ between backends. Use a jinit initializer for it."
            )


def _finish(
    outs: list[Any],
    leaves: Sequence[Leaf],
    i: int,
    s: _draws.Sampling,
    row: jax.Array,
    where: str,
) -> None:
    """Leaf ``i`` from its drawn ``row``: its sampling's finish (scale, shift, cast), checked."""
    with leaf_errors(leaves[i], where):
        outs[i] = _checked(s.finish(row), leaves[i], where)


def _draw_streams(
    streams: dict[_draws.Draw, Members],
    keys: _keys.KeyTable,
    leaves: Sequence[Leaf],
    outs: list[Any],
    budget: int,
    where: str,
    table: int,
) -> list[int]:
    """Every stream's chunks, each leaf cut out and finished into ``outs``; returns the leaves
    of the last chunk (what the next loop waits for). Each stream's tables have ``table`` rows.

    Every chunk's buffer has one size, so XLA reuses the same memory for all of them (buffers
    of many sizes fragment its heap); in float32 the previous chunk's leaves ride through the
    next loop, which then overwrites their buffer (one buffer in all). On GPU, where every
    streamed leaf's finish is a factor and a cast to one narrower dtype (:func:`finished_in_step`,
    e.g. a bfloat16 model's), the steps finish the rows and the buffer holds that dtype: a chunk
    of the same bytes holds more leaves, and the tree has fewer loops (each one XLA's passes run
    over)."""
    on_gpu = platform_of(leaves) in GPU_PLATFORMS
    dtype = finished_in_step(leaves, streams) if on_gpu else None
    budget_rows = max(1, budget // (np.dtype(dtype or np.float32).itemsize * _stream.ROW))
    step = block_size(leaves) // _stream.ROW if on_gpu else _stream.STEP_ROWS
    runs = []
    for draw, members in streams.items():
        paths = [leaves[i].path for i, _ in members]
        sizes = [math.prod(leaves[i].shape) for i, _ in members]
        factors = [s.factor for _, s in members]
        stream = _stream.Stream(
            draw,
            keys,
            paths,
            sizes,
            budget_rows,
            step_rows=step,
            fixed_step=on_gpu,
            factors=None if dtype is None else factors,
            dtype=dtype or np.float32,
            table=table,
            scales=factors if on_gpu and dtype is None else None,
        )
        runs += [(stream, members, c) for c in range(len(stream.chunks))]
    flat_size = max((st.rows * _stream.ROW for st, _, _ in runs), default=0)
    buffer: jax.Array | None = None
    previous: list[int] = []  # the leaves of the last chunk drawn in a loop
    for stream, members, c in runs:
        after = [outs[i] for i in previous]
        carry: list[jax.Array] = []
        # (XLA:CPU would carry a bfloat16 leaf as a float32 copy; XLA:GPU carries it as it is)
        if buffer is not None and (on_gpu or all(x.dtype == np.float32 for x in after)):
            carry = after  # they were cut from `buffer`: it is reused once they exist
        else:
            buffer = xla.zeros_after(after or [keys.data], (flat_size,), stream.dtype)
        buffer, carry = stream.draw_chunk(c, buffer, carry)
        for i, x in zip(previous if carry else [], carry, strict=True):
            outs[i] = x
        lo, hi = stream.chunks[c]
        for m in range(lo, hi):
            i, s = members[m]
            # finished in the step, or by a factor read from a table (a kernel per shape)
            scaled = dtype is None and on_gpu and s.factor is not None
            finish = leaves[i].dtype if scaled else None
            cut = stream.cut(buffer, m, leaves[i].shape, on_gpu, finish)
            if dtype is not None or scaled:
                outs[i] = _checked(cut, leaves[i], where)
            else:
                _finish(outs, leaves, i, s, cut, where)
        previous = [i for i, _ in members[lo:hi]]
    return previous


def finished_in_step(leaves: Sequence[Leaf], streams: dict[_draws.Draw, Members]) -> Any:
    """The dtype in which the streams' steps finish their rows, or ``None`` (the cuts finish
    them): the streamed leaves' one dtype, where it is narrower than float32 and every streamed
    leaf's finish is a factor (:attr:`Sampling.factor <jinit.Sampling>`) and a cast."""
    members = [(i, s) for ms in streams.values() for i, s in ms]
    dtypes = {np.dtype(leaves[i].dtype) for i, _ in members}
    if len(dtypes) != 1 or any(s.factor is None for _, s in members):
        return None
    (dtype,) = dtypes
    return dtype if dtype.itemsize < 4 else None


def block_size(leaves: Sequence[Leaf]) -> int:
    """The elements of a block, for a leaf (or one device's shard) drawn a block at a time on
    GPU (:func:`_draw_in_blocks`, :func:`jinit._tree.shards.draw`): a block's words are the
    temporaries (jax's hash kernel takes four uint32 words an element and returns two), at most
    :data:`BLOCK_FRACTION` of the bytes a device holds, and at most a stream's GPU step
    (``GPU_STEP_ROWS * ROW``), at least :data:`MIN_BLOCK` (a block is a loop trip)."""
    held = sum(math.prod(shape_of_shard(leaf)) * leaf.dtype.itemsize for leaf in leaves)
    most = _stream.GPU_STEP_ROWS * _stream.ROW
    words = min(most, max(MIN_BLOCK, int(BLOCK_FRACTION * held) // 24))
    return words // _stream.ROW * _stream.ROW


def shape_of_shard(leaf: Leaf) -> tuple[int, ...]:
    """The shape of the part of ``leaf`` that one device holds."""
    s = leaf.sharding
    return leaf.shape if s is None else tuple(s.shard_shape(leaf.shape))


BLOCK_FRACTION = 1 / 20
MIN_BLOCK = _stream.MIN_BLOCK


def _in_blocks(draw: _draws.Draw, leaf: Leaf) -> bool:
    """Whether a leaf drawn alone is drawn in blocks (:func:`_draw_in_blocks`): on GPU,
    :func:`stream.blockwise <jinit._tree.stream.blockwise>`, of at least one block and below
    ``2**31`` elements."""
    return (
        platform_of([leaf]) in GPU_PLATFORMS
        and _stream.blockwise(draw, leaf)
        and _stream.GPU_STEP_ROWS * _stream.ROW <= math.prod(leaf.shape) < 2**31
    )


def _draw_in_blocks(
    keys: _keys.KeyTable, leaf: Leaf, s: _draws.Sampling, size: int, table: int
) -> jax.Array:
    """A large leaf on GPU, drawn a block of ``size`` elements (:func:`block_size`) at a time
    into its own (flat) buffer, as the tree's other blocks are, so that the same kernels hash
    (jax's CUDA kernel, no copy of the rounds to compile) and transform it: with ``table``
    (the rows of the streams' tables), by the streams' step computation (:class:`stream.Block
    <jinit._tree.stream.Block>`); without, as a split leaf's shards (``shards.draw``). The
    block leaves a barrier (it is not fused into this leaf's update); only a block's words are
    temporaries. With ``table``, a leaf of a narrower dtype whose finish is a factor is finished
    in the step, as the streams of such a tree are; another is finished after it. The last
    block starts at ``n - size`` (it rewrites elements with their own values)."""
    n = math.prod(leaf.shape)
    dtype = finished_in_step([leaf], {s.draw: [(0, s)]}) if table else None
    # (A float32 leaf's finish with a traced factor would make the updates of leaves of one
    # size one kernel, but on 8 GPUs XLA then keeps twice the temporaries: GPT-2 small's
    # replicated embedding, 14.5 -> 29.5 MB of a 217 MB shard.)
    finish = (lambda x: x) if dtype is not None else s.finish
    if table:
        tables = _stream.Block(keys, leaf.path, table, None if dtype is None else s.factor)
        drawn = lambda i, start: tables.draw(s.draw, i, start, size, dtype or np.float32)
    else:
        words = jax.random.key_data(keys.one(leaf.path))

        def drawn(i: jax.Array, start: jax.Array) -> jax.Array:
            counters = lax.convert_element_type(start, np.uint32) + lax.iota(np.uint32, size)
            block = s.draw.block
            assert block is not None  # (see _in_blocks)
            return block(words[0], words[1], _stream.block_rows(counters), *s.draw.args)

    trips = -(-n // size) + keys.opaque.zero  # (a count XLA cannot see: the loop is not unrolled)

    def body(i: jax.Array, out: jax.Array) -> jax.Array:
        start = jnp.minimum(i * np.int32(size), np.int32(n - size))
        rows = lax.optimization_barrier(drawn(i, start))
        return lax.dynamic_update_slice(out, finish(rows.reshape(-1)), (start,), **xla.IN_BOUNDS)

    out = lax.fori_loop(np.int32(0), trips, body, jnp.zeros((n,), leaf.dtype))
    return out.reshape(leaf.shape)  # (whole: jit's out_shardings place it)


# A group of small leaves of one draw, shape and finish, unsharded, on a CPU, is drawn and
# finished by one kernel and leaves the program stacked, to be cut into leaves on the host
# (:mod:`jinit._tree.parts`): XLA:CPU compiles a kernel per output it cuts, about as long as
# the draw's (twelve adapters of fine-tuning surgery: one kernel instead of thirteen,
# ``python -m bench surgery``). The host's cut copies the group once more, so only groups of at
# most this fraction of a chunk.
STACK_FRACTION = 1 / 8


def _stacks(
    chunk: Members, leaves: Sequence[Leaf], shape: tuple[int, ...], sharding: Any, budget: int
) -> bool:
    same = {s.same for _, s in chunk}
    return (
        len(same) == 1
        and None not in same
        and sharding is None
        and platform_of(leaves) == "cpu"
        and len(chunk) * math.prod(shape) * 4 <= STACK_FRACTION * budget
    )


def _draw_stacked(s: _draws.Sampling, keys: jax.Array, leaf: Leaf, where: str) -> jax.Array:
    """``s``'s leaf for every key, stacked: the draw and its finish, one kernel."""
    with leaf_errors(leaf, where):
        return jax.vmap(lambda k: _checked(s.finish(s.draw(k, leaf.shape)), leaf, where))(keys)


def _draw_groups(
    groups: dict[tuple[Any, ...], Members],
    keys: _keys.KeyTable,
    leaves: Sequence[Leaf],
    outs: list[Any],
    budget: int,
    previous: list[int],
    where: str,
    block: int,
    table: int,
) -> None:
    """Leaves of one draw, shape and sharding (sharded leaves, draws without a block form),
    stacked, each chunk after ``previous`` (the last loop's leaves); a group of one (e.g. a leaf
    of more than half a chunk) is drawn alone."""
    finished = {g: _finished_in_batch(leaves, g, ms) for g, ms in groups.items()}
    chunks = [
        (draw, shape, sharding, chunk, finished[draw, shape, sharding])
        for (draw, shape, sharding), members in groups.items()
        for chunk in _chunks(
            members,
            math.prod(shape_of_shard(leaves[members[0][0]]))
            * np.dtype(finished[draw, shape, sharding] or draw.dtype).itemsize,
            budget,
        )
    ]
    # Each leaf is cut out of its chunk's buffer at an offset XLA sees as a parameter, so every
    # cut of one shape and finish is the same computation. (A chunk has fewer members than the
    # key table has keys.)
    cut = keys.opaque
    for draw, shape, sharding, chunk, dtype in chunks:
        paths = [leaves[i].path for i, _ in chunk]
        after = [outs[i] for i in previous]
        if len(chunk) == 1 and _in_blocks(draw, leaves[chunk[0][0]]):
            i, s = chunk[0]
            with leaf_errors(leaves[i], where):
                out = _draw_in_blocks(keys, leaves[i], s, block, table)
                outs[i] = _checked(out, leaves[i], where)
            continue
        if len(chunk) == 1 and _shards.local(draw, shape, sharding):
            # drawn alone, each device its shard, finished there
            i, s = chunk[0]
            with leaf_errors(leaves[i], where):
                out = _shards.draw(draw, keys.one(paths[0]), shape, sharding, s.finish, block)
                outs[i] = _checked(out, leaves[i], where)
            continue
        if len(chunk) == 1:  # drawn alone: the draw and finish fuse, no buffer, no copy
            rows = [draw(keys.one(paths[0]), shape, initializer_sharding(sharding))]
        elif _stacks(chunk, leaves, shape, sharding, budget):
            z = _draw_stacked(chunk[0][1], keys.take(paths), leaves[chunk[0][0]], where)
            for j, (i, _) in enumerate(chunk):
                outs[i] = _parts.Part(z, j)
            continue
        else:
            after_shardings = [leaves[i].sharding for i in previous]
            factors = None if dtype is None else (jnp.stack([s.factor for _, s in chunk]), dtype)
            z = _draw_batch(
                draw, keys.take(paths), shape, sharding, after, after_shardings, factors, block
            )
            rows = [xla.row(z, cut(j)) for j in range(len(chunk))]
            previous = [i for i, _ in chunk]
            if dtype is not None:  # finished in the loop
                for (i, _), row in zip(chunk, rows, strict=True):
                    outs[i] = _checked(row, leaves[i], where)
                continue
        for (i, s), row in zip(chunk, rows, strict=True):
            _finish(outs, leaves, i, s, row, where)


def _finished_in_batch(leaves: Sequence[Leaf], group: tuple[Any, ...], members: Members) -> Any:
    """The dtype in which a sharded group's loop finishes its leaves on GPU (each leaf times its
    factor, cast: :attr:`Sampling.factor <jinit.Sampling>`), or ``None`` (the cuts finish them):
    the members' one dtype, where it is narrower than float32, every member's finish is a
    factor, and each device draws its own shards (:func:`jinit._tree.shards.local`). A
    chunk's buffer then holds that dtype: twice the bfloat16 leaves in the same bytes."""
    draw, shape, sharding = group
    if platform_of(leaves) not in GPU_PLATFORMS or not _shards.local(draw, shape, sharding):
        return None
    return finished_in_step(leaves, {draw: members})
