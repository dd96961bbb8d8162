"""Split leaves on GPU: each device draws its own shard, and waits on its own parts.

XLA partitions jinit's unrolled threefry hash over a mesh by itself, but not jax's GPU hash kernel
(a custom call): on GPU, :func:`draw` runs a split leaf's draw in ``shard_map``, each device
hashing only its own shard's counters (their row-major indices in the whole leaf) with the draw's
block form (:class:`~jinit._rng.draws.Draw`), so XLA:GPU compiles no copy of the twenty rounds
for it. :func:`zeros_after_parts` makes a chunk's buffer on each device from its own parts of the
previous chunk's leaves, where reading a split array's first element would be a collective.
Both give the bits of the unsplit program (``tests/test_gpu_compile.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from jinit._rng import draws as _draws
from jinit._rng import threefry as _threefry
from jinit._tree import sharding as _sharding
from jinit._tree import stream as _stream
from jinit._tree import xla


def on_one_mesh(shardings: Sequence[Any]) -> bool:
    """Whether the shardings are NamedShardings of one mesh whose every spec entry names its
    axes: what ``shard_map`` takes. (The plan has checked that each splits its leaf evenly:
    :func:`jinit._tree.sharding.check_fits`.)"""
    return len({getattr(s, "mesh", None) for s in shardings}) == 1 and all(
        isinstance(s, NamedSharding) and _sharding.named(s) for s in shardings
    )


def zeros_after_parts(
    values: list[jax.Array],
    shardings: Sequence[NamedSharding],
    shape: tuple[int, ...],
    dtype: np.dtype,
    sharding: NamedSharding,
) -> jax.Array:
    """:func:`xla.zeros_after` laid out as ``sharding``, each device making its part from the
    first element of its own part of each value: reading a split array's first element would
    be a collective (the device that holds it sends it to all), a kernel to compile per chunk."""
    local = tuple(sharding.shard_shape(shape))

    def part(*vs: jax.Array) -> jax.Array:
        return xla.zeros_after(list(vs), local, dtype)

    return jax.shard_map(
        part,
        mesh=sharding.mesh,
        in_specs=tuple(s.spec for s in shardings),
        out_specs=sharding.spec,
        check_vma=False,
    )(*values)


# The platforms on which a split leaf's draw hashes its shards' counters in ``shard_map``
# (:func:`draw`), so that the hash is jax's GPU kernel (a custom call, which XLA would not
# partition) and XLA:GPU compiles no copy of the twenty rounds for it: on 8 H100s, GPT-2 small's
# sharded draws held 20 copies (``python -m bench --aot cuda:h100:1x1x8 --mesh 8``). Elsewhere XLA
# partitions the unrolled hash itself. The tests add "cpu" to run the path.
PLATFORMS = frozenset({"cuda", "rocm", "gpu"})


def local(draw: _draws.Draw, shape: tuple[int, ...], sharding: Any) -> bool:
    """Whether a leaf laid out as ``sharding`` is drawn shard by shard (:func:`draw`): a
    NamedSharding on :data:`PLATFORMS` whose spec names its axes, a float32 draw with a block
    form, at most ``2**32`` elements."""
    return (
        isinstance(sharding, NamedSharding)
        and _sharding.platform(sharding) in PLATFORMS
        and on_one_mesh([sharding])
        and draw.block is not None
        and not draw.vmap
        and np.dtype(draw.dtype) == np.float32
        and math.prod(shape) <= 2**32
    )


# A shard of fewer elements than a block, but at least 1/PAD_FRACTION of one, is drawn as a
# whole block from its start (its first elements kept): its transform is then the blocks' one
# kernel, not one compiled for its own shape (a draw's transform is the costliest kernel to
# compile; hashing a few times a small shard's elements costs microseconds on a GPU). Not with
# blocks of the fewest elements (``stream.MIN_BLOCK``): their words can be more than a small
# tree's bound on temporaries.
PAD_FRACTION = 8


def draw(
    draw: _draws.Draw,
    key: jax.Array,
    shape: tuple[int, ...],
    sharding: NamedSharding,
    finish: Callable[[jax.Array], jax.Array] | None = None,
    size: int = 0,
) -> jax.Array:
    """``draw(key, shape)`` laid out as ``sharding`` (then ``finish``, element-wise), each
    device hashing only its own shard's counters (their row-major indices in the whole leaf)
    with the draw's block form: the same bits as the whole draw (the block form's contract,
    :class:`~jinit._rng.draws.Draw`). With a ``finish``, a shard of more than ``size``
    elements (:func:`jinit._tree.build.block_size`) is drawn and finished a block at a time, as
    ``build._draw_in_blocks`` draws a whole leaf: only a block's words are temporaries; a
    smaller one of at least ``size / PAD_FRACTION`` as one block (:data:`PAD_FRACTION`)."""
    mesh, spec = sharding.mesh, (*sharding.spec, *(None,) * (len(shape) - len(sharding.spec)))
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))
    names = [_sharding.axes(entry) for entry in spec]
    local = tuple(sharding.shard_shape(shape))
    n = math.prod(local)
    block = draw.block
    assert block is not None  # (see local)

    def offsets() -> list[jax.Array]:
        """This device's first index along each dimension (0 where the dimension is whole)."""
        out = []
        for d, axes in enumerate(names):
            place: Any = np.int32(0)
            for a in axes:  # its place along the axes that split dimension d, row-major
                place = place * np.int32(sizes[a]) + lax.axis_index(a)
            out.append(lax.convert_element_type(place * np.int32(local[d]), np.uint32))
        return out

    def whole(words: jax.Array) -> jax.Array:
        first = offsets()
        indices = [lax.broadcasted_iota(np.uint32, local, d) + first[d] for d in range(len(local))]
        out = block(words[0], words[1], _threefry.counter_words(indices, shape)[1], *draw.args)
        return out if finish is None else finish(out)

    def in_blocks(words: jax.Array) -> jax.Array:
        assert finish is not None
        first = offsets()
        strides = [math.prod(local[d + 1 :]) for d in range(len(local))]

        def drawn(start: jax.Array) -> jax.Array:
            flat = lax.convert_element_type(start, np.uint32) + lax.iota(np.uint32, size)
            indices = [
                (flat // np.uint32(st)) % np.uint32(m) + f
                for st, m, f in zip(strides, local, first, strict=True)
            ]
            counters = _threefry.counter_words(indices, shape)[1]
            values = block(words[0], words[1], _stream.block_rows(counters), *draw.args)
            return lax.optimization_barrier(values).reshape(-1)

        if n < size:  # one block from the shard's start, its first n elements
            return finish(drawn(jnp.int32(0))[:n]).reshape(local)
        dtype = jax.eval_shape(finish, jax.ShapeDtypeStruct((size,), np.float32)).dtype

        def body(i: jax.Array, out: jax.Array) -> jax.Array:
            start = jnp.minimum(i * np.int32(size), np.int32(n - size))
            return lax.dynamic_update_slice(out, finish(drawn(start)), (start,), **xla.IN_BOUNDS)

        out = lax.fori_loop(np.int32(0), np.int32(-(-n // size)), body, jnp.zeros((n,), dtype))
        return out.reshape(local)

    blocked = (
        finish is not None
        and size > 0
        and (size <= n or _stream.MIN_BLOCK < size <= PAD_FRACTION * n)
    )
    return jax.shard_map(
        in_blocks if blocked else whole,
        mesh=mesh,
        in_specs=PartitionSpec(),
        out_specs=PartitionSpec(*spec),
        check_vma=False,
    )(jax.random.key_data(key))
