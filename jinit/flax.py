"""Flax helpers: initialise a linen or nnx model from path rules, sharded, in one compiled call.

This module imports flax; the rest of jinit does not need it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import linen, nnx
from flax.core import spmd as core_spmd
from jax.sharding import AxisType, Mesh

from jinit import _explain, _flax_calls, _tree
from jinit._tree import keys as _keys
from jinit._tree import options as _options

LogicalRules = Any  # a sequence of (logical axis name, mesh axis name(s)) pairs
# What the linen and nnx entry points share, beside the key and the rules.
_SHARED = (_options.DEFAULT, _options.MESH, _options.LOGICAL_AXIS_RULES)
_INIT = (_options.KEY, _options.RULES, *_SHARED, *_options.DRAW, *_options.SURGERY, _options.UNUSED)
_EXPLAIN = (_options.RULES, *_SHARED, _options.ALLOW_UNUSED_RULES_EXPLAINED)

__all__ = ["explain_linen", "explain_nnx", "init_linen", "init_nnx"]


def _auto_axes() -> contextlib.AbstractContextManager:
    """Linen's boxes apply ``with_sharding_constraint`` when unboxed, which asserts under
    Explicit mesh axes; shapes do not depend on axis types, so trace under Auto ones."""
    ambient = _tree.ambient_mesh()
    if ambient is None or AxisType.Explicit not in ambient.axis_types:
        return contextlib.nullcontext()
    auto = (AxisType.Auto,) * len(ambient.axis_names)
    return jax.set_mesh(Mesh(ambient.devices, ambient.axis_names, axis_types=auto))


@_options.entry_point("init_linen", *_INIT)
def init_linen(
    call: _options.Call,
    module: Any,
    key,
    rules,
    *args: Any,
    method: Callable | str | None = None,
    **kwargs: Any,
) -> Any:
    """Initialises a linen module's variables from path rules, as ``module.init`` would shape them.

    The variables' shapes come from ``jax.eval_shape(module.init, ...)`` (no weights are made);
    their values come from :func:`jinit.init_tree`, whose paths start with the collection, e.g.
    ``"params/Dense_0/kernel"`` (a boxed parameter is matched at its own path): every collection
    ``module.init`` creates (``params``, ``batch_stats``, ...) goes through the rules.
    Partitioning metadata from ``nn.with_partitioning`` and ``nn.with_logical_partitioning``
    (through ``logical_axis_rules``, the box's own rules, or the ``nn.logical_axis_rules``
    context) gives each leaf its sharding on ``mesh``, or on the mesh of ``jax.set_mesh`` (Auto
    or Explicit axes) without it; logical names that no rules map raise rather than replicate,
    as does an axis the mesh lacks, naming the parameter. With no mesh at all, the partitioning
    is metadata only, as in ``module.init``: the boxes are kept, the arrays are on jax's default
    device, and the values are the same bits as under any mesh, so one model goes from a laptop
    to a pod unchanged. The initializers passed to the module are not called.

    Args:
      module: a ``flax.linen.Module``.
      *args: example inputs for ``module.init`` (arrays or ``ShapeDtypeStruct``).
      method: passed to ``module.init``.
      **kwargs: passed to ``module.init`` (so to the module's ``__call__``), but for the
        keywords above: a keyword named like one of this function's is this function's.

    Returns:
      The variables dict, boxed exactly as ``module.init`` returns it (``nn.Partitioned`` boxes
      kept, so ``nn.get_partition_spec`` and ``nn.unbox`` work on it), with sharded arrays;
      with ``unused='return'``, the pair ``(variables, unused)``, ``unused`` a dict from path
      to the trained variables left out.

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit, jinit.flax
      >>> rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
      >>> v = jinit.flax.init_linen(nn.Dense(16), 0, rules, jnp.ones((1, 8)))
      >>> jax.tree.map(lambda x: x.shape, v)
      {'params': {'bias': (16,), 'kernel': (8, 16)}}
    """
    if not isinstance(module, linen.Module):
        raise TypeError(f"`init_linen(module=...)` must be a flax.linen.Module; got {module!r}.")
    abstract, fans = _linen_abstract(module, args, method, kwargs, call.where)
    return _tree.initialize(key, abstract, rules, call.where, adapt=fans, **call.options)


def _linen_abstract(
    module: Any, args: tuple, method: Any, kwargs: dict, where: str
) -> tuple[Any, _flax_calls.ModuleFans]:
    """``module.init``'s shapes, and the calls of its parameters' initializers."""
    init = functools.partial(module.init, method=method, **kwargs)
    calls: dict[str, _flax_calls.Call] = {}
    with _auto_axes(), _flax_calls.record(calls):
        abstract = jax.eval_shape(init, _keys.as_key(0), *args)
    return abstract, _flax_calls.ModuleFans(calls, where)


@_options.entry_point("explain_linen", *_EXPLAIN)
def explain_linen(
    call: _options.Call,
    module: Any,
    rules,
    *args: Any,
    method: Callable | str | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`jinit.explain` for what :func:`init_linen` makes: each parameter's rule,
    initializer, fans and target std as its module's own init would use them, with a note
    where they are not the stored shape's (a flattened ``DenseGeneral`` kernel, one layer of
    an ``nn.scan`` / ``nn.vmap`` stack).

    Args:
      module: a ``flax.linen.Module``.
      *args: example inputs for ``module.init`` (arrays or ``ShapeDtypeStruct``).
      method: passed to ``module.init``.
      **kwargs: passed to ``module.init``, but for the keywords above.

    Returns:
      An :class:`jinit.Explanation`, as :func:`jinit.explain` returns it.

    Examples:
      >>> import jax.numpy as jnp, flax.linen as nn, jinit, jinit.flax
      >>> attn = nn.MultiHeadDotProductAttention(num_heads=4)
      >>> rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
      >>> row = jinit.flax.explain_linen(attn, rules, jnp.ones((1, 3, 32)))[1]
      >>> row.path, row.shape, round(row.target_std, 4)
      ('params/key/kernel', (32, 4, 8), 0.1768)
      >>> row.note
      'fans of (32, 32), the shape linen calls kernel_init with'
    """
    if not isinstance(module, linen.Module):
        raise TypeError(f"`explain_linen(module=...)` must be a flax.linen.Module; got {module!r}.")
    abstract, fans = _linen_abstract(module, args, method, kwargs, call.where)
    return _explain.explain_with(abstract, rules, adapt=fans, where=call.where, **call.options)


@_options.entry_point("explain_nnx", *_EXPLAIN)
def explain_nnx(call: _options.Call, model: Any, rules, *, filter: Any = nnx.Param) -> Any:
    """:func:`jinit.explain` for what :func:`init_nnx` makes of ``model`` (abstract or made):
    fans as its layers' own init uses them, noted where they are not the stored shape's.

    Args:
      model: an ``nnx.Module``, abstract or concrete.
      filter: the nnx filter selecting the variables the rules initialise (default:
        ``nnx.Param``).

    Returns:
      An :class:`jinit.Explanation`, as :func:`jinit.explain` returns it.

    Examples:
      >>> import jinit, jinit.flax
      >>> from flax import nnx
      >>> @nnx.split_rngs(splits=8)
      ... @nnx.vmap(in_axes=0, out_axes=0)
      ... def stack(rngs):
      ...     return nnx.Linear(64, 64, rngs=rngs)
      >>> abstract = nnx.eval_shape(lambda: stack(nnx.Rngs(0)))
      >>> rules = [(r"kernel$", jinit.lecun_normal()), (r"bias$", jinit.zeros)]
      >>> row = jinit.flax.explain_nnx(abstract, rules)[1]
      >>> row.path, row.shape, round(row.target_std, 4), row.note
      ('kernel', (8, 64, 64), 0.125, 'one layer of a stack (8,) (nnx.Linear transform)')
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"`explain_nnx(model=...)` must be a flax.nnx.Module; got {model!r}.")
    selected = nnx.state(model, nnx.All(filter, nnx.Not(nnx.RngState)))
    fans = _nnx_fans(model, selected, call.where)
    return _explain.explain_with(selected, rules, adapt=fans, where=call.where, **call.options)


def _nnx_fans(model: Any, selected: Any, where: str) -> _flax_calls.ModuleFans:
    shapes = {_keys.path_str(p): tuple(v.get_value().shape) for p, v in nnx.to_flat_state(selected)}
    return _flax_calls.ModuleFans(_flax_calls.nnx_calls(model, shapes), where)


@_options.entry_point("init_nnx", *_INIT)
def init_nnx(
    call: _options.Call, model: Any, key, rules, *, filter: Any = nnx.Param, rngs: Any = None
) -> Any:
    """Fills an nnx model's parameters from path rules, sharded, in one compiled call.

    ``model`` is either abstract, from ``nnx.eval_shape(lambda: Model(..., rngs=nnx.Rngs(0)))``
    (no weights were ever made; run it under ``jax.set_mesh(mesh)`` when the model uses
    ``nnx.with_partitioning``), or a concrete model whose parameters are replaced in place.
    Paths are nnx state paths joined with ``'/'``, e.g. ``"layers/0/kernel"`` (no collection
    prefix). Shardings come from each variable's ``out_sharding`` metadata (with logical names
    mapped by ``logical_axis_rules``, the variable's ``sharding_rules`` or the
    ``nn.logical_axis_rules`` context) on ``mesh``, or on the mesh of ``jax.set_mesh`` (Auto
    or Explicit axes) without it.

    The variables ``filter`` does not select keep their values in a concrete model; in an
    abstract one they take what Flax's constructors give them: each RNG stream's count is 0 and
    its key is derived from its path (:func:`jinit.key_for_path`) and the ``rngs`` stream of its
    tag (``Dropout``, ``MultiHeadAttention``), BatchNorm's ``mean`` and ``var`` are 0 and 1,
    caches are 0, ``WeightNorm``'s ``scales`` (plain arrays, not variables) are its
    ``scale_init`` (ones by default) called as Flax calls it, with the key of their path. Any
    other abstract variable or value raises, naming its path.

    ``keep=`` takes a trained model or its state (e.g. an ``nnx.LoRALinear`` from a trained
    ``nnx.Linear``: the base kept, the adapters drawn).

    Args:
      model: an ``nnx.Module``, abstract or concrete.
      filter: the nnx filter selecting the variables the rules initialise (default:
        ``nnx.Param``).
      rngs: where an abstract model's RNG keys come from: an ``nnx.Rngs`` (the stream named by
        each key's tag, else its default stream), an int seed, or None (``key`` itself).

    Returns:
      The model with its parameters initialised: a new model for an abstract ``model``, the same
      object (updated in place) for a concrete one; with ``unused='return'``, the pair
      ``(model, unused)``, ``unused`` a dict from path to the trained parameters left out.

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
    where, options = call
    mesh = options["mesh"] if options["mesh"] is not None else _tree.ambient_mesh()
    logical_axis_rules = options["logical_axis_rules"]
    if logical_axis_rules is None:
        logical_axis_rules = core_spmd.get_logical_axis_rules() or None
    keep, unused = options["keep"], options["unused"]
    streams = _streams(rngs, where)
    placeholders = _placeholders(model, where)  # abstract values outside variables: checked now
    # RNG state is never drawn by rules: it is filled below (abstract) or kept (concrete).
    selected_filter = nnx.All(filter, nnx.Not(nnx.RngState))
    graphdef, selected, rest = nnx.split(model, selected_filter, ...)  # type: ignore[misc]
    abstract = [(path, var) for path, var in nnx.to_flat_state(rest) if _is_abstract(var)]
    extra: dict[str, Any] = {}
    if abstract and not nnx.to_flat_state(selected):  # only RNG state or statistics to fill
        params = selected
    else:  # (a model without parameters raises there: filling it would do nothing)
        params = _tree.initialize(
            key,
            selected,
            rules,
            where,
            **{
                **options,
                "mesh": mesh,
                "logical_axis_rules": logical_axis_rules,
                "keep": nnx.state(keep, selected_filter) if isinstance(keep, nnx.Module) else keep,
            },
            adapt=_nnx_fans(model, selected, where),
        )
        if unused == "return":
            params, extra = params
    if not abstract and not any(_is_abstract(v) for _, v in nnx.to_flat_state(selected)):
        nnx.update(model, params)
        out = model
    else:
        filled = _flax_defaults(abstract, key, streams, mesh, logical_axis_rules, filter)
        state = nnx.from_flat_state([(p, filled.get(p, v)) for p, v in nnx.to_flat_state(rest)])
        merged = nnx.merge(graphdef, params, state)
        out = _fill_placeholders(merged, placeholders, key, mesh, logical_axis_rules)
    return (out, extra) if unused == "return" else out


