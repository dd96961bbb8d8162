"""The shape a Flax module's own initializer is called with, per parameter: what a rule means.

A rule ``(pattern, init)`` should mean what ``kernel_init=init`` means. A Flax module does not
always call its initializer on the parameter's stored shape:

* linen ``DenseGeneral`` (so every ``MultiHeadDotProductAttention`` projection) calls it on the
  kernel flattened to ``(*batch, prod(in axes), prod(out axes))`` and reshapes; nnx
  ``LinearGeneral`` (so ``MultiHeadAttention``) on ``(prod(batch + in axes), prod(out axes))``;
* inside ``nn.scan`` / ``nn.vmap`` (``variable_axes={"params": 0}``) or ``nnx.vmap`` /
  ``nnx.scan`` it is called once per layer with one layer's shape, and the layers are stacked
  on leading axes.

Run on the stored shape, a fan-based initializer would count the extra axes into its fans: a
12-head query kernel ``(768, 12, 64)`` would get fan_in ``12 * 768`` (0.29x the std), a layer
of a 16-layer scan fans 16x too large (0.25x the std). So during the abstract ``module.init``
that :func:`jinit.flax.init_linen` already runs, :func:`record` watches every ``Scope.param``
call (``flax.core.Scope``, public): the shape the parameter is made with inside its transforms
(one layer's), the scope where the innermost lifted transform starts (the layer index goes after
it, as in the unrolled twin ``params/layers/3/...``), and, from the init's own trace, the shape
its initializer is called with (the flattened shape, which the module then reshapes).
An nnx model arrives already made (abstract), so :func:`nnx_calls` reads the same facts from
the module types whose shapes are known (:data:`NNX`): each layer's own attributes give one
layer's shape, and the stack is what the stored shape has in front of it; the layer index goes
after the outermost module whose every parameter has that stack in front (the vmapped one).

:class:`ModuleFans` then turns a rule's initializer into ``jinit.stacked(jinit.equinox.layout(
init, in_axes, out_axes), ...)`` for that parameter: the same bits as those explicit forms.
Where the stack axes are not leading (``variable_axes={"params": 1}``), no explicit form exists,
and a fan-based initializer is refused, naming the parameter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax

from jinit import _value
from jinit._catalog.layout import layout
from jinit._catalog.stacked import stacked
from jinit._tree.keys import stack_depth
from jinit._value import InsertAfter


@dataclasses.dataclass(frozen=True)
class Call:
    """How the module's own init makes one parameter: ``shape`` (one layer's), the shape its
    initializer is called with (``flat``; ``None``: the same), the path depth of the layer index
    (``None``: no stack known) and where this was learnt (``source``, for ``explain``)."""

    shape: tuple[int, ...]
    flat: tuple[int, ...] | None
    depth: int | None
    source: str


def _probe(init_fn: Any, args: tuple, kwargs: dict) -> tuple[tuple[int, ...], Any] | None:
    """(the parameter's shape, the shape the initializer inside is called with, or None).

    From the init's own trace: when its result is a ``reshape`` of another array (DenseGeneral's
    ``kernel_init(rng, flat_shape)`` then ``jnp.reshape``), that array's shape is the call's.
    """
    try:
        closed = jax.make_jaxpr(lambda k: init_fn(k, *args, **kwargs))(jax.random.key(0))
    except Exception:  # a user's init that cannot be traced alone: nothing is learnt
        return None
    if len(closed.out_avals) != 1 or not hasattr(closed.out_avals[0], "shape"):
        return None
    shape = tuple(closed.out_avals[0].shape)
    out = closed.jaxpr.outvars[0]
    producer = [e for e in closed.jaxpr.eqns if out in e.outvars]
    if producer and producer[0].primitive.name == "reshape":
        return shape, tuple(producer[0].invars[0].aval.shape)
    return shape, None


@contextlib.contextmanager
def record(calls: dict[str, Call]) -> Iterator[None]:
    """Fills ``calls["params/<scope path>/<name>"]`` for every linen ``self.param`` made inside
    (``flax.core.Scope.param``, watched for the duration)."""
    from flax.core import Scope

    original = Scope.param

    def param(self: Any, name: str, init_fn: Any, *args: Any, **kwargs: Any) -> Any:
        probed = _probe(init_fn, args, {k: v for k, v in kwargs.items() if k != "unbox"})
        if probed is not None:
            root = self  # a lifted transform's inner scopes start from a root of their own
            while root.parent is not None:
                root = root.parent
            shape, flat = probed
            depth = 1 + len(root.path) if root.path else None
            path = "/".join(("params", *map(str, self.path), name))
            calls[path] = Call(shape, flat, depth, "linen")
        return original(self, name, init_fn, *args, **kwargs)

    Scope.param = param  # type: ignore[method-assign]
    try:
        yield
    finally:
        Scope.param = original  # type: ignore[method-assign]


def _tup(x: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in x) if isinstance(x, (tuple, list)) else (int(x),)


def _general(m: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    batch, ins, outs = tuple(m.batch_axis.values()), _tup(m.in_features), _tup(m.out_features)
    flat = (math.prod(batch) * math.prod(ins), math.prod(outs))
    return {"kernel": ((*batch, *ins, *outs), flat), "bias": ((*batch, *outs), None)}


def _norm(m: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    n = (int(m.num_features),)
    return {k: (n, None) for k in ("scale", "bias", "mean", "var")}


# nnx layer -> {parameter: (one layer's shape, the shape its initializer is called with)}
NNX: dict[str, Callable[[Any], dict[str, tuple[tuple[int, ...], Any]]]] = {
    "Linear": lambda m: {
        "kernel": ((m.in_features, m.out_features), None),
        "bias": ((m.out_features,), None),
    },
    "LinearGeneral": _general,
    "Einsum": lambda m: {
        "kernel": (_tup(m.kernel_shape), None),
        "bias": (_tup(m.bias_shape) if m.bias_shape is not None else (), None),
    },
    "Conv": lambda m: {"kernel": (_tup(m.kernel_shape), None), "bias": ((m.out_features,), None)},
    "ConvTranspose": lambda m: {
        "kernel": (_tup(m.kernel_shape), None),
        "bias": ((m.out_features,), None),
    },
    "Embed": lambda m: {"embedding": ((m.num_embeddings, m.features), None)},
    "LayerNorm": _norm,
    "RMSNorm": _norm,
    "GroupNorm": _norm,
    "BatchNorm": _norm,
    "LoRA": lambda m: {
        "lora_a": ((m.in_features, m.lora_rank), None),
        "lora_b": ((m.lora_rank, m.out_features), None),
    },
}


def _kind(module: Any) -> str | None:
    for cls in type(module).__mro__:
        if cls.__module__.startswith("flax.nnx") and cls.__name__ in NNX:
            return cls.__name__
    return None


def nnx_calls(model: Any, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Call]:
    """The calls of every parameter of a known nnx layer type in ``model`` (made or abstract);
    ``shapes``: every selected parameter's stored shape, by path."""
    from flax import nnx

    out = {}
    for node_path, node in nnx.iter_graph(model):
        kind = _kind(node) if isinstance(node, nnx.Module) else None
        if kind is None:
            continue
        try:
            table = NNX[kind](node)
        except (AttributeError, TypeError):  # a subclass that keeps other attributes
            continue
        for name, (shape, flat) in table.items():
            path = "/".join([*map(str, node_path), name])
            stored = shapes.get(path)
            if stored is None:
                continue
            extra = len(stored) - len(shape)
            depth = stack_depth(path, stored[:extra], shapes) if extra > 0 else None
            out[path] = Call(shape, flat, depth, f"nnx.{kind}")
    return out


