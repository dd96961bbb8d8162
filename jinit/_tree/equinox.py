"""An equinox module seen as a parameter tree: its arrays, their layouts, and the rest kept.

An ``eqx.Module`` is a pytree whose leaves mix parameters (arrays, or ``ShapeDtypeStruct`` after
``eqx.filter_eval_shape``) with everything else a layer holds (activation functions, dropout
rates, flags). :func:`adapt` splits the module with ``eqx.partition``: the parameters go to the
tree builder at their attribute paths (``layers/0/weight``), the rest is combined back
unchanged. Each parameter's layout comes from the equinox layer that owns it
(:data:`LAYOUTS`), and rule sets that need the layers (:func:`jinit.equinox.defaults`) are bound
to them. Values equinox's constructors compute rather than draw are put in after the build:
a :func:`from_layer` initializer's ``finish`` (``WeightNorm``'s ``g``, the norm of its built
weight), and the non-floating state of equinox's own layers (:data:`STATE`). Equinox is
imported only by the user: when it is not loaded no tree is a module, and nothing here imports
it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec, Sharding

from jinit import _value
from jinit._tree import boxes as _boxes
from jinit._tree import keys as _keys
from jinit._value import Init

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
    """``Conv`` and ``ConvTranspose`` alike: weight ``(out, in / groups, *kernel)``."""
    weight = (m.out_channels, m.in_channels // m.groups, *m.kernel_size)
    return {"weight": weight, "bias": (weight[0], *(1,) * m.num_spatial_dims)}


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


# The non-floating state equinox's stateful layers make in ``__init__`` (equinox 0.13.8), as
# the value ``jnp.full`` fills: ``BatchNorm``'s first-call flag ``jnp.array(True)`` and step
# counter ``jnp.array(0)`` (weakly typed, as there). Not parameters, so no rule makes them;
# an abstract model holds them abstract, and they take this value whatever the rules.
STATE: dict[str, dict[str, bool | int]] = {
    "BatchNorm": {"ema_first_time_index": True, "batch_counter": 0},
}


def _eqx() -> Any:
    return sys.modules.get("equinox")


def from_layer(init: Any, finish: Callable[[Any, str, Any, Any], Any], name: str) -> Init:
    """A parameter that equinox's constructor computes from its layer's others (``WeightNorm``'s
    ``g`` is the norm of the weight): the builder makes ``init``'s draw (what the computation
    starts from, or a placeholder), then the built model's value at the parameter's path is
    replaced by ``finish(layer, path, value, abstract)``, ``layer`` the built layer owning it and
    ``abstract`` the parameter's ``ShapeDtypeStruct`` (``Init.finish``). ``init`` is a jinit
    factory's value; ``name`` is what :func:`jinit.explain` shows. Equal arguments give equal
    values (the compile cache hits)."""
    inner = _value.of(init)
    if inner is None or inner.identity is None:
        raise TypeError(f"`from_layer(init=...)` must be a jinit factory's value; got {init!r}.")
    identity = ("from_layer", inner, finish, name)
    return dataclasses.replace(inner, name=name, target=None, identity=identity, finish=finish)


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
        # (a StateIndex is the layer's state, not a layer: its leaves are the layer's field's)
        inner = lambda x: (
            x is not node and isinstance(x, eqx.Module) and not isinstance(x, eqx.nn.StateIndex)
        )
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
        flat = jax.tree_util.tree_flatten_with_path(self.params)[0]
        self.abstract = {_keys.path_str(kp): x for kp, x in flat}
        self.shapes = {path: tuple(np.shape(x)) for path, x in self.abstract.items()}
        self.finish: dict[str, Init] = {}  # path -> its `from_layer` value, as the rules resolve
        self.fills: dict[str, tuple[Any, jax.ShapeDtypeStruct]] = {}  # path -> STATE value
        for keypath, x in jax.tree_util.tree_flatten_with_path(self.static)[0]:
            if isinstance(x, jax.ShapeDtypeStruct):
                path = _keys.path_str(keypath)
                fill = _state_fill(self.owners.get(path), x)
                if fill is None:
                    raise ValueError(
                        f"`{where}`: the leaf {path!r} ({x.dtype}{list(x.shape)}) is abstract but "
                        "not a parameter the rules make (the filter selects floating arrays); "
                        "pass a concrete model, or select it with `filter=`."
                    )
                self.fills[path] = (fill, x)

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
        vmapped layer's stack (an explicit layout or ``jinit.stacked`` is kept). A
        value made by :func:`from_layer` is kept as it is, and its ``finish`` noted for the built
        model."""
        v = _value.of(init)
        if v is not None and v.finish is not None:
            self.finish[path] = v
            return init
        stack = self.stack_of(path)
        if stack and (v is None or v.stack is None):
            unroll = _value.InsertAfter(_keys.stack_depth(path, stack, self.shapes))
            return _value.WRAPPERS["stacked"](self._axes(path, init), unroll, len(stack))
        return self._axes(path, init)

    def _axes(self, path: str, init: Any) -> Any:
        owner = self.owners.get(path)
        axes = None if owner is None else layout_of(owner)
        if axes is None or _laid_out(init):
            return init
        v = _value.of(init)
        if v is not None and v.stack is not None:  # the layout goes inside the stack
            if _laid_out(v.wraps):
                return init
            layout = _value.WRAPPERS["layout"](v.wraps, *axes)
            return _value.WRAPPERS["stacked"](layout, v.stack.unroll, v.stack.axes)
        return _value.WRAPPERS["layout"](init, *axes)

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
        finish = tuple(
            (p, f.finish, self.abstract[p]) for p, f in self.finish.items() if f.finish is not None
        )
        fills = tuple((p, v, x) for p, (v, x) in self.fills.items())
        return Structure(inner.treedef, inner.boxes, self.static, finish, fills)


