"""The shape a linen module's own initializer is called with, per parameter: what a rule means.

A rule ``(pattern, init)`` should mean what ``kernel_init=init`` means. A linen module does not
always call its initializer on the parameter's stored shape:

* ``DenseGeneral`` (so every ``MultiHeadDotProductAttention`` projection) calls it on the
  kernel flattened to ``(*batch, prod(in axes), prod(out axes))`` and reshapes;
* inside ``nn.scan`` / ``nn.vmap`` (``variable_axes={"params": 0}``) it is called once per layer
  with one layer's shape, and the layers are stacked on leading axes.

Run on the stored shape, a fan-based initializer would count the extra axes into its fans: a
12-head query kernel ``(768, 12, 64)`` would get fan_in ``12 * 768`` (0.29x the std), a layer
of a 16-layer scan fans 16x too large (0.25x the std). So during the abstract ``module.init``
that :func:`jinit.flax.init_linen` already runs, :func:`record` watches every ``Scope.param``
call (``flax.core.Scope``, public): the shape the parameter is made with inside its transforms
(one layer's), the scope where the innermost lifted transform starts (the layer index goes after
it, as in the unrolled twin ``params/layers/3/...``), and, from the init's own trace, the shape
its initializer is called with (the flattened shape, which the module then reshapes).
:func:`adapt` then turns a rule's initializer into ``jinit.stacked(jinit.equinox.layout(init,
in_axes, out_axes), ...)`` for that parameter: the same bits as those explicit forms.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import jax

from jinit._layout import Layout, layout
from jinit._stacked import Stacked, stacked


@dataclasses.dataclass(frozen=True)
class InsertAfter:
    """``stacked``'s ``unroll``: the layer index goes after the first ``depth`` path components
    (a value, so equal calls compile once)."""

    depth: int

    def __call__(self, path: str, index: tuple[int, ...]) -> str:
        parts = path.split("/")
        return "/".join([*parts[: self.depth], *map(str, index), *parts[self.depth :]])


@dataclasses.dataclass(frozen=True)
class Call:
    """How the module's own init makes one parameter: ``shape`` (one layer's), the shape its
    initializer is called with (``draw``; ``None``: the same), and the path depth of the
    innermost lifted transform."""

    shape: tuple[int, ...]
    draw: tuple[int, ...] | None
    depth: int


def _probe(init_fn: Any, args: tuple, kwargs: dict) -> tuple[tuple[int, ...], Any] | None:
    """(the parameter's shape, the shape the initializer inside made it at, or None).

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
    """Fills ``calls["params/<scope path>/<name>"]`` for every ``self.param`` made inside."""
    from flax.core import Scope

    original = Scope.param

    def param(self: Any, name: str, init_fn: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs_init = {k: v for k, v in kwargs.items() if k != "unbox"}
        probed = _probe(init_fn, args, kwargs_init)
        if probed is not None:
            root = self
            while root.parent is not None:
                root = root.parent
            shape, draw = probed
            calls["/".join(("params", *self.path, name))] = Call(shape, draw, 1 + len(root.path))
        return original(self, name, init_fn, *args, **kwargs)

    Scope.param = param  # type: ignore[method-assign]
    try:
        yield
    finally:
        Scope.param = original  # type: ignore[method-assign]


def _merge(shape: tuple[int, ...], draw: tuple[int, ...]) -> list[tuple[int, ...]] | None:
    """The groups of consecutive axes of ``shape`` that ``draw`` merges, or None."""
    groups, axis = [], 0
    for size in draw:
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


def adapt(call: Call, stored: tuple[int, ...], init: Any) -> Any:
    """``init`` for a parameter of ``stored`` shape that its module makes as ``call`` says (an
    explicit ``jinit.stacked`` or layout in the rule is left as the user wrote it)."""
    if isinstance(init, (Stacked, Layout)):
        return init
    inner = call.shape
    if call.draw is not None and call.draw != inner and len(call.draw) >= 2:
        groups = _merge(inner, call.draw)
        if groups is not None and len(groups) >= 2:
            init = layout(init, in_axis=groups[-2], out_axis=groups[-1])
    extra = len(stored) - len(inner)
    if extra > 0 and stored[extra:] == inner:
        init = stacked(init, unroll=InsertAfter(call.depth), axes=extra)
    return init
