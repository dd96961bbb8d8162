"""Flax's boxed metadata in an abstract tree: ``nn.Partitioned``, ``nn.LogicallyPartitioned``
(linen) and ``nnx.Variable`` (with its ``out_sharding``) seen as one parameter each.

A box is a leaf for :func:`jinit.init_tree`: the rule sees the parameter's path (never
``.../value``), the box's partitioning becomes the parameter's sharding, and the result is the
same box holding the new array. Flax is imported only by the user: when it is not loaded, no
tree can hold a box, and nothing here imports it.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import jax
from jax.sharding import PartitionSpec

from jinit._tree import keys as _keys


def _classes() -> tuple[type, ...]:
    out = []
    meta = sys.modules.get("flax.core.meta")
    if meta is not None:
        out.append(meta.AxisMetadata)
    variablelib = sys.modules.get("flax.nnx.variablelib")
    if variablelib is not None:
        out.append(variablelib.Variable)
    return tuple(out)


def is_box(x: Any, classes: tuple[type, ...] | None = None) -> bool:
    classes = _classes() if classes is None else classes
    return bool(classes) and isinstance(x, classes)


def is_leaf_fn():
    """An ``is_leaf`` for ``jax.tree_util`` that stops at boxes (None when flax is not loaded)."""
    classes = _classes()
    return (lambda x: isinstance(x, classes)) if classes else None


def is_variable(x: Any) -> bool:
    variablelib = sys.modules.get("flax.nnx.variablelib")
    return variablelib is not None and isinstance(x, variablelib.Variable)


def value(box: Any) -> Any:
    """The box's content (a ShapeDtypeStruct or an array), without any sharding constraint."""
    if is_variable(box):
        return box.get_value()
    inner = box.unbox(apply_constraint=False) if _is_partitioned(box) else box.unbox()
    if is_box(inner):
        raise TypeError(f"nested Flax boxes are not supported; got {box!r}.")
    return inner


def replace(box: Any, new: Any) -> Any:
    """The same box holding ``new``."""
    return box.replace(new) if is_variable(box) else box.replace_boxed(new)


def _is_partitioned(box: Any) -> bool:
    meta = sys.modules.get("flax.core.meta")
    return meta is not None and isinstance(box, meta.Partitioned)


def is_metadata_without_mesh(box: Any) -> bool:
    """A linen ``nn.Partitioned`` / ``nn.LogicallyPartitioned`` with no mesh of its own. Where
    there is no other mesh either, Flax's ``model.init`` keeps its partitioning as metadata only
    (names and rules unread, the array on the default device), and so does jinit. nnx variables
    are not: Flax itself refuses to make one with an ``out_sharding`` and no mesh."""
    return _is_partitioned(box) and box.mesh is None


def _context_rules() -> Any:
    from flax.core import spmd

    return spmd.get_logical_axis_rules() or None


def spec(box: Any, logical_rules: Any, path: str, where: str) -> tuple[Any, PartitionSpec | None]:
    """(the box's own mesh or None, its mesh PartitionSpec or None when it carries no
    partitioning). Logical names need rules (``logical_axis_rules=``, the box's own, or the
    ``nn.logical_axis_rules`` context); without any, this raises rather than replicate."""
    rules = logical_rules if logical_rules is not None else _context_rules()
    if is_variable(box):
        from flax.core import spmd as core_spmd

        metadata = box.get_metadata()
        names = metadata.get("out_sharding") or metadata.get("sharding_names")
        if not names:
            return metadata.get("mesh"), None
        local = metadata.get("sharding_rules") or ()
        if rules is None and not local:  # names are mesh axes (nnx's own reading)
            return metadata.get("mesh"), PartitionSpec(*names)
        merged = core_spmd.composite_rules(rules or (), local)
        return metadata.get("mesh"), PartitionSpec(*core_spmd.from_sharding_rules(names, merged))
    if not _is_partitioned(box):
        raise TypeError(
            f"`{where}`: the parameter {path!r} is boxed in a {type(box).__name__}, whose "
            "partitioning jinit cannot read; unbox it (`flax.core.meta.unbox`) first."
        )
    from flax.linen import spmd as linen_spmd

    if isinstance(box, linen_spmd.LogicallyPartitioned):
        rules = logical_rules if logical_rules is not None else (box.rules or _context_rules())
        if rules is None and any(n is not None for n in box.names):
            raise ValueError(
                f"`{where}`: the parameter {path!r} is partitioned by logical names "
                f"{box.names}, but no logical axis rules map them to mesh axes; pass "
                "`logical_axis_rules=` or use `nn.logical_axis_rules(...)`."
            )
        out = linen_spmd.logical_to_mesh_axes(box.names, rules)
        return box.mesh, PartitionSpec() if out is None else out
    return box.mesh, box.get_partition_spec()


@dataclasses.dataclass(frozen=True)
class Structure:
    """How to put the built leaves back: the treedef and the Flax boxes (None: a plain leaf)."""

    treedef: Any
    boxes: tuple[Any, ...]

    def unflatten(self, values: Sequence[Any]) -> Any:
        leaves = [
            v if b is None else replace(b, v) for v, b in zip(values, self.boxes, strict=True)
        ]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def flatten(abstract_tree: Any) -> tuple[list[tuple[str, Any, Any]], Structure]:
    """``(path, leaf, box or None)`` per parameter: a Flax box is one parameter, at its path."""
    is_box = is_leaf_fn()
    flat, treedef = jax.tree_util.tree_flatten_with_path(abstract_tree, is_leaf=is_box)
    out = []
    for keypath, x in flat:
        box = x if is_box is not None and is_box(x) else None
        out.append((_keys.path_str(keypath), x if box is None else value(box), box))
    return out, Structure(treedef, tuple(b for _, _, b in out))