def _laid_out(init: Any) -> bool:
    """Whether ``init`` states its own layout (``jinit.equinox.layout``)."""
    v = _value.of(init)
    return v is not None and v.layout is not None


def _state_fill(owner: Owner | None, abstract: jax.ShapeDtypeStruct) -> bool | int | None:
    """The value :data:`STATE` gives the abstract non-parameter leaf, or None (none known)."""
    kind = None if owner is None else layer_kind(owner.layer, STATE)
    fill = None if kind is None else STATE[kind].get(owner.field)  # type: ignore[union-attr]
    return None if fill is None or jnp.result_type(fill) != abstract.dtype else fill


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
    finish: tuple[tuple[str, Callable[..., Any], Any], ...] = ()  # (path, finish, abstract)
    fills: tuple[tuple[str, Any, Any], ...] = ()  # (path, STATE value, abstract)

    def unflatten(self, values: Sequence[Any]) -> Any:
        model = _eqx().combine(super().unflatten(values), self.static)
        if not (self.finish or self.fills):
            return model
        # Every value is computed from the built model before any is put in (SpectralNorm's
        # u and v each start from both draws).
        owners = _owners(model)
        flat, treedef = jax.tree_util.tree_flatten_with_path(model)
        built = {_keys.path_str(kp): x for kp, x in flat}
        new = {p: _placed(f(owners[p].layer, p, built[p], x), built[p]) for p, f, x in self.finish}
        new |= {p: jnp.full(x.shape, v) for p, v, x in self.fills}
        leaves = [new.get(_keys.path_str(kp), x) for kp, x in flat]
        return jax.tree_util.tree_unflatten(treedef, leaves)


def _placed(value: Any, built: Any) -> Any:
    """``value`` with the sharding the builder gave the parameter it replaces."""
    if isinstance(built, jax.core.Tracer) or not isinstance(built, jax.Array):
        return value
    return value if value.sharding == built.sharding else jax.device_put(value, built.sharding)


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