def _streams(rngs: Any, where: str) -> nnx.Rngs | None:
    if rngs is None or isinstance(rngs, nnx.Rngs):
        return rngs
    if isinstance(rngs, int | np.integer) and not isinstance(rngs, bool):
        return nnx.Rngs(int(rngs))
    raise TypeError(f"`{where}(rngs=...)` must be an nnx.Rngs, an int seed or None; got {rngs!r}.")


# BatchNorm's running statistics, as nnx.BatchNorm makes them.
_STATS = {"mean": 0, "var": 1}


def _is_abstract(var: Any) -> bool:
    """Whether a state leaf is a Variable holding a ShapeDtypeStruct (a plain array in the
    state, as ``WeightNorm``'s scales of a concrete model, is not)."""
    return isinstance(var, nnx.Variable) and isinstance(var.get_value(), jax.ShapeDtypeStruct)


def _graph_path(path: tuple[Any, ...]) -> str:
    """A graph path as a string; WeightNorm's ``scales`` are keyed by tuples (state paths)."""
    parts = (p if isinstance(p, tuple) else (p,) for p in path)
    return "/".join(str(q) for part in parts for q in part)


def _placeholders(model: Any, where: str) -> list[tuple[Any, Any, jax.ShapeDtypeStruct]]:
    """``(path, WeightNorm, abstract)`` of every abstract value outside an nnx Variable of an
    abstract model (a concrete one's are its own static metadata, kept).

    ``nnx.eval_shape`` leaves a ``ShapeDtypeStruct`` where the constructor stored a plain array
    (``nnx.data``): no rule sees it (the state holds variables only). ``WeightNorm``'s
    ``scales`` have Flax's value (:func:`_fill_placeholders`); any other raises here, naming
    every such path, before anything is built."""
    nodes = dict(nnx.iter_graph(model))
    if not any(map(_is_abstract, nodes.values())):
        return []
    found, unknown = [], []
    for path, x in nodes.items():
        if not isinstance(x, jax.ShapeDtypeStruct):
            continue
        owner = nodes.get(path[:-2]) if len(path) >= 2 else None
        if isinstance(owner, nnx.WeightNorm) and path[-2] == "scales":
            found.append((path, owner, x))
        else:
            unknown.append(f"{_graph_path(path)!r} ({x.dtype}{list(x.shape)})")
    if unknown:
        raise ValueError(
            f"`{where}`: the model holds abstract values outside nnx Variables, which no rule "
            f"sees and jinit cannot make: {', '.join(unknown)}. `nnx.eval_shape` leaves a "
            "ShapeDtypeStruct where the constructor stored a plain array (`nnx.data`); store "
            "it in an nnx.Variable (e.g. nnx.Param) and give it a rule, or pass a concrete model."
        )
    return found


