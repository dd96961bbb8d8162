"""Where each parameter lives: ``shardings=``, partition specs, Flax's boxes and the ambient mesh
resolved to one concrete ``Sharding`` (or None) per leaf, each checked against its shape."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from jinit import _jax_compat
from jinit._tree import boxes as _boxes


def ambient_mesh() -> Mesh | None:
    """The concrete mesh set by ``jax.set_mesh`` (None outside one), also inside ``jit``
    (where the public ``jax.sharding.get_mesh`` refuses to answer)."""
    m = _jax_compat.concrete_mesh()
    return None if m is None or m.empty else m


def check_mesh(mesh: Any, where: str) -> Mesh | None:
    """``mesh=``, checked: a ``Mesh``, or None for the ``jax.set_mesh`` one (None if unset)."""
    if mesh is not None and not isinstance(mesh, Mesh):
        raise TypeError(f"`{where}(mesh=...)` must be a jax.sharding.Mesh or None; got {mesh!r}.")
    return mesh if mesh is not None else ambient_mesh()


class _Wrap:
    """Marks a broadcast sharding (possibly None) as a leaf while matching prefixes."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _is_sharding_leaf(x: Any) -> bool:
    return x is None or isinstance(x, (Sharding, PartitionSpec))


def broadcast_shardings(shardings: Any, tree: Any, where: str) -> list[Any]:
    """Per-leaf shardings from a pytree prefix of `tree` (a single sharding is a prefix too)."""
    is_box = _boxes.is_leaf_fn()
    try:
        wrapped = jax.tree.map(
            lambda s, sub: jax.tree.map(lambda _: _Wrap(s), sub, is_leaf=is_box),
            shardings,
            tree,
            is_leaf=_is_sharding_leaf,
        )
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"`{where}(shardings=...)` must be a sharding, or a pytree of shardings "
            f"whose structure is a prefix of the abstract tree's: {e}"
        ) from None
    return [w.value for w in jax.tree.leaves(wrapped, is_leaf=lambda x: isinstance(x, _Wrap))]


def _named(mesh: Mesh, spec: PartitionSpec, path: str, where: str) -> NamedSharding:
    """``NamedSharding(mesh, spec)``, or a ValueError naming the parameter (e.g. an axis the mesh
    lacks)."""
    try:
        return NamedSharding(mesh, spec)
    except ValueError as e:
        raise ValueError(
            f"`{where}`: the parameter {path!r} is partitioned as {spec} on a mesh with axes "
            f"{mesh.axis_names}: {e}"
        ) from None


def check_fits(s: Any, shape: tuple[int, ...], path: str, where: str) -> None:
    """A NamedSharding's spec must have at most one entry per dimension, and each dimension must
    split evenly into its shards; else a ValueError naming the parameter (not jit's, later)."""
    if not isinstance(s, NamedSharding):
        return
    if len(s.spec) > len(shape):
        raise ValueError(
            f"`{where}`: the parameter {path!r} of shape {shape} is partitioned as {s.spec}, "
            f"which has {len(s.spec)} entries for its {len(shape)} dimensions."
        )
    sizes = dict(s.mesh.shape)
    for dim, (size, entry) in enumerate(zip(shape, s.spec, strict=False)):
        axes = (entry,) if isinstance(entry, str) else entry
        if not isinstance(axes, tuple):  # None (or UNCONSTRAINED): not split
            continue
        shards = int(np.prod([sizes[a] for a in axes]))
        if size % shards:
            raise ValueError(
                f"`{where}`: the parameter {path!r} of shape {shape} is partitioned as "
                f"{s.spec}, which splits dimension {dim} (size {size}) into {shards} shards; "
                f"{shards} must divide {size}."
            )


