r"""Haiku semantics: ``haiku.initializers`` formulas, layer defaults and fan rules.

What differs from jax's same-named schemes, and is reproduced here:

* ``hk.Linear`` and ``hk.ConvND`` default to ``TruncatedNormal(stddev=1/sqrt(fan_in))`` with
  ``fan_in = prod(shape[:-1])`` and **no** variance correction: the actual standard deviation is
  :math:`0.8796/\sqrt{\text{fan\_in}}`, values within :math:`\pm 2/\sqrt{\text{fan\_in}}`.
* Fans (``haiku._src.initializers._compute_fans``): 0-D ``(1, 1)``, 1-D ``(n, n)``, 2-D
  ``(shape[0], shape[1])``; rank > 2 a convolution kernel, or, with ``fan_in_axes``, the product
  over those axes and the product over the others (``fan_in_axes`` is ignored for rank <= 2, as
  in Haiku); the variance divides by ``max(1, fan)``.

Values come from a JAX key (Haiku's from ``hk.next_rng_key()``), so they match Haiku in
distribution, not bit for bit; low-precision outputs are sampled in float32 and rounded once
(Haiku samples in the requested dtype). Complex dtypes are refused.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from jinit import _checks, _fans
from jinit._catalog import orthogonal as _orthogonal
from jinit._scaled_draw import Kind, scaled_draw, variance_draw
from jinit._typing import DTypeLike, Initializer
from jinit._value import factory

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


def haiku_fans(
    shape: tuple[int, ...], fan_in_axes: tuple[int, ...] | None = None
) -> tuple[int, int]:
    """Haiku's ``_compute_fans``: ``(fan_in, fan_out)`` of a shape, as ints."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    if fan_in_axes is not None:
        where = "haiku.variance_scaling"
        ins = _checks.normalize_axes(where, "fan_in_axes", fan_in_axes, len(shape))
        fan_in = math.prod(shape[a] for a in ins)
        return fan_in, math.prod(s for a, s in enumerate(shape) if a not in ins)
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@factory("haiku.variance_scaling")
def variance_scaling(
    scale: Any = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    fan_in_axes: Any = None,
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""``hk.initializers.VarianceScaling``: variance ``scale / max(1, n)``, Haiku's fans.

    ``n`` is ``fan_in``, ``fan_out`` or their mean (module docstring for the fan rules).
    ``"truncated_normal"`` draws :math:`\sqrt{\text{scale}/n}/0.8796\cdot TN(-2, 2)` (variance
    exact after truncation), ``"normal"`` :math:`N(0, \text{scale}/n)` (untruncated, unlike
    Keras), ``"uniform"`` :math:`U(\pm\sqrt{3\,\text{scale}/n})`. As in Haiku the distribution
    name is case-insensitive and ``scale`` may be 0.

    Args:
      scale: the variance multiplier (non-negative); a number or a traced scalar (under
        ``jax.vmap``/``jit``), which gives the concrete value's bits.
      mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
      distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
      fan_in_axes: axes whose product is the fan-in for rank > 2 (e.g. multi-head attention
        weights); the other axes make the fan-out.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer for shapes of any rank.

    Examples:
      >>> import jax, jinit
      >>> init = jinit.haiku.variance_scaling(1.0, "fan_in", "normal", fan_in_axes=(0,))
      >>> w = init(jax.random.key(0), (512, 8, 64))  # fan_in = 512
      >>> round(float(w.std() * 512**0.5), 2)
      1.0

    References:
      ``hk.initializers.VarianceScaling`` (dm-haiku 0.0.17).
    """
    where = "haiku.variance_scaling"
    scale = _checks.check_real_or_traced(where, "scale", scale, nonnegative=True)
    _checks.check_one_of(where, "mode", mode, MODES)
    if isinstance(distribution, str):
        distribution = distribution.lower()
    _checks.check_one_of(where, "distribution", distribution, DISTRIBUTIONS)
    ins: tuple[int, ...] | None = None
    if fan_in_axes is not None:
        _checks.check_axes(where, "fan_in_axes", fan_in_axes)
        ins = (
            (int(fan_in_axes),)
            if isinstance(fan_in_axes, (int, np.integer))
            else tuple(int(a) for a in fan_in_axes)
        )
    _checks.check_factory_dtype(where, dtype, allow_complex=False)

    return variance_draw(
        where,
        cast(Kind, distribution),
        scale,
        lambda s: _fans.denominator(mode, *haiku_fans(s, ins)),
        dtype,
        fans=lambda s: haiku_fans(s, ins),
        traced=_checks.traced(scale),
    )


@factory("haiku.linear_default")
def linear_default(dtype: DTypeLike | None = None) -> Initializer:
    r"""Haiku's default ``Linear``/``ConvND`` weight: ``TruncatedNormal(1/sqrt(fan_in))``.

    ``fan_in = prod(shape[:-1])`` (``in`` for ``Linear``'s ``(in, out)``, ``prod(k) * in`` for
    ``ConvND``'s ``(*k, in, out)``); values are :math:`TN(-2, 2)/\sqrt{\text{fan\_in}}`, whose
    standard deviation is :math:`0.8796/\sqrt{\text{fan\_in}}`. Haiku's default bias is
    :func:`jinit.zeros`.

    Args:
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer for shapes of rank >= 1.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.haiku.linear_default()(jax.random.key(0), (400, 300))
      >>> round(float(w.std() * 20), 2), bool(abs(w).max() <= 2 / 20)
      (0.88, True)

    References:
      ``hk.Linear`` and ``hk.ConvND`` (dm-haiku 0.0.17).
    """
    where = "haiku.linear_default"
    _checks.check_factory_dtype(where, dtype, allow_complex=False)

    def spread(shape: tuple[int, ...]) -> float:
        if len(shape) < 1:
            raise ValueError(f"`{where}` needs a shape of rank >= 1 (..., out); got {shape}.")
        return 1 / math.sqrt(max(1, math.prod(shape[:-1])))

    fans = lambda s: (math.prod(s[:-1]), s[-1])
    return scaled_draw(where, "truncated_normal", spread, dtype, fans=fans)


conv_default = linear_default


@factory("haiku.embed_default")
def embed_default(dtype: DTypeLike | None = None) -> Initializer:
    """Haiku's default ``Embed`` table: ``TruncatedNormal(stddev=1)``, uncorrected (std 0.8796).

    Args:
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer of values in (-2, 2).

    Examples:
      >>> import jax, jinit
      >>> e = jinit.haiku.embed_default()(jax.random.key(0), (1000, 64))
      >>> round(float(e.std()), 2), bool(abs(e).max() <= 2)
      (0.88, True)

    References:
      ``hk.Embed`` (dm-haiku 0.0.17).
    """
    where = "haiku.embed_default"
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    return scaled_draw(where, "truncated_normal", lambda s: 1.0, dtype)


@factory("haiku.orthogonal")
def orthogonal(scale: Any = 1.0, axis: int = -1, dtype: DTypeLike | None = None) -> Initializer:
    """``hk.initializers.Orthogonal(scale, axis)``: Haar (semi-)orthogonal times ``scale``.

    Haiku flattens the weight to ``(shape[axis], prod(others))`` and makes the shorter side
    orthonormal; the Haar distribution is invariant under transposition, so this is
    :func:`jinit.orthogonal` with ``column_axis=axis`` (jax's bits).

    Args:
      scale: the multiplier; a number or a traced scalar (as :func:`jinit.orthogonal`'s).
      axis: the axis kept apart from the flattened others (Haiku's output axis).
      dtype: the initializer's default dtype.

    Returns:
      An initializer for shapes of rank >= 2.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> w = jinit.haiku.orthogonal(axis=0)(jax.random.key(0), (16, 4, 8))
      >>> m = w.reshape(16, -1)
      >>> bool(jnp.allclose(m @ m.T, jnp.eye(16), atol=1e-5))
      True

    References:
      ``hk.initializers.Orthogonal`` (dm-haiku 0.0.17); Saxe et al. 2014, arXiv:1312.6120.
    """
    scale = _checks.check_real_or_traced("haiku.orthogonal", "scale", scale)
    _checks.refuse_traced("haiku.orthogonal", "axis", axis, _checks.AXIS)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"`haiku.orthogonal(axis=...)` must be an int; got {axis!r}.")
    return _orthogonal.orthogonal(scale, column_axis=int(axis), dtype=dtype)
