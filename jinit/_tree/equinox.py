"""An equinox module seen as a parameter tree: its arrays, their layouts, and the rest kept.

An ``eqx.Module`` is a pytree whose leaves mix parameters (arrays, or ``ShapeDtypeStruct`` after
``eqx.filter_eval_shape``) with everything else a layer holds (activation functions, dropout
rates, flags). :func:`adapt` splits the module with ``eqx.partition``: the parameters go to the
tree builder at their attribute paths (``layers/0/weight``), the rest is combined back
unchanged. Each parameter's layout comes from the equinox layer that owns it
(:data:`LAYOUTS`), and rule sets that need the layers (:func:`jinit.equinox.defaults`) are bound
to them. Equinox is imported only by the user: when it is not loaded no tree is a module, and
nothing here imports it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import PartitionSpec, Sharding

from jinit import _layout, _stacked
from jinit._tree import boxes as _boxes
from jinit._tree import keys as _keys

# The (in_axis, out_axis) of equinox's layers' weights, counted from the end so that they also
# hold under leading stack axes (``eqx.filter_vmap`` of a layer). ``num_spatial_dims`` is a
# convolution's. Embedding weights ``(num, size)`` and the norms' are in Flax's layout already.
_LINEAR = (-1, -2)
LAYOUTS: dict[str, dict[str, Callable[[Any], tuple[int, int]]]] = {
    "Linear": {"weight": lambda m: _LINEAR},
    "Conv": {"weight": lambda m: (-m.num_spatial_dims - 1, -m.num_spatial_dims - 2)},
    "ConvTranspose": {"weight": lambda m: (-m.num_spatial_dims - 1, -m.num_spatial_dims - 2)},
    "GRUCell": {"weight_ih": lambda m: _LINEAR, "weight_hh": lambda m: _LINEAR},
    "LSTMCell": {"weight_ih": lambda m: _LINEAR, "weight_hh": lambda m: _LINEAR},
}


def _linear(m: Any) -> dict[str, tuple[int, ...]]:
    ins = () if m.in_features == "scalar" else (m.in_features,)
    outs = () if m.out_features == "scalar" else (m.out_features,)
    return {"weight": (*outs, *ins), "bias": outs}


def _conv(m: Any) -> dict[str, tuple[int, ...]]:
    n = m.num_spatial_dims
    weight = (m.out_channels, m.in_channels // m.groups, *m.kernel_size)
    if type(m).__name__.startswith("ConvTranspose") or "ConvTranspose" in _mro_names(m):
        weight = (m.in_channels, m.out_channels // m.groups, *m.kernel_size)
    return {"weight": weight, "bias": (weight[0], *(1,) * n)}


def _mro_names(m: Any) -> set[str]:
    return {c.__name__ for c in type(m).__mro__}


def _cell(gates: int) -> Callable[[Any], dict[str, tuple[int, ...]]]:
    return lambda m: {
        "weight_ih": (gates * m.hidden_size, m.input_size),
        "weight_hh": (gates * m.hidden_size, m.hidden_size),
        "bias": (gates * m.hidden_size,),
        "bias_n": (m.hidden_size,),
    }


# One layer's shape of each parameter of equinox's layers, from the layer's own attributes: what
# a stack (``eqx.filter_vmap`` of a layer) has in front of it is the stack.
SHAPES: dict[str, Callable[[Any], dict[str, tuple[int, ...]]]] = {
    "Linear": _linear,
    "Conv": _conv,
    "ConvTranspose": _conv,
    "Embedding": lambda m: {"weight": (m.num_embeddings, m.embedding_size)},
    "LayerNorm": lambda m: {"weight": tuple(m.shape), "bias": tuple(m.shape)},
    "GRUCell": _cell(3),
    "LSTMCell": _cell(4),
}


def _eqx() -> Any:
    return sys.modules.get("equinox")


def is_param(x: Any) -> bool:
    """The default selection: a floating (or complex) array or ``ShapeDtypeStruct``."""
    if not isinstance(x, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
        return False
    return bool(np.issubdtype(x.dtype, np.inexact)) and not jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key
    )


@dataclasses.dataclass(frozen=True)
class Owner:
    """The equinox layer a parameter belongs to, and the field holding it."""

    layer: Any
    field: str


def _owners(model: Any) -> dict[str, Owner]:
    """Every leaf's path -> its innermost enclosing ``eqx.Module`` and that module's field."""
    eqx, out = _eqx(), {}

    def visit(node: Any, prefix: tuple[Any, ...]) -> None:
        inner = lambda x: x is not node and isinstance(x, eqx.Module)
        for keypath, x in jax.tree_util.tree_flatten_with_path(node, is_leaf=inner)[0]:
            if inner(x):
                visit(x, prefix + tuple(keypath))
            else:
                field = getattr(keypath[0], "name", "") if keypath else ""
                out[_keys.path_str(prefix + tuple(keypath))] = Owner(node, field)

    visit(model, ())
    return out


def layout_of(owner: Owner) -> tuple[int, int] | None:
    """The (in_axis, out_axis) of an equinox layer's weight, or None (Flax's layout or none)."""
    kind = layer_kind(owner.layer, LAYOUTS)
    rule = None if kind is None else LAYOUTS[kind].get(owner.field)
    return None if rule is None else rule(owner.layer)


def layer_kind(layer: Any, known: Mapping[str, Any]) -> str | None:
    """The name of the equinox layer class in ``known`` that ``layer`` is (or derives from)."""
    for cls in type(layer).__mro__:
        if cls.__module__.startswith("equinox") and cls.__name__ in known:
            return cls.__name__
    return None


class Adapted:
    """An equinox module split for the tree builder (see :func:`adapt`)."""

    def __init__(self, model: Any, where: str, select: Callable[[Any], bool] | None) -> None:
        eqx = _eqx()
        select = is_param if select is None else select
        self.params, self.static = eqx.partition(model, select)
        self.owners = _owners(model)
        self.shapes = {
            _keys.path_str(kp): tuple(np.shape(x))
            for kp, x in jax.tree_util.tree_flatten_with_path(self.params)[0]
        }
        for keypath, x in jax.tree_util.tree_flatten_with_path(self.static)[0]:
            if isinstance(x, jax.ShapeDtypeStruct):
                raise ValueError(
                    f"`{where}`: the leaf {_keys.path_str(keypath)!r} ({x.dtype}{list(x.shape)}) "
                    "is abstract but not a parameter the rules make (the filter selects "
                    "floating arrays); pass a concrete model, or select it with `filter=`."
                )

    def stack_of(self, path: str) -> tuple[int, ...]:
        """The leading stack axes of the parameter at ``path`` (``eqx.filter_vmap`` of its
        layer): what its shape has in front of the one-layer shape its layer declares."""
        owner = self.owners.get(path)
        kind = None if owner is None else layer_kind(owner.layer, SHAPES)
        if owner is None or kind is None:
            return ()
        try:
            inner = SHAPES[kind](owner.layer).get(owner.field)
        except (AttributeError, TypeError):  # a subclass that keeps other attributes
            return ()
        stored = self.shapes.get(path)
        if inner is None or stored is None or len(stored) <= len(inner):
            return ()
        extra = len(stored) - len(inner)
        return stored[:extra] if stored[extra:] == tuple(inner) else ()

    def laid_out(self, path: str, init: Any) -> Any:
        """``init`` in the layout of the parameter at ``path``, and stacked as one layer of a
        vmapped layer's stack (an explicit layout or ``jinit.stacked`` is kept)."""
        stack = self.stack_of(path)
        if stack and not isinstance(init, _stacked.Stacked):
            depth = _stacked.stack_depth(path, stack, self.shapes)
            unroll = _stacked.InsertAfter(depth)
            return _stacked.stacked(self._axes(path, init), unroll, len(stack))
        return self._axes(path, init)

    def _axes(self, path: str, init: Any) -> Any:
        owner = self.owners.get(path)
        axes = None if owner is None else layout_of(owner)
        if axes is None:
            return init
        if isinstance(init, _stacked.Stacked):
            if isinstance(init.init, _layout.Layout):
                return init
            return _stacked.stacked(_layout.layout(init.init, *axes), init.unroll_spec, init.axes)
        return init if isinstance(init, _layout.Layout) else _layout.layout(init, *axes)

    def bind(self, rules: Any) -> Any:
        """``rules`` with every rule set that reads the layers (``bind_layers``) bound to them."""
        if hasattr(rules, "bind_layers"):
            return rules.bind_layers(self.owners)
        if isinstance(rules, Sequence) and not isinstance(rules, str | bytes):
            return [self.bind(r) for r in rules]
        return rules

    def shardings(self, shardings: Any, where: str) -> Any:
        """``shardings`` as the builder reads it: path rules become a pytree like ``params``."""
        return (
            _sharding_tree(self.params, shardings, where)
            if _is_path_rules(shardings)
            else shardings
        )

    def structure(self, inner: _boxes.Structure) -> Structure:
        return Structure(inner.treedef, inner.boxes, self.static)