def _merge(shape: tuple[int, ...], flat: tuple[int, ...]) -> list[tuple[int, ...]] | None:
    """The groups of consecutive axes of ``shape`` that ``flat`` merges, or None."""
    groups, axis = [], 0
    for size in flat:
        group: list[int] = []
        prod = 1
        while axis < len(shape) and (not group or prod < size):
            prod *= shape[axis]
            group.append(axis)
            axis += 1
        if prod != size:
            return None
        groups.append(tuple(group))
    return groups if axis == len(shape) else None


def _fan_based(init: Any, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether ``init``'s target std differs between the shapes ``a`` and ``b``."""
    target = _value.target_of(init)
    return target is not None and tuple(target(a))[3] != tuple(target(b))[3]


@dataclasses.dataclass(frozen=True)
class ModuleFans:
    """The Flax helpers' ``adapt``: a rule's ``init`` as the parameter's module would call it.

    An explicit ``jinit.stacked`` or layout in the rule is left as the user wrote it."""

    calls: Mapping[str, Call]
    where: str

    def __call__(self, path: str, stored: tuple[int, ...], init: Any) -> Any:
        call = self.calls.get(path)
        v = _value.of(init)
        if call is None or (v is not None and (v.stack is not None or v.layout is not None)):
            return init
        inner = call.shape
        if call.flat is not None and call.flat != inner and len(call.flat) >= 2:
            groups = _merge(inner, call.flat)
            if groups is not None and len(groups) >= 2:
                init = layout(init, in_axis=groups[-2], out_axis=groups[-1])
        extra = len(stored) - len(inner)
        if extra <= 0:
            return init
        if stored[extra:] == inner and call.depth is not None:
            return stacked(init, unroll=InsertAfter(call.depth), axes=extra)
        if _fan_based(init, stored, inner):
            raise ValueError(
                f"`{self.where}`: the parameter {path!r} {stored} is made by its module with "
                f"the shape {inner} (a transform stacks it on axes that are not leading), and "
                f"the fans of {_value.short_name(init)} would count the stack. Move the stack "
                "axes first (`variable_axes={'params': 0}`) and use "
                "`jinit.stacked(init, unroll=...)`, or give the rule a fan-free initializer."
            )
        return init

    def note(self, path: str, stored: tuple[int, ...]) -> str | None:
        """What ``explain`` says of the parameter's fans, or None (the stored shape's)."""
        call = self.calls.get(path)
        if call is None:
            return None
        notes = []
        if call.flat is not None and call.flat != call.shape:
            notes.append(f"fans of {call.flat}, the shape {call.source} calls kernel_init with")
        extra = len(stored) - len(call.shape)
        if extra > 0:
            notes.append(f"one layer of a stack {stored[:extra]} ({call.source} transform)")
        return "; ".join(notes) or None