def _fill_placeholders(
    model: Any, found: list[tuple[Any, Any, Any]], key: Any, mesh: Mesh | None, logical: Any
) -> Any:
    """Puts Flax's value in each of :func:`_placeholders`' abstract values, in ``model`` (the
    built one: its WeightNorm layers at the same paths): ``scale_init(key, shape)``, as
    ``nnx.WeightNorm.__init__`` calls it, ``key`` that of the path (ones ignore it)."""
    where = "init_nnx"
    nodes = dict(nnx.iter_graph(model)) if found else {}
    for path, _, sds in found:
        name, layer = _graph_path(path), nodes[path[:-2]]
        value = jax.numpy.asarray(
            layer.scale_init(_keys.key_for_path(_keys.as_key(key, where), name), sds.shape)
        )
        if value.shape != sds.shape or value.dtype != sds.dtype:
            raise ValueError(
                f"`{where}`: the WeightNorm scale {name!r} must be {sds.dtype}{list(sds.shape)} "
                f"as the abstract model holds it; its scale_init gave "
                f"{value.dtype}{list(value.shape)}."
            )
        sharding = _tree.resolve_leaf_sharding(None, sds, mesh, logical, name, where)
        layer.scales[path[-1]] = value if sharding is None else jax.device_put(value, sharding)
    return model


