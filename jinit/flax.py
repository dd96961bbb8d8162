"""Flax helpers: initialise a linen or nnx model from path rules, sharded, in one compiled call.

This module imports flax; the rest of jinit does not need it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
from flax import linen, nnx
from flax.core import meta
from flax.core import spmd as core_spmd
from flax.linen import spmd as linen_spmd
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jinit import _keys, _tree
from jinit._typing import Initializer

LogicalRules = Any  # a sequence of (logical axis name, mesh axis name(s)) pairs


def _box_spec(box: Any, rules: LogicalRules | None) -> PartitionSpec:
    """A linen box's mesh PartitionSpec: logical names go through the logical axis rules."""
    if isinstance(box, linen_spmd.LogicallyPartitioned):
        spec = linen_spmd.logical_to_mesh_axes(box.names, rules or box.rules)
        return PartitionSpec() if spec is None else spec
    return box.get_partition_spec()


def _linen_shardings(abstract: Any, mesh: Mesh | None, rules: LogicalRules | None) -> Any:
    def leaf(x: Any) -> Any:
        if isinstance(x, meta.Partitioned):
            box_mesh = x.mesh if x.mesh is not None else mesh
            if box_mesh is None:
                return _box_spec(x, rules)  # init_tree reports the missing mesh by path
            return NamedSharding(box_mesh, _box_spec(x, rules))
        return None

    return jax.tree.map(leaf, abstract, is_leaf=meta.is_axis_metadata)


def init_linen(
    module: Any,
    key: Any,
    rules: _tree.Rules,
    *args: Any,
    mesh: Mesh | None = None,
    logical_axis_rules: LogicalRules | None = None,
    default: Initializer | None = None,
    method: Callable | str | None = None,
    **kwargs: Any,
) -> Any:
    """Initialises a linen module's variables from path rules, as ``module.init`` would shape them.

    The variables' shapes come from ``jax.eval_shape(module.init, ...)`` (no weights are made);
    their values come from :func:`jinit.init_tree` over the unboxed tree, whose paths start with
    the collection, e.g. ``"params/Dense_0/kernel"``. Partitioning metadata from
    ``nn.with_partitioning`` and ``nn.with_logical_partitioning`` (through
    ``logical_axis_rules``, the box's own rules, or the ``nn.logical_axis_rules`` context) gives
    each leaf its sharding on ``mesh``. The initializers passed to the module are not called.

    Args:
      module: a ``flax.linen.Module``.
      key: the root key (typed key, ``uint32[2]`` key or int seed).
      rules: ``(regex, initializer)`` pairs or a dict, as for :func:`jinit.init_tree`. Every
        collection ``module.init`` creates (``params``, ``batch_stats``, ...) goes through them.
      *args: example inputs for ``module.init`` (arrays or ``ShapeDtypeStruct``).
      mesh: the mesh for partitioned leaves; other leaves are replicated over it.
      logical_axis_rules: ``(logical name, mesh axes)`` pairs for logically partitioned leaves.
      default: the initializer for leaves no rule matches.
      method: passed to ``module.init``.
      **kwargs: passed to ``module.init``.

    Returns:
      The variables dict, boxed exactly as ``module.init`` returns it (``nn.Partitioned`` boxes
      kept, so ``nn.get_partition_spec`` and ``nn.unbox`` work on it), with sharded arrays.

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit, jinit.flax
      >>> rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
      >>> v = jinit.flax.init_linen(nn.Dense(16), 0, rules, jnp.ones((1, 8)))
      >>> jax.tree.map(lambda x: x.shape, v)
      {'params': {'bias': (16,), 'kernel': (8, 16)}}
    """
    if not isinstance(module, linen.Module):
        raise TypeError(f"`init_linen(module=...)` must be a flax.linen.Module; got {module!r}.")
    _keys.as_key(key, "init_linen")
    init = functools.partial(module.init, method=method, **kwargs)
    abstract = jax.eval_shape(init, _keys.as_key(0), *args)
    if logical_axis_rules is None:
        logical_axis_rules = core_spmd.get_logical_axis_rules() or None
    shardings = _linen_shardings(abstract, mesh, logical_axis_rules)
    values = _tree.init_tree(
        key, meta.unbox(abstract), rules, default=default, shardings=shardings, mesh=mesh
    )
    return meta.replace_boxed(abstract, values)


