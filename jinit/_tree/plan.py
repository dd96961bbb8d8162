"""Phase 1: an abstract tree and rules to a tuple of :class:`~jinit._tree.leaf.Leaf` (path, shape,
dtype, sharding, initializer), everything static, and the structure to put the built leaves back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jinit._tree import boxes as _boxes
from jinit._tree import equinox as _eqx_tree
from jinit._tree import rules as _rules
from jinit._tree import sharding as _sharding
from jinit._tree.leaf import Leaf
from jinit._typing import Initializer


def plan(
    abstract_tree: Any,
    rules: _rules.Rules,
    default: Initializer | None,
    shardings: Any,
    mesh: Mesh | None,
    where: str = "init_tree",
    *,
    allow_unused_rules: bool = True,
    logical_axis_rules: Any = None,
    adapt: Callable[[str, tuple[int, ...], Initializer], Initializer] | None = None,
) -> tuple[tuple[Leaf, ...], _boxes.Structure]:
    """Resolves every leaf's initializer and sharding, statically; raises naming the path.

    ``adapt(path, shape, init)``: the initializer a rule's ``init`` becomes at that parameter
    (the Flax helpers' module fans, :mod:`jinit._flax_calls`)."""
    module = _eqx_tree.adapt(abstract_tree, where)  # an equinox model: its arrays
    if module is not None:
        abstract_tree, rules = module.params, module.bind(rules)
        shardings = module.shardings(shardings, where)  # path rules: a pytree of them
    flat, structure = _boxes.flatten(abstract_tree)
    if not flat:
        raise ValueError(_no_parameter(abstract_tree, where))
    _refuse_equal_paths(abstract_tree, [path for path, _, _ in flat], where)
    for path, leaf, _ in flat:
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(
                f"`{where}`: the parameter {path!r} must be a jax.ShapeDtypeStruct or "
                f"an array; got {leaf!r}."
            )
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise TypeError(
                f"`{where}`: the parameter {path!r} is an RNG key ({leaf.dtype}), not a weight; "
                "initialise an nnx model with `jinit.flax.init_nnx` (which fills RNG state), or "
                "leave the key out of the tree."
            )
    params = [(path, tuple(leaf.shape)) for path, leaf, _ in flat]
    compiled = _rules.compile_rules(rules, default, where, params)
    mesh = mesh if mesh is not None else _sharding.ambient_mesh()
    if shardings is None:
        per_leaf: list[Any] = [None] * len(flat)
    else:
        per_leaf = _sharding.broadcast_shardings(shardings, abstract_tree, where)
    leaves, used = [], set()
    for (path, leaf, box), s in zip(flat, per_leaf, strict=True):
        index, pattern, init = _rules.match(compiled, default, path, where)
        init = init if module is None else module.laid_out(path, init)
        init = init if adapt is None else adapt(path, tuple(leaf.shape), init)
        used.add(index)
        if s is None:
            sharding = _sharding.resolve_leaf_sharding(
                box, leaf, mesh, logical_axis_rules, path, where
            )
        else:
            sharding = _sharding.resolve_sharding(s, leaf, mesh, path, where)
        _sharding.check_fits(sharding, tuple(leaf.shape), path, where)
        leaves.append(Leaf(path, tuple(leaf.shape), np.dtype(leaf.dtype), sharding, pattern, init))
    if not allow_unused_rules:
        _rules.check_used(compiled, used, [p for p, _ in params], where)
    if compiled and used == {-1}:
        raise ValueError(
            f"`{where}`: no rule matches any of the {len(flat)} parameters (every one got "
            f"`default=`); the patterns are {', '.join(repr(r.label) for r in compiled)} and "
            f"the paths are like {flat[0][0]!r}."
        )
    return tuple(leaves), structure if module is None else module.structure(structure)


def _no_parameter(tree: Any, where: str) -> str:
    """Why a tree without parameters is refused (initialising it would silently do nothing)."""
    nones = len(jax.tree.leaves(tree, is_leaf=lambda x: x is None))
    msg = f"`{where}`: the tree holds no parameter (no array or jax.ShapeDtypeStruct leaf)"
    if nones:
        return (
            f"{msg}: its {nones} leaves are None, as in `eqx.partition(model, eqx.is_array)` "
            "of a model from `eqx.filter_eval_shape` (its leaves are ShapeDtypeStructs, not "
            "arrays); pass the model itself (`jinit.equinox.init_eqx(model, ...)`)."
        )
    return f"{msg}; got {tree!r}."


def _refuse_equal_paths(abstract_tree: Any, paths: list[str], where: str) -> None:
    """Two leaves with the same path string (one key, hence one value) raise, naming both."""
    if len(set(paths)) == len(paths):
        return
    keypaths = [
        kp
        for kp, _ in jax.tree_util.tree_flatten_with_path(
            abstract_tree, is_leaf=_boxes.is_leaf_fn()
        )[0]
    ]
    seen: dict[str, Any] = {}
    for path, keypath in zip(paths, keypaths, strict=True):
        if path in seen:
            raise ValueError(
                f"`{where}`: the leaves {jax.tree_util.keystr(seen[path])} and "
                f"{jax.tree_util.keystr(keypath)} have the same path string {path!r}, hence the "
                "same key and the same values; rename one of them."
            )
        seen[path] = keypath