def _is_path_rules(shardings: Any) -> bool:
    if isinstance(shardings, PartitionSpec | Sharding | _eqx().Module) or shardings is None:
        return False
    return isinstance(shardings, Mapping) or (
        isinstance(shardings, Sequence) and not isinstance(shardings, str | bytes)
    )


def _sharding_tree(params: Any, shardings: Any, where: str) -> Any:
    """A pytree like ``params`` of the first matching pattern's sharding (None: no match)."""
    items = list(shardings.items()) if isinstance(shardings, Mapping) else list(shardings)
    compiled = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise TypeError(
                f"`{where}(shardings=...)`: each path rule must be a (pattern, sharding) pair; "
                f"got {item!r}."
            )
        pattern, spec = item
        if not isinstance(spec, PartitionSpec | Sharding) and spec is not None:
            raise TypeError(
                f"`{where}(shardings=...)`: the sharding for {pattern!r} must be a PartitionSpec, "
                f"a Sharding or None; got {spec!r}."
            )
        try:
            compiled.append((re.compile(pattern) if isinstance(pattern, str) else pattern, spec))
        except re.error as e:
            raise ValueError(
                f"`{where}(shardings=...)`: {pattern!r} is not a valid regular expression: {e}."
            ) from None
    used: set[int] = set()

    def pick(keypath: Any, _: Any) -> Any:
        path = _keys.path_str(keypath)
        for i, (regex, spec) in enumerate(compiled):
            if regex.search(path):
                used.add(i)
                return spec
        return None

    tree = jax.tree_util.tree_map_with_path(pick, params)
    for i, (regex, _) in enumerate(compiled):
        if i not in used:
            raise ValueError(
                f"`{where}(shardings=...)`: the pattern {regex.pattern!r} matches no parameter "
                "(or only ones an earlier pattern takes); fix or remove it."
            )
    return tree


@dataclasses.dataclass(frozen=True)
class Structure(_boxes.Structure):
    """Puts the built parameters back into the module, beside its unchanged other leaves."""

    static: Any = None

    def unflatten(self, values: Sequence[Any]) -> Any:
        return _eqx().combine(super().unflatten(values), self.static)


def adapt(tree: Any, where: str, select: Callable[[Any], bool] | None = None) -> Adapted | None:
    """``tree`` split for the builder when it is an equinox module (else None)."""
    if isinstance(tree, Adapted):
        return tree
    eqx = _eqx()
    if eqx is None or not isinstance(tree, eqx.Module):
        return None
    return Adapted(tree, where, select)


def owners_required(owners: Mapping[str, Owner] | None, what: str, where: str) -> Mapping:
    """The layers a rule set reads, or an error saying it needs an equinox model."""
    if owners is None:
        raise TypeError(
            f"`{where}`: `{what}` reads equinox's layers; use it on an equinox module "
            "(`jinit.equinox.init_eqx`, or `jinit.init_tree`/`jinit.explain` given the module)."
        )
    return owners