def resolve_sharding(s: Any, leaf: Any, mesh: Mesh | None, path: str, where: str):
    """A concrete Sharding (or None) from an explicit sharding, a spec or the leaf's own."""
    if s is None:
        s = getattr(leaf, "sharding", None)
        if not isinstance(s, NamedSharding):  # e.g. a single-device array's placement
            s = None if mesh is None else NamedSharding(mesh, PartitionSpec())
    if isinstance(s, PartitionSpec):
        if mesh is None:
            raise ValueError(
                f"`{where}`: the parameter {path!r} has PartitionSpec {s}; pass "
                "`mesh=` (or run under `jax.set_mesh`) to turn partition specs into shardings."
            )
        s = _named(mesh, s, path, where)
    if isinstance(s, NamedSharding) and not isinstance(s.mesh, Mesh):  # an AbstractMesh
        if mesh is None:
            raise ValueError(
                f"`{where}`: the parameter {path!r} is sharded over an abstract mesh "
                f"({s.spec}); pass the concrete `mesh=` (or run under `jax.set_mesh`)."
            )
        s = _named(mesh, s.spec, path, where)
    return s


def _box_sharding(box: Any, mesh: Mesh | None, logical: Any, path: str, where: str) -> Any:
    """The sharding a Flax box's metadata asks for (None: the box carries no partitioning, or
    is linen metadata with no mesh anywhere, as in Flax's ``model.init``)."""
    if mesh is None and _boxes.is_metadata_without_mesh(box):
        return None
    box_mesh, spec = _boxes.spec(box, logical, path, where)
    if spec is None:
        return None
    box_mesh = box_mesh if box_mesh is not None else mesh
    if box_mesh is None:
        raise ValueError(
            f"`{where}`: the parameter {path!r} is partitioned as {spec}, but there is no mesh; "
            "pass `mesh=` or run under `jax.set_mesh(mesh)`."
        )
    if not isinstance(box_mesh, Mesh):  # an nnx variable's AbstractMesh
        if mesh is None:
            raise ValueError(
                f"`{where}`: the parameter {path!r} is partitioned as {spec} over an abstract "
                "mesh; pass the concrete `mesh=` (or run under `jax.set_mesh`)."
            )
        box_mesh = mesh
    return _named(box_mesh, spec, path, where)


def resolve_leaf_sharding(
    box: Any, leaf: Any, mesh: Mesh | None, logical: Any, path: str, where: str
) -> Any:
    """A leaf's sharding when none is given: its Flax box's partitioning, else its own."""
    s = None if box is None else _box_sharding(box, mesh, logical, path, where)
    return resolve_sharding(s, leaf, mesh, path, where)


def axes(entry: Any) -> tuple[Any, ...]:
    """The mesh axes a partition spec's entry splits its dimension over: ``()`` for ``None``
    (whole), a name as a 1-tuple; an entry that names no axes (unconstrained) as itself in a
    1-tuple, which :func:`named` tells apart."""
    return () if entry is None else entry if isinstance(entry, tuple) else (entry,)


def named(s: NamedSharding) -> bool:
    """Whether every entry of ``s``'s spec names its mesh axes (none is unconstrained: a
    layout that XLA would choose)."""
    return all(isinstance(n, str) for entry in s.spec for n in axes(entry))


def platform(s: Any) -> str | None:
    """The platform of a sharding's mesh's devices (``None`` without concrete devices)."""
    devices = getattr(getattr(s, "mesh", None), "devices", None)
    return str(devices.flat[0].platform) if devices is not None and devices.size else None


def is_split(s: Any) -> bool:
    """Whether the sharding ``s`` splits its array: a NamedSharding with an axis partitioned over
    mesh axes of more than one device (``P(None, 'model')`` on a one-device mesh is whole)."""
    if not isinstance(s, NamedSharding):
        return False
    if not named(s):
        return True  # (an unconstrained axis may be split)
    sizes = dict(zip(s.mesh.axis_names, s.mesh.axis_sizes, strict=True))
    return any(math.prod(sizes[n] for n in axes(entry)) > 1 for entry in s.spec)
