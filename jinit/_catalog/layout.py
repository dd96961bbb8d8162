"""Layouts: an initializer written for Flax's ``(..., in, out)`` kernels, run on another layout.

Every fan-scaled initializer reads its fans from Flax's layout by default: the last axis is the
output, the one before it the input, the rest the receptive field. Equinox (and torch) store a
``Linear`` weight as ``(out, in)`` and a convolution's as ``(out, in, *kernel)``, so
``he_normal()`` on them would scale by the wrong fan. A :class:`Layout` states where a
parameter's input and output axes are and runs its initializer on the *canonical* shape, the
parameter's axes arranged as ``(*receptive field, in, out)`` (several in or out axes merged
into one), so the initializer computes the fans of the parameter's real axes.

Values. An element-wise draw (a :class:`jinit.Draw` with a block form: uniform, normal and
truncated normal, the variance-scaling family) is drawn over the parameter's own shape, at its
own row-major counters, and finished with the canonical shape's scale: the same bits as the
initializer built with the real axes (``he_normal(in_axis=-1, out_axis=-2)`` on ``(out, in)``),
and grouped by the tree builder like any other leaf. Anything else (orthogonal, identity, a
user's function) is made at the canonical shape and its axes moved back (a transpose), so its
structure lands on the real in and out axes.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from jinit import _checks, _value
from jinit._core import make_init, place
from jinit._rng import draws as _draws
from jinit._typing import Axes, Initializer, KeyArray, OutSharding
from jinit._value import Init, factory

Split = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def axes(in_axis: Axes, out_axis: Axes, shape: tuple[int, ...]) -> Split:
    """(receptive-field, in, out) axes of ``shape``, as non-negative ints."""
    where, n = "layout", len(shape)
    ins = _checks.normalize_axes(where, "in_axis", in_axis, n)
    outs = _checks.normalize_axes(where, "out_axis", out_axis, n)
    if set(ins) & set(outs):
        raise ValueError(
            f"`layout(in_axis={in_axis}, out_axis={out_axis})` names an axis as "
            f"both input and output of the shape {shape}."
        )
    field = tuple(a for a in range(n) if a not in ins and a not in outs)
    return field, ins, outs


def canonical(split: Split, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape in Flax's layout: ``(*receptive field, prod(in), prod(out))``."""
    field, ins, outs = split
    size = lambda axes: math.prod(shape[a] for a in axes)
    return (*(shape[a] for a in field), size(ins), size(outs))


@_value.wrapper("layout")
@factory("equinox.layout")
def layout(init: Initializer, in_axis: Axes = -1, out_axis: Axes = -2) -> Init:
    """Runs ``init`` on a parameter whose input and output axes are ``in_axis`` and ``out_axis``.

    ``init`` is written for Flax's layout (``(*receptive field, in, out)``: ``he_normal()``,
    ``torch_linear_default()``, ``orthogonal()``, ...); the result computes its fans from the
    parameter's real axes. The defaults are equinox's and torch's ``Linear`` layout,
    ``(out, in)``; a convolution's ``(out, in, *kernel)`` is ``in_axis=1, out_axis=0``
    (negative axes, ``in_axis=-3, out_axis=-4`` for a 2-D kernel, also hold under a leading
    stack axis). An element-wise draw is made over the parameter's own shape with the real fans'
    scale (the same bits as ``init`` built with these axes); anything else (orthogonal,
    identity, dirac) is made in Flax's layout and its axes moved back.

    :func:`jinit.equinox.init_eqx` applies the layout of equinox's own layers by itself; this
    is for a user's module, or to override it: an initializer already wrapped in ``layout`` is
    used as it is (``layout(init, in_axis=-2, out_axis=-1)`` keeps ``init``'s own axes).

    Args:
      init: an initializer, written for Flax's layout.
      in_axis: the parameter's input axis or axes (default ``-1``).
      out_axis: the parameter's output axis or axes (default ``-2``).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit, jinit.equinox
      >>> w = jinit.equinox.layout(jinit.he_normal())(jax.random.key(0), (64, 4096))  # (out, in)
      >>> round(float(w.std() * (4096 / 2) ** 0.5), 2)
      1.0
    """
    if not callable(init):
        raise TypeError(f"`layout(init=...)` must be an initializer (a callable); got {init!r}.")
    in_axis = _checks.check_axes("layout", "in_axis", in_axis)
    out_axis = _checks.check_axes("layout", "out_axis", out_axis)
    at = lambda shape: canonical(axes(in_axis, out_axis, shape), shape)

    def iid(shape: tuple[int, ...], dtype: Any) -> _draws.Sampling | None:
        """``init``'s sampling at the canonical shape, when it is element-wise."""
        s = _draws.sampling_of(init, at(shape), dtype)
        return s if s is not None and s.draw.block is not None and not s.draw.vmap else None

    def body(key: KeyArray, shape: tuple[int, ...], dtype: Any, out_sharding: OutSharding):
        axes(in_axis, out_axis, shape)  # the layout's checks, on the caller's shape
        if iid(shape, dtype) is not None:  # (a key jinit's kernels do not cover: same counters)
            return place(init(key, at(shape), dtype).reshape(shape), out_sharding)
        field, ins, outs = axes(in_axis, out_axis, shape)
        order = (*field, *ins, *outs)
        out = init(key, at(shape), dtype).reshape(tuple(shape[a] for a in order))
        return place(jnp.transpose(out, tuple(int(a) for a in np.argsort(order))), out_sharding)

    # `init`'s target and overflow bound, at the canonical shape.
    inner, magnitude = _value.target_of(init), _value.magnitude_of(init)
    return make_init(
        "equinox.layout",
        body,
        None,
        sampling=iid,  # an element-wise draw over the parameter's shape, the canonical finish
        target=None if inner is None else lambda s: inner(at(tuple(s))),
        magnitude=None if magnitude is None else lambda s: magnitude(at(tuple(s))),
        wraps=init,
        layout=(in_axis, out_axis),
    )