def init_nnx(
    model: Any,
    key: Any,
    rules: _tree.Rules,
    *,
    mesh: Mesh | None = None,
    logical_axis_rules: LogicalRules | None = None,
    default: Initializer | None = None,
    filter: Any = nnx.Param,
) -> Any:
    """Fills an nnx model's parameters from path rules, sharded, in one compiled call.

    ``model`` is either abstract, from ``nnx.eval_shape(lambda: Model(..., rngs=nnx.Rngs(0)))``
    (no weights were ever made; run it under ``jax.set_mesh(mesh)`` when the model uses
    ``nnx.with_partitioning``), or a concrete model whose parameters are replaced in place.
    Paths are nnx state paths joined with ``'/'``, e.g. ``"layers/0/kernel"`` (no collection
    prefix). Shardings come from each variable's ``out_sharding`` metadata (with logical names
    mapped by ``logical_axis_rules``, the variable's ``sharding_rules`` or the
    ``nn.logical_axis_rules`` context) on ``mesh``.

    Args:
      model: an ``nnx.Module``, abstract or concrete.
      key: the root key (typed key, ``uint32[2]`` key or int seed).
      rules: ``(regex, initializer)`` pairs or a dict, as for :func:`jinit.init_tree`.
      mesh: the mesh for the shardings; variables without metadata are replicated over it.
      logical_axis_rules: ``(logical name, mesh axes)`` pairs for logical ``out_sharding`` names.
      default: the initializer for parameters no rule matches.
      filter: the nnx filter selecting the variables to initialise (default: ``nnx.Param``).
        In an abstract model every other variable must already be concrete, or be selected too.

    Returns:
      The model with its parameters initialised: a new model for an abstract ``model``, the same
      object (updated in place) for a concrete one.

    Examples:
      >>> import jax, jinit, jinit.flax
      >>> from flax import linen, nnx
      >>> abstract = nnx.eval_shape(lambda: nnx.Linear(8, 16, rngs=nnx.Rngs(0)))
      >>> rules = {r"kernel$": jinit.he_normal(), r"bias$": jinit.zeros}
      >>> model = jinit.flax.init_nnx(abstract, 0, rules)
      >>> model.kernel.shape, str(model.kernel.dtype)
      ((8, 16), 'float32')
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"`init_nnx(model=...)` must be a flax.nnx.Module; got {model!r}.")
    graphdef, selected, rest = nnx.split(model, filter, ...)  # type: ignore[misc]
    for path, var in nnx.to_flat_state(rest):
        if isinstance(var.get_value(), jax.ShapeDtypeStruct):
            raise ValueError(
                f"`init_nnx`: the variable {_keys.path_str(path)!r} "
                f"({type(var).__name__}) is abstract but not selected by "
                f"`filter={filter!r}`; widen the filter or pass a concrete model."
            )
    flat = list(nnx.to_flat_state(selected))
    names = [_keys.path_str(path) for path, _ in flat]
    variables = [v for _, v in flat]
    abstract = {
        n: jax.ShapeDtypeStruct(v.shape, v.dtype) for n, v in zip(names, variables, strict=True)
    }
    with core_spmd.logical_axis_rules(logical_axis_rules or core_spmd.get_logical_axis_rules()):
        specs = {
            n: nnx.spmd.get_var_pspec(v) or PartitionSpec()
            for n, v in zip(names, variables, strict=True)
        }
    shardings: dict[str, Any] = {}
    for n, v in zip(names, variables, strict=True):
        metadata = v.get_metadata()
        own = getattr(v.get_value(), "sharding", None)
        if metadata.get("mesh") is not None:
            shardings[n] = NamedSharding(metadata["mesh"], specs[n])
        elif metadata.get("out_sharding") or mesh is not None:
            shardings[n] = specs[n]
        else:
            shardings[n] = own
    values = _tree.init_tree(key, abstract, rules, default=default, shardings=shardings, mesh=mesh)
    new = nnx.from_flat_state(
        [(p, v.replace(values[n])) for n, (p, v) in zip(names, flat, strict=True)]
    )
    if any(isinstance(v.get_value(), jax.ShapeDtypeStruct) for v in variables):
        return nnx.merge(graphdef, new, rest)
    nnx.update(model, new)
    return model
