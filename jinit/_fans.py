"""Fan-in and fan-out of a weight tensor, from explicit axes or from an einsum spec.

All of it is plain Python on static ints, so it runs the same inside and outside `jit`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

from jinit import _checks
from jinit._typing import Axes, Shape, public


@public("compute_fans")
def compute_fans(
    shape: Shape,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
) -> tuple[float, float]:
    r"""Effective fan-in and fan-out of a dense or convolutional kernel.

    Axes that are in none of ``in_axis``, ``out_axis`` and ``batch_axis`` form the *receptive
    field* (a convolution's spatial axes); both fans are multiplied by its size:

    .. math::
       r = \frac{\prod \text{shape}}{n_\text{in}\, n_\text{out}\, n_\text{batch}},\quad
       \text{fan\_in} = n_\text{in} r,\quad \text{fan\_out} = n_\text{out} r

    This is the computation of ``jax.nn.initializers`` (same float arithmetic, so the same
    variances to the bit), with validation: axes out of range, or the default axes on a shape of
    rank below 2, raise a ``ValueError`` naming the shape.

    Args:
      shape: the weight tensor's shape.
      in_axis: axis or axes of the input dimension (default ``-2``).
      out_axis: axis or axes of the output dimension (default ``-1``).
      batch_axis: axis or axes that are independent copies and count in neither fan.

    Returns:
      ``(fan_in, fan_out)`` as floats.

    An axis named in both ``in_axis`` and ``out_axis`` (e.g. ``in_axis=0, out_axis=0`` for a
    vector) follows jax's arithmetic: it counts in both fans and is divided out of the receptive
    field twice, so ``compute_fans((4, 6), in_axis=0, out_axis=0)`` is ``(6.0, 6.0)``, as in jax.

    Raises:
      ValueError: an axis out of range, or a zero-sized fan or batch axis.

    Examples:
      >>> import jinit
      >>> jinit.compute_fans((3, 3, 64, 128))  # an HWIO conv kernel
      (576.0, 1152.0)
      >>> jinit.compute_fans((512, 8, 64), in_axis=0, out_axis=(1, 2))
      (512.0, 512.0)
    """
    shape = _checks.canonical_shape("compute_fans", shape)
    in_axis = _checks.check_axes("compute_fans", "in_axis", in_axis)
    out_axis = _checks.check_axes("compute_fans", "out_axis", out_axis)
    batch_axis = _checks.check_axes("compute_fans", "batch_axis", batch_axis)
    return _compute_fans_cached(shape, in_axis, out_axis, batch_axis)


@functools.lru_cache(maxsize=4096)
def _compute_fans_cached(
    shape: tuple[int, ...],
    in_axis: int | tuple[int, ...],
    out_axis: int | tuple[int, ...],
    batch_axis: int | tuple[int, ...],
) -> tuple[float, float]:
    ndim = len(shape)
    if in_axis == -2 and ndim <= 1:
        raise ValueError(
            f"`compute_fans`: the default `in_axis=-2` needs a weight of rank >= 2; got shape "
            f"{shape}. Pass `in_axis`/`out_axis` explicitly, or use a non-fan initializer "
            "(e.g. `zeros`, `normal`) for biases and scales."
        )
    sizes = []
    for name, axes in (("in_axis", in_axis), ("out_axis", out_axis), ("batch_axis", batch_axis)):
        idx = _checks.normalize_axes("compute_fans", name, axes, ndim)
        sizes.append(math.prod(shape[i] for i in idx))
    in_size, out_size, batch_size = sizes
    if 0 in (in_size, out_size, batch_size):
        raise ValueError(
            f"`compute_fans`: shape {shape} has a zero-sized fan or batch axis, so the fans are "
            "undefined."
        )
    # Same operation order as jax.nn.initializers._compute_fans, so the floats are identical.
    receptive_field_size = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive_field_size, out_size * receptive_field_size


def denominator(mode: str, fan_in: float, fan_out: float) -> float:
    """Variance scaling's ``n`` in ``scale / n``: the fan ``mode`` names (jax, Keras, Haiku).

    ``"fan_in"``, ``"fan_out"``, their mean ``"fan_avg"`` or their geometric mean
    ``"fan_geo_avg"``; ``mode`` is checked by the caller, against the modes it accepts.
    """
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2
    return (fan_in * fan_out) ** 0.5


@public("EinsumAxes")
class EinsumAxes(NamedTuple):
    """The kernel axes an einsum spec implies: contracted (in), produced (out) and batch axes."""

    in_axis: tuple[int, ...]
    out_axis: tuple[int, ...]
    batch_axis: tuple[int, ...]


@public("einsum_axes")
@functools.lru_cache(maxsize=1024)
def einsum_axes(spec: str, kernel_operand: int = -1) -> EinsumAxes:
    """Derives fan axes of an einsum's kernel operand from the einsum spec.

    The kernel's labels that are contracted with another operand (absent from the output) are its
    fan-in axes; labels that appear in the output but in no other operand are its fan-out axes;
    labels shared with another operand *and* the output are batch axes (e.g. per-head weights).

    Args:
      spec: an explicit einsum spec such as ``"btd,dnh->btnh"``.
      kernel_operand: which operand is the kernel (default: the last one).

    Returns:
      An :class:`EinsumAxes` ``(in_axis, out_axis, batch_axis)`` of the kernel's axis indices.

    Examples:
      >>> import jinit
      >>> jinit.einsum_axes("btd,dnh->btnh")
      EinsumAxes(in_axis=(0,), out_axis=(1, 2), batch_axis=())
      >>> jinit.einsum_axes("bhd,hdo->bho")  # per-head (batched) projection
      EinsumAxes(in_axis=(1,), out_axis=(2,), batch_axis=(0,))
    """
    where = f"einsum_axes({spec!r})"
    if not isinstance(spec, str):
        raise TypeError(f"`variance_scaling(einsum=...)` must be a str; got {spec!r}.")
    compact = spec.replace(" ", "")
    if compact.count("->") != 1 or "." in compact:
        raise ValueError(
            f"`{where}`: expected an explicit spec like 'btd,dnh->btnh' (one '->', no "
            f"ellipsis); got {spec!r}."
        )
    lhs, out = compact.split("->")
    operands = lhs.split(",")
    if len(operands) < 2:
        raise ValueError(f"`{where}`: expected at least two operands (input and kernel).")
    if not -len(operands) <= kernel_operand < len(operands):
        raise ValueError(
            f"`{where}`: `kernel_operand={kernel_operand}` is out of range for "
            f"{len(operands)} operands."
        )
    for term in (*operands, out):
        if not term.isalpha() or len(set(term)) != len(term):
            raise ValueError(
                f"`{where}`: each term must be distinct letters; got {term!r} in {spec!r}."
            )
    kernel = operands[kernel_operand]
    others = set("".join(t for i, t in enumerate(operands) if i != kernel_operand % len(operands)))
    unknown = set(out) - set(lhs.replace(",", ""))
    if unknown:
        raise ValueError(f"`{where}`: output labels {sorted(unknown)} appear in no operand.")
    in_axes, out_axes, batch_axes = [], [], []
    for i, label in enumerate(kernel):
        if label in others and label not in out:
            in_axes.append(i)
        elif label in out and label not in others:
            out_axes.append(i)
        elif label in out and label in others:
            batch_axes.append(i)
        else:
            raise ValueError(
                f"`{where}`: kernel label {label!r} is summed away without meeting another "
                "operand, so it is neither a fan-in nor a fan-out axis."
            )
    if not in_axes or not out_axes:
        raise ValueError(
            f"`{where}`: the kernel {kernel!r} needs at least one contracted (fan-in) label and "
            f"one output (fan-out) label; got in={in_axes}, out={out_axes}."
        )
    return EinsumAxes(tuple(in_axes), tuple(out_axes), tuple(batch_axes))
