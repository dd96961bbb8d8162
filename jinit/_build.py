"""Builds every leaf of a planned tree inside one trace, drawing leaves that sample alike together.

Compile time, not sampling, is what a user waits for: XLA compiles one kernel per distinct
sampler expression, and a tree built one leaf at a time has one such kernel per leaf (a
transformer's grows with its depth). Here, leaves whose initializers declare the same
:class:`~jinit._sampling.Draw` and have the same shape and sharding form a *group*: their keys
are stacked, one loop over them (``lax.map``) makes all of them with one compiled kernel, and
each leaf is cut out and finished (scaled, cast) in a cheap copy. A leaf's counters are its own
row-major indices under its own path key, as when it is drawn alone, so the values are
bit-identical to the per-leaf path (``tests/test_invariants.py``), and the number of sampler
kernels depends on the tree's distinct shapes, not on its depth (``tests/test_grouping.py``).

Memory: a group is drawn in chunks of at most :func:`chunk_budget` bytes, so the temporaries stay
a small fraction of the parameters (the number of chunks is bounded, independently of depth, by
the tree's size over the budget). Leaves whose initializer does not implement the protocol (a
user's own ``init(key, shape, dtype)``), non-threefry keys and non-float32 draws go leaf by leaf.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax import lax
from jax.sharding import AxisType, NamedSharding, PartitionSpec, Sharding

from jinit import _keys, _random, _sampling

# A chunk's float32 draw is at most this fraction of the tree's bytes (or MIN_CHUNK_BYTES).
CHUNK_FRACTION = 0.05
MIN_CHUNK_BYTES = 64 << 20


def initializer_sharding(s: Sharding | None):
    """The `out_sharding` to hand an initializer: only specs over Explicit mesh axes.

    Under Auto axes, `jit(out_shardings=...)` already makes each device compute only its shard
    (jax's threefry is partitionable); jax.random refuses Auto axis names in `out_sharding`.
    """
    if not isinstance(s, NamedSharding):
        return None
    types = dict(zip(s.mesh.axis_names, s.mesh.axis_types, strict=True))
    names = [
        n
        for part in s.spec
        if part is not None
        for n in (part if isinstance(part, tuple) else (part,))
    ]
    if names and all(types.get(n) == AxisType.Explicit for n in names):
        return s
    return None


@contextlib.contextmanager
def leaf_errors(leaf: Any, where: str) -> Iterator[None]:
    """Re-raises an initializer's TypeError/ValueError with the parameter's path and rule."""
    try:
        yield
    except (TypeError, ValueError) as e:
        if type(e) not in (TypeError, ValueError):  # keep jax's own error types intact
            raise
        raise type(e)(f"`{where}`: the parameter {leaf.path!r} (rule {leaf.pattern!r}): {e}") from e


def _checked(out: jax.Array, leaf: Any, where: str) -> jax.Array:
    if tuple(out.shape) != leaf.shape or np.dtype(out.dtype) != leaf.dtype:
        raise ValueError(
            f"`{where}`: the initializer for {leaf.path!r} (rule {leaf.pattern!r}) "
            f"returned {out.dtype}{list(out.shape)}; expected "
            f"{leaf.dtype}{list(leaf.shape)}."
        )
    return out


def build_one(root: jax.Array, leaf: Any, where: str) -> jax.Array:
    """One leaf, by calling its initializer with its path key."""
    key = _keys.key_for_path(root, leaf.path)
    out_sharding = initializer_sharding(leaf.sharding)
    with leaf_errors(leaf, where):
        if out_sharding is None:  # Flax's documented form: init(key, shape, dtype)
            out = leaf.init(key, leaf.shape, leaf.dtype)
        else:
            out = leaf.init(key, leaf.shape, leaf.dtype, out_sharding)
    return _checked(out, leaf, where)


def chunk_budget(leaves: Sequence[Any]) -> int:
    """The most bytes of float32 draw one chunk may hold, for this tree."""
    total = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in leaves)
    return max(MIN_CHUNK_BYTES, int(CHUNK_FRACTION * total))


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


def _draw_batch(draw: _sampling.Draw, keys: jax.Array, shape: tuple[int, ...], sharding: Any):
    """``draw`` for every key, stacked on a new leading axis, each device making its shard.

    A loop (``lax.map``), not a ``vmap``: its body is one kernel, compiled once, and XLA cannot
    fuse it into the leaves' copies. (A vmapped draw behind an ``optimization_barrier`` compiled
    well on a GPU, but XLA's CPU pipeline drops the barrier and re-fuses the hash into every
    copy; measured in ``bench/RESULTS.md``.) Peak temporaries are the chunk's stack.
    """
    f = lambda ks: lax.map(lambda k: draw(k, shape), ks)
    batch = _batch_sharding(sharding)
    if batch is None:
        return f(keys)
    if initializer_sharding(sharding) is not None:  # Explicit axes: jax.random's way
        return jax.sharding.auto_axes(f, out_sharding=batch, axes=batch.mesh.explicit_axes)(keys)
    return lax.with_sharding_constraint(f(keys), batch)


def build_all(root: jax.Array, leaves: Sequence[Any], where: str) -> list[jax.Array]:
    """Every leaf, in order: grouped draws where the protocol allows, else one by one."""
    outs: list[Any] = [None] * len(leaves)
    groups: dict[tuple[Any, ...], list[tuple[int, _sampling.Sampling]]] = {}
    for i, leaf in enumerate(leaves):
        with leaf_errors(leaf, where):
            s = _sampling.sampling_of(leaf.init, leaf.shape, leaf.dtype)
        if s is None or not _random.use_kernels(root, s.draw.dtype, leaf.shape):
            outs[i] = build_one(root, leaf, where)
        else:
            groups.setdefault((s.draw, leaf.shape, leaf.sharding), []).append((i, s))
    budget = chunk_budget(leaves)
    for (draw, shape, sharding), members in groups.items():
        nbytes = math.prod(shape) * np.dtype(draw.dtype).itemsize
        for chunk in _chunks(members, nbytes, budget):
            if len(chunk) == 1:  # drawn alone: draw and finish fuse, no copy
                i, s = chunk[0]
                key = _keys.key_for_path(root, leaves[i].path)
                z = draw(key, shape, initializer_sharding(sharding))
                with leaf_errors(leaves[i], where):
                    outs[i] = _checked(s.finish(z), leaves[i], where)
                continue
            words = np.array([_keys.path_words(leaves[i].path) for i, _ in chunk], np.uint32)
            keys = jax.vmap(lambda w: _keys.fold_words(root, w[0], w[1]))(words)
            z = _draw_batch(draw, keys, shape, sharding)
            for j, (i, s) in enumerate(chunk):
                with leaf_errors(leaves[i], where):
                    outs[i] = _checked(s.finish(z[j]), leaves[i], where)
    return outs