def _flax_defaults(
    abstract: list[tuple[Any, Any]],
    key: Any,
    streams: nnx.Rngs | None,
    mesh: Mesh | None,
    logical: LogicalRules | None,
    filter: Any,
) -> dict[Any, Any]:
    """The values Flax's constructors give the abstract non-selected variables: RNG streams
    (from ``rngs``), BatchNorm statistics, caches; anything else raises naming the path."""
    where = "init_nnx"
    out = {}
    for path, var in abstract:
        name = _keys.path_str(path)
        sds = var.get_value()
        sharding = _tree.resolve_leaf_sharding(var, sds, mesh, logical, name, where)
        if isinstance(var, nnx.RngKey):
            if streams is None:
                base = _keys.as_key(key, where)
            else:
                tag = var.get_metadata().get("tag", "default")
                stream = tag if tag in streams else "default"
                if stream not in streams:
                    raise ValueError(
                        f"`{where}(rngs=...)` has no stream {tag!r} (nor 'default') for the "
                        f"RNG key {name!r}; its streams are {sorted(streams)}."
                    )
                base = streams[stream].key[...]
            value: Any = _keys.key_for_path(base, name)
            if sds.shape:  # a stream split over a batch of layers (nnx.split_rngs)
                value = jax.random.split(value, sds.shape)
            if value.dtype != sds.dtype:
                raise ValueError(
                    f"`{where}`: the RNG key {name!r} has dtype {sds.dtype}, but `rngs=` gives "
                    f"{value.dtype} keys."
                )
        elif isinstance(var, nnx.RngCount | nnx.Cache):
            value = np.zeros(sds.shape, sds.dtype)
        elif isinstance(var, nnx.BatchStat) and str(path[-1]) in _STATS:
            value = np.full(sds.shape, _STATS[str(path[-1])], sds.dtype)
        else:
            raise ValueError(
                f"`{where}`: the variable {name!r} ({type(var).__name__}) is abstract, not "
                f"selected by `filter={filter!r}`, and has no Flax default jinit knows; select "
                "it (e.g. `filter=nnx.Variable`) and give it a rule, or pass a concrete model."
            )
        out[path] = var.replace(value if sharding is None else jax.device_put(value, sharding))
    return out
