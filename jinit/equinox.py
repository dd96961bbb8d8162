"""Equinox helpers: initialise an equinox model from path rules, sharded, in one compiled call.

This module imports equinox; the rest of jinit does not need it. :func:`jinit.init_tree` and
:func:`jinit.explain` also accept an equinox module (the same split, layouts and rule sets), once
equinox is imported.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx

from jinit import _tree
from jinit._catalog.equinox_defaults import EquinoxDefaults as EquinoxDefaults
from jinit._catalog.equinox_defaults import defaults as defaults
from jinit._catalog.equinox_defaults import uniform as uniform
from jinit._catalog.layout import layout as layout
from jinit._tree import equinox as _eqx_tree
from jinit._tree import options as _options
from jinit._value import Init

__all__ = ["EquinoxDefaults", "defaults", "init_eqx", "layout", "uniform"]


_SHARED = (_options.KEY, _options.RULES, _options.DEFAULT, _options.SHARDINGS, _options.MESH)


@_options.entry_point("init_eqx", *_SHARED, *_options.DRAW, *_options.SURGERY, _options.UNUSED)
def init_eqx(
    call: _options.Call, model: Any, key, rules, *, filter: Callable[[Any], bool] | None = None
) -> Any:
    r"""Initialises an equinox model's parameters from path rules, sharded, in one compiled call.

    ``model`` is a concrete module or the result of ``eqx.filter_eval_shape`` (no weights were
    ever made). Its parameters (by default every floating array or ``ShapeDtypeStruct`` leaf;
    see ``filter``) are made exactly as by :func:`jinit.init_tree`, at their attribute paths
    joined with ``'/'`` (``"layers/0/weight"``, ``"blocks/attn/query_proj/weight"``), each from
    its own path key; every other leaf (activation functions, dropout rates, flags, a concrete
    model's integer arrays) is kept as it is.

    Layouts: the fans of a parameter of equinox's own layers are those of its real axes: a
    ``Linear`` weight is ``(out, in)``, a ``Conv``/``ConvTranspose`` weight
    ``(out, in / groups, *kernel)``, ``GRUCell``/``LSTMCell`` weights ``(gates * hidden, in)``;
    so ``he_normal()``, written for Flax's ``(in, out)``, gives the He std (each rule's
    initializer is wrapped in :func:`layout`, also inside :func:`jinit.stacked`). For a user's
    own module, state the layout in the rule: ``(r"w$", jinit.equinox.layout(init,
    in_axis=-1, out_axis=-2))``; an initializer already wrapped in ``layout`` is used as it is.

    State: the arrays a stateful layer keeps in an ``eqx.nn.StateIndex`` (``BatchNorm``'s
    statistics, ``SpectralNorm``'s ``u`` and ``v``) are made like parameters, at their paths
    (``"bn/ema_state_index/init/0"``); :func:`defaults` gives them equinox's values, and
    ``BatchNorm``'s boolean flag and integer counter take equinox's ``True`` and ``0``. The
    model comes back holding its initial state, as equinox's constructors return it; split it
    as equinox does: ``model, state = eqx.nn.make_with_state(init_eqx)(abstract, key, rules)``.

    Sharding: each parameter gets its entry in ``shardings``, else the sharding of a concrete
    array, else replication over ``mesh`` or the ``jax.set_mesh`` mesh; each device generates
    only its own shards, and the values do not depend on the mesh.

    Args:
      model: an ``eqx.Module``, concrete or from ``eqx.filter_eval_shape``.
      filter: which leaves are parameters, ``leaf -> bool`` (default: floating and complex
        arrays and ``ShapeDtypeStruct``\ s). An abstract leaf it leaves out raises.

    Returns:
      The model, a new module with every parameter an array of its shape and dtype; with
      ``unused='return'``, the pair ``(model, unused)``.

    Examples:
      >>> import jax, equinox as eqx, jinit, jinit.equinox
      >>> abstract = eqx.filter_eval_shape(eqx.nn.MLP, 64, 10, 256, 2, key=jax.random.key(0))
      >>> rules = [(r"weight$", jinit.he_normal()), (r"bias$", jinit.zeros)]
      >>> mlp = jinit.equinox.init_eqx(abstract, 0, rules)
      >>> w = mlp.layers[0].weight  # (out, in): the He std is sqrt(2 / 64)
      >>> w.shape, round(float(w.std() * (64 / 2) ** 0.5), 1)
      ((256, 64), 1.0)
    """
    where, options = call
    if isinstance(model, tuple) and any(isinstance(x, eqx.nn.State) for x in model):
        raise TypeError(
            f"`{where}(model=...)` must be an equinox Module; got a (model, State) pair, as "
            "`eqx.nn.make_with_state` makes. Pass the model (`eqx.filter_eval_shape(Model, "
            "...)`) and split it after: `model, state = "
            "eqx.nn.make_with_state(jinit.equinox.init_eqx)(abstract, key, rules)`."
        )
    if not isinstance(model, eqx.Module):
        raise TypeError(f"`{where}(model=...)` must be an equinox Module; got {model!r}.")
    if filter is not None and not callable(filter):
        raise TypeError(f"`{where}(filter=...)` must be a callable leaf -> bool; got {filter!r}.")
    adapted = _eqx_tree.adapt(model, where, filter)
    keep = options["keep"]
    kept = None if keep is None else _eqx_tree.adapt(keep, where, filter)
    if keep is not None and kept is None:
        raise TypeError(f"`{where}(keep=...)` must be a trained equinox Module; got {keep!r}.")
    trained = None if kept is None else kept.params
    return _tree.initialize(key, adapted, rules, where, **{**options, "keep": trained})


def __getattr__(name: str) -> Any:
    """``Layout``, the class layouts were before they were plain values: ``jinit.Init``."""
    if name != "Layout":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)
    warnings.warn(
        "`jinit.equinox.Layout` is deprecated: a layout is a `jinit.Init` whose `layout` holds "
        "its (in_axis, out_axis).",
        DeprecationWarning,
        stacklevel=2,
    )
    return Init
