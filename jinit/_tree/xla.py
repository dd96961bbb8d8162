"""The tricks that steer XLA, in one place: what each one makes XLA do, and why the builder
(:mod:`jinit._tree.build`) needs it. Each is a way of telling XLA something it cannot see.

- :class:`Opaque` -- *do not specialise on this index*. Cutting leaf ``j`` out of a draw, or
  reading key ``j`` of the key table, with ``j`` a constant makes one computation per leaf, each
  compiled separately. ``Opaque`` hands out the ``j`` as sums of traced scalars from a loop whose
  trip count XLA cannot know: one computation with parameters, compiled once.
- :func:`pipelined` -- *draw into your own buffer, then store*. A draw fused into its store is
  an in-place update, which XLA's CPU backend runs on one thread; software-pipelined (step ``i``
  draws ``i`` and stores ``i - 1``) the draw is split over the cores.
- :func:`after` and :func:`zeros_after` -- *wait for these arrays*. An index or a zero computed
  from one element of each array (at an index XLA cannot prove to be 0, or from sign bits), so
  XLA orders the work after them, writes a draw over the previous one instead of into a second
  buffer, and cannot share one zeros buffer between loops. In a loop, arrays it carries wait
  without a read: an ``optimization_barrier`` with the loop's counter (:func:`pipelined`).
- :data:`IN_BOUNDS` -- *no bounds check*: every dynamic index here is in bounds, and without it
  jax adds a compare, add and select to each.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec

from jinit._rng import threefry as _threefry

# Every dynamic index here is in bounds: without this, jax adds a compare, add and select to each
# (for negative indices), instructions XLA then runs all its passes over, per leaf and chunk.
IN_BOUNDS = {"allow_negative_indices": False}


class Opaque:
    """The integers ``0 .. n - 1`` as traced int32 scalars that XLA cannot see are constants.

    Each distinct computation costs XLA time to compile (milliseconds on a CPU, more on a GPU), and
    a constant makes a computation distinct: cutting leaf ``j`` out of a stacked draw, or reading
    key ``j`` of the key table, would be ``n`` computations. With ``j`` as ``hi * m + lo``, where
    ``hi`` and ``lo`` leave a loop whose trip count (1) XLA cannot know (it depends on ``x``,
    e.g. the keys' data), they are one computation with parameters, compiled once, also where the
    caller's ``jit`` would make every offset a constant. (``m = ceil(sqrt(n))`` such scalars: a
    loop of ``n`` of them compiles in time growing faster than ``n``.)

    The loop also carries ``x`` (a pytree of arrays): ``step(i, x)`` is applied ``trips`` times
    (by default ``x`` passes through), and the result, :attr:`x`, is an array XLA computes once
    rather than fusing its computation into every kernel that reads it.
    """

    def __init__(
        self,
        n: int,
        x: Any,
        dep: jax.Array,
        step: Callable[[jax.Array, Any], Any] | None = None,
        trips: int = 1,
    ) -> None:
        self.m = max(1, math.isqrt(max(n - 1, 0)) + 1)
        self.his: tuple[jax.Array, ...] = ()
        self.los: tuple[jax.Array, ...] = ()
        self.x = x  # `x` after `trips` steps (or passed through): arrays XLA will not recompute
        if dep.size == 0 or n <= 1:  # (an empty tree)
            return
        # A zero XLA cannot fold, also for the tables read at these indices (Stream).
        self.zero = zero = _threefry.zero_from(sign_bit(first(dep)), np.int32)
        if step is None:
            step = lambda _, x: jax.tree.map(lambda a: a + zero.astype(a.dtype), x)

        def body(c: tuple[Any, ...]) -> tuple[Any, ...]:
            return (c[0] + 1, step(c[0], c[1]), *(o + zero for o in c[2:]))

        m = self.m
        start: tuple[Any, ...] = (
            np.int32(0),
            x,
            *(np.int32(j * m) for j in range(m)),
            *map(np.int32, range(m)),
        )
        out: tuple[Any, ...] = lax.while_loop(lambda c: c[0] < trips + zero, body, start)
        # (``hi * m`` and ``lo`` from different scalars: one of each would make ``j * (m + 1)``
        # a sum of one scalar with itself, another computation to XLA)
        self.x, self.his, self.los = out[1], tuple(out[2 : m + 2]), tuple(out[m + 2 :])

    def __call__(self, j: int) -> jax.Array:
        hi, lo = self.parts(j)
        return hi + lo

    def parts(self, j: int) -> tuple[jax.Array, jax.Array]:
        """The two traced scalars whose sum is ``j``."""
        hi, lo = divmod(j, self.m)
        return self.his[hi], self.los[lo]


def pipelined(
    z: jax.Array,
    d: jax.Array,
    steps: int | jax.Array,
    draw: Callable[[jax.Array], jax.Array],
    store: Callable[[jax.Array, jax.Array, Any], jax.Array],
    wait: bool,
    carry: list[jax.Array] | None = None,
) -> tuple[jax.Array, list[jax.Array]]:
    """``z`` with ``draw(i)`` stored as its part ``i`` (``store(z, d, i)``), for ``i < steps``.

    Software-pipelined: step ``i`` draws ``i`` into the carry ``d`` and stores draw ``i - 1``.
    Fused into its store, a draw would be emitted as an in-place update, which XLA's CPU backend
    runs on one thread; drawn into its own buffer it is split over the cores (faster warm:
    bench/RESULTS.md). ``d`` starts as a part of ``z`` itself (a fresh ``zeros_like`` would be
    one array XLA shares between loops and makes early). With ``wait``, the draw reads one
    element of ``z`` first (:func:`after`): XLA then writes it over the previous draw instead
    of into a second buffer copied back on every step. ``carry`` rides through the loop, each
    step passing it through an ``optimization_barrier`` with its counter, which the draw's
    index then reads: the loop cannot start before ``carry`` exists, and no kernel reads it.
    It is returned.
    """

    def body(i: jax.Array, c: tuple[jax.Array, jax.Array, jax.Array, list[jax.Array]]):
        z, d, w, rest = c
        z = store(z, d, jnp.maximum(i - 1, 0))
        if not wait:
            return z, draw(i), w, rest
        # The draw's index adds `w`, a zero from the previous step that waits for the carry:
        # it leaves a barrier with the carry and the step's counter. XLA keeps the carry in
        # the loop (a leaf only passed through would be dropped from it, and the loop would no
        # longer wait for it), and no kernel reads it (one element of each, read, was a kernel
        # per set of carried shapes: seven of LLaMA-1B's 47 on GPU). Without a carry, `w`
        # waits for `z`.
        k = after([z], i)
        rest, j = lax.optimization_barrier((rest, i)) if rest else (rest, k)
        return z, draw(k + w), j - i, rest

    z, d, _, rest = lax.fori_loop(0, steps, body, (z, d, np.int32(0), carry or []))
    return store(z, d, steps - 1), rest


def after(values: list[jax.Array], i: jax.Array) -> jax.Array:
    """``i``, computed from one element of each of ``values``, read at an index XLA cannot
    prove to be 0 (``i >> 31``, for a loop counter ``i >= 0``), so that it waits for them.
    (The elements are gathered into one vector first: two instructions per value, which XLA's
    passes run over for every leaf a loop carries.)"""
    j = lax.shift_right_logical(i, np.int32(31))
    elements = jnp.concatenate(
        [
            lax.dynamic_slice(v, (j,) * v.ndim, (1,) * v.ndim, **IN_BOUNDS)
            .reshape(1)
            .astype(np.float32)
            for v in values
        ]
    )
    bits = lax.bitcast_convert_type(elements, np.uint32)
    return i + _threefry.zero_from(jnp.sum(lax.shift_right_logical(bits, np.uint32(31))), np.int32)


def zeros_after(values: list[jax.Array], shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    """Zeros that XLA can neither share between chunks nor make before all ``values`` exist.

    Made from the sign bits of one element of each value (:func:`jinit._rng.threefry.zero_from`).
    """
    n = functools.reduce(operator.add, [sign_bit(first(v)) for v in values])
    return jnp.broadcast_to(_threefry.zero_from(n, dtype), shape)


def first(v: jax.Array) -> jax.Array:
    """``v``'s first element, also when ``v`` is sharded over Explicit mesh axes."""
    s = getattr(jax.typeof(v), "sharding", None)
    mesh = getattr(s, "mesh", None)
    if mesh is None or not mesh.explicit_axes:
        return jnp.ravel(v)[0]
    with jax.sharding.use_abstract_mesh(mesh):  # indexing a sharded dim is an Auto-mode op
        f = jax.sharding.auto_axes(lambda v: jnp.ravel(v)[0], out_sharding=PartitionSpec())
        return f(v)


def sign_bit(x: jax.Array) -> jax.Array:
    if jnp.issubdtype(x.dtype, jnp.floating):
        x = lax.bitcast_convert_type(lax.convert_element_type(x, np.float32), np.uint32)
    return lax.shift_right_logical(x.astype(np.uint32), np.uint32(31))


def row(x: jax.Array, i: jax.Array) -> jax.Array:
    """``x[i]`` for an in-bounds traced ``i``: one dynamic slice (``lax.dynamic_index_in_dim`` is
    a jitted function, slower to trace, once per leaf)."""
    start: tuple[Any, ...] = (i, *(np.int32(0),) * (x.ndim - 1))
    return lax.dynamic_slice(x, start, (1, *x.shape[1:]), **IN_BOUNDS).reshape(x.shape[1:])
