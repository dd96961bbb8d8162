"""muP (Yang et al. 2022) initializers: the init half of the maximal-update parametrization."""

from __future__ import annotations

from typing import Any

import numpy as np

from jinit import _checks
from jinit._catalog.basic import constant, zeros
from jinit._catalog.variance import Distribution, variance_scaling
from jinit._typing import Axes, DTypeLike, Initializer
from jinit._value import factory


@factory("mup.hidden")
def hidden(
    scale: Any = 1.0,
    distribution: Distribution = "normal",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""muP hidden (and input) weights: :math:`\operatorname{Var} = \text{scale}/\text{fan\_in}`.

    In the maximal-update parametrization the hidden weights keep the standard fan-in variance;
    what changes with width is the learning rate (Adam: :math:`\propto 1/\text{width\_mult}` for
    hidden weights), the readout (:func:`mup.readout`) and attention's :math:`1/d` scaling. **An
    initializer cannot do those**: muP also needs the optimizer's per-parameter LR scaling and
    the model's attention scale; this covers only the init half.

    Args:
      scale: the variance multiplier (tune it on the base model).
      distribution: ``"normal"`` (default), ``"truncated_normal"`` or ``"uniform"``.
      in_axis: fan-in axis or axes.
      out_axis: fan-out axis or axes.
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype.

    Returns:
      An initializer (``variance_scaling(scale, "fan_in", distribution, ...)``).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.mup.hidden()(jax.random.key(0), (1024, 256))
      >>> round(float(w.var() * 1024), 2)
      1.0

    References:
      Yang et al. 2022, 'Tensor Programs V: tuning large neural networks via zero-shot
      hyperparameter transfer', arXiv:2203.03466, Table 3.
    """
    return variance_scaling(scale, "fan_in", distribution, in_axis, out_axis, batch_axis, dtype)


@factory("mup.readout")
def readout(
    width_mult: Any,
    scale: Any = 1.0,
    *,
    zero: bool = False,
    distribution: Distribution = "normal",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""muP readout weights: zero, or :math:`\mathrm{Var} = \text{scale}/(\text{fan\_in}\cdot w)`.

    ``w = width_mult`` is the model's width over the base model's. ``mup.MuReadout`` keeps a
    standard-init weight rescaled by :math:`\sqrt w` and divides its input by :math:`w`, so at
    init it computes :math:`x W_0/\sqrt w` (:math:`\operatorname{Var} \propto 1/\text{fan\_in}^2`,
    Table 3). This initializer puts that factor into the weight of a plain ``Dense``, which gives
    the same function at init; to also get muP's training dynamics, the readout's learning rate
    must scale as muP prescribes, which an initializer cannot do. ``zero=True`` is the
    zero-initialised readout the paper recommends (``MuReadout(readout_zero_init=True)``).

    Args:
      width_mult: width / base width (positive); or a traced scalar (under ``jax.vmap``/``jit``,
        its value then not checked), which gives the concrete call's bits
        (``scale / width_mult`` is rounded to float32 either way).
      scale: the variance multiplier of the base model; or a traced scalar, likewise.
      zero: return zeros instead.
      distribution: ``"normal"``, ``"truncated_normal"`` or ``"uniform"``.
      in_axis: fan-in axis or axes.
      out_axis: fan-out axis or axes.
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.mup.readout(width_mult=4.0)(jax.random.key(0), (1024, 256))
      >>> round(float(w.var() * 1024 * 4), 2)
      1.0

    References:
      Yang et al. 2022, arXiv:2203.03466; ``microsoft/mup`` (``MuReadout``).
    """
    where = "mup.readout"
    width_mult = _checks.check_real_or_traced(where, "width_mult", width_mult, positive=True)
    scale = _checks.check_real_or_traced(where, "scale", scale, nonnegative=True)
    if _checks.check_bool(where, "zero", zero):
        _checks.check_factory_dtype(where, dtype)
        return zeros if dtype is None else constant(0.0, dtype)
    # scale / width_mult rounded to float32, traced or not (so a sweep gives the same bits).
    ratio = _checks.quotient(scale, width_mult, np.float32)
    return variance_scaling(ratio, "fan_in", distribution, in_axis, out_axis, batch_axis, dtype)
