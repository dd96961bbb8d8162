r"""Keras 3 semantics: ``keras.initializers`` formulas, defaults and fan rules.

What differs from jax's same-named schemes, and is reproduced here:

* ``VarianceScaling(distribution="normal")`` is a **truncated** normal (Keras aliases it);
  ``"untruncated_normal"`` is the plain normal.
* Fans (``keras.src.initializers.random_initializers.compute_fans``): 0-D ``(1, 1)``, 1-D
  ``(n, n)``, 2-D ``(shape[0], shape[1])``, rank > 2 a convolution kernel ``(*k, in, out)``
  (receptive field ``prod(k)``), or the products over ``input_axes`` / ``output_axes`` when both
  are given; the variance divides by ``max(1, fan)``.
* ``RandomUniform``, ``RandomNormal`` and ``TruncatedNormal`` default to a spread of 0.05 and
  ``TruncatedNormal`` is cut at two standard deviations with no variance correction.

Kernel layouts are Flax's (``(in, out)``, ``(*k, in, out)``), which are Keras's too. Values come
from a JAX key (Keras draws from its own seed generator), so they match Keras in distribution,
not bit for bit; low-precision outputs are sampled in float32 and rounded once (Keras samples in
the requested dtype). Complex dtypes are refused, as in Keras.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from jinit import _checks, _fans
from jinit._catalog import orthogonal as _orthogonal
from jinit._core import make_init, place
from jinit._rng import distributions as _distributions
from jinit._scaled_draw import Kind, scaled_draw, variance_draw
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding
from jinit._value import factory

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")


def keras_fans(
    shape: tuple[int, ...],
    input_axes: tuple[int, ...] | None = None,
    output_axes: tuple[int, ...] | None = None,
) -> tuple[int, int]:
    """Keras 3's ``compute_fans``: ``(fan_in, fan_out)`` of a shape, as ints."""
    if input_axes is not None and output_axes is not None:
        where = "keras.variance_scaling"
        ins = _checks.normalize_axes(where, "input_axes", input_axes, len(shape))
        outs = _checks.normalize_axes(where, "output_axes", output_axes, len(shape))
        return math.prod(shape[a] for a in ins), math.prod(shape[a] for a in outs)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _axes(where: str, name: str, axes: Any) -> tuple[int, ...] | None:
    if axes is None:
        return None
    _checks.check_axes(where, name, axes)
    return (int(axes),) if isinstance(axes, (int, np.integer)) else tuple(int(a) for a in axes)


@factory("keras.variance_scaling")
def variance_scaling(
    scale: Any = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    input_axes: Any = None,
    output_axes: Any = None,
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""``keras.initializers.VarianceScaling``: variance ``scale / max(1, n)``, Keras's fans.

    ``n`` is ``fan_in``, ``fan_out`` or their mean, from Keras's fan rules (module docstring).
    ``"truncated_normal"`` **and** ``"normal"`` (Keras's alias) draw
    :math:`\sqrt{\text{scale}/n}/0.8796\cdot TN(-2, 2)` (truncated at two standard deviations,
    rescaled so the variance is exact); ``"untruncated_normal"`` draws
    :math:`N(0, \text{scale}/n)`; ``"uniform"`` draws :math:`U(\pm\sqrt{3\,\text{scale}/n})`.
    As in Keras the distribution name is case-insensitive and ``scale`` must be positive.

    Args:
      scale: the variance multiplier (positive); a number or a traced scalar (under
        ``jax.vmap``/``jit``), which gives the concrete value's bits.
      mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
      distribution: ``"truncated_normal"``, ``"normal"``, ``"untruncated_normal"`` or
        ``"uniform"``.
      input_axes: axes whose product is the fan-in; give both ``input_axes`` and
        ``output_axes`` or neither (Keras ignores one given alone; jinit refuses it).
      output_axes: axes whose product is the fan-out.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer for shapes of any rank.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.keras.variance_scaling(2.0, "fan_in", "normal")(jax.random.key(0), (400, 300))
      >>> bound = 2 * (2 / 400) ** 0.5 / 0.8796  # two pre-truncation standard deviations
      >>> round(float(w.std() * (400 / 2) ** 0.5), 2), bool(abs(w).max() < bound)
      (1.0, True)
      >>> jinit.keras.variance_scaling()(jax.random.key(0), (5,)).shape  # 1-D: fan_in = 5
      (5,)

    References:
      ``keras.initializers.VarianceScaling`` (Keras 3.15); Glorot & Bengio 2010; He et al. 2015.
    """
    where = "keras.variance_scaling"
    scale = _checks.check_real_or_traced(where, "scale", scale, positive=True)
    _checks.check_one_of(where, "mode", mode, MODES)
    if isinstance(distribution, str):
        distribution = distribution.lower()
    _checks.check_one_of(where, "distribution", distribution, DISTRIBUTIONS)
    ins, outs = _axes(where, "input_axes", input_axes), _axes(where, "output_axes", output_axes)
    if (ins is None) != (outs is None):
        raise ValueError(
            f"`{where}(input_axes=..., output_axes=...)` needs both or neither; got "
            f"input_axes={input_axes!r}, output_axes={output_axes!r}."
        )
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    kind: Kind = "uniform"
    if distribution in ("truncated_normal", "normal"):  # Keras's alias: "normal" is truncated
        kind = "truncated_normal"
    elif distribution == "untruncated_normal":
        kind = "normal"

    return variance_draw(
        where,
        kind,
        scale,
        lambda s: _fans.denominator(mode, *keras_fans(s, ins, outs)),
        dtype,
        fans=lambda s: keras_fans(s, ins, outs),
        traced=_checks.traced(scale),
    )


@factory("keras.random_uniform")
def random_uniform(
    minval: Any = -0.05, maxval: Any = 0.05, dtype: DTypeLike | None = None
) -> Initializer:
    """``keras.initializers.RandomUniform``: U[minval, maxval), Keras's default +-0.05.

    Args:
      minval: the lower bound; a number or a traced scalar (under ``jax.vmap``/``jit``),
        which gives the concrete value's bits.
      maxval: the upper bound, ``minval < maxval`` (not checked for a traced bound); likewise.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.keras.random_uniform()(jax.random.key(0), (10_000,))
      >>> bool(w.min() >= -0.05), bool(w.max() <= 0.05)
      (True, True)

    References:
      ``keras.initializers.RandomUniform`` (Keras 3.15).
    """
    where = "keras.random_uniform"
    minval = _checks.check_real_or_traced(where, "minval", minval)
    maxval = _checks.check_real_or_traced(where, "maxval", maxval)
    traced = _checks.traced(minval) or _checks.traced(maxval)
    if not (traced or minval < maxval):
        raise ValueError(
            f"`{where}(minval=..., maxval=...)` needs minval < maxval; got "
            f"minval={minval!r}, maxval={maxval!r}."
        )
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    # In float32, by the same operations for concrete and traced bounds (the same bits).
    lo, hi = _checks.as_float32(minval), _checks.as_float32(maxval)
    half, mid = (hi - lo) / 2, (hi + lo) / 2
    return scaled_draw(where, "uniform", lambda s: half, dtype, mean=mid, traced=traced)


@factory("keras.random_normal")
def random_normal(
    mean: Any = 0.0, stddev: Any = 0.05, dtype: DTypeLike | None = None
) -> Initializer:
    """``keras.initializers.RandomNormal``: N(mean, stddev^2), Keras's default stddev 0.05.

    Args:
      mean: the mean; a number or a traced scalar (under ``jax.vmap``/``jit``), which gives
        the concrete value's bits.
      stddev: the standard deviation (non-negative); likewise.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.keras.random_normal(mean=1.0)(jax.random.key(0), (100_000,))
      >>> round(float(w.mean()), 2), round(float(w.std()), 3)
      (1.0, 0.05)

    References:
      ``keras.initializers.RandomNormal`` (Keras 3.15).
    """
    where = "keras.random_normal"
    return _shifted(where, "normal", mean, stddev, dtype)


@factory("keras.truncated_normal")
def truncated_normal(
    mean: Any = 0.0, stddev: Any = 0.05, dtype: DTypeLike | None = None
) -> Initializer:
    """``keras.initializers.TruncatedNormal``: ``mean + stddev * TN(-2, 2)``, uncorrected.

    The bounds are two ``stddev`` either side of ``mean``; no variance correction, so the actual
    standard deviation is ``0.8796 * stddev``.

    Args:
      mean: the mean; a number or a traced scalar (under ``jax.vmap``/``jit``), which gives
        the concrete value's bits.
      stddev: the standard deviation of the normal before truncation (non-negative); likewise.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer of values in ``(mean - 2 stddev, mean + 2 stddev)``.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.keras.truncated_normal()(jax.random.key(0), (100_000,))
      >>> round(float(w.std() / 0.05), 2), bool(abs(w).max() <= 0.1)
      (0.88, True)

    References:
      ``keras.initializers.TruncatedNormal`` (Keras 3.15).
    """
    where = "keras.truncated_normal"
    return _shifted(where, "truncated_normal", mean, stddev, dtype)


def _shifted(where: str, kind: Kind, mean: Any, stddev: Any, dtype: DTypeLike | None) -> Any:
    """``mean + stddev * z`` for Keras's ``RandomNormal`` and ``TruncatedNormal``: ``mean`` and
    ``stddev`` numbers or traced scalars (the formula takes either to float32 alike)."""
    mean = _checks.check_real_or_traced(where, "mean", mean)
    stddev = _checks.check_real_or_traced(where, "stddev", stddev, nonnegative=True)
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    traced = _checks.traced(mean) or _checks.traced(stddev)
    return scaled_draw(where, kind, lambda s: stddev, dtype, mean=mean, traced=traced)


@factory("keras.identity")
def identity(gain: Any = 1.0, dtype: DTypeLike | None = None) -> Initializer:
    """``keras.initializers.Identity``: ``gain * eye(*shape)``, 2-D shapes only (as in Keras).

    For stacks of identities (rank > 2) use :func:`jinit.identity`.

    Args:
      gain: the multiplier of the diagonal; a number or a traced scalar (under
        ``jax.vmap``/``jit``), which gives the concrete gain's bits.
      dtype: the initializer's default dtype.

    Returns:
      An initializer for 2-D shapes; the key is ignored.

    Examples:
      >>> import jax, jinit
      >>> jinit.keras.identity(3.0)(jax.random.key(0), (2, 3)).tolist()
      [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]

    References:
      ``keras.initializers.Identity`` (Keras 3.15).
    """
    where = "keras.identity"
    gain = _checks.check_real_or_traced(where, "gain", gain)
    _checks.check_factory_dtype(where, dtype, allow_complex=False)

    def body(key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding):
        if len(shape) != 2:
            raise ValueError(f"`{where}` needs a 2-D shape (as Keras's Identity); got {shape}.")
        ct = _distributions.compute_dtype(dtype)
        eye: Array = jnp.where(jnp.eye(*shape, dtype=bool), jnp.array(gain, ct), 0)  # as identity's
        return place(eye.astype(dtype), out_sharding)

    traced = _checks.traced(gain)
    return make_init(where, body, dtype, allow_complex=False, uses_key=False, traced=traced)


@factory("keras.orthogonal")
def orthogonal(gain: Any = 1.0, dtype: DTypeLike | None = None) -> Initializer:
    """``keras.initializers.Orthogonal``: Haar (semi-)orthogonal times ``gain``.

    Keras flattens the shape to ``(prod(shape[:-1]), shape[-1])``, which is
    :func:`jinit.orthogonal` with ``column_axis=-1``; this is that initializer (jax's bits).

    Args:
      gain: the multiplier; a number or a traced scalar (as :func:`jinit.orthogonal`'s scale).
      dtype: the initializer's default dtype.

    Returns:
      An initializer for shapes of rank >= 2.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> w = jinit.keras.orthogonal(2.0)(jax.random.key(0), (3, 3, 8, 16))
      >>> m = w.reshape(-1, 16) / 2
      >>> bool(jnp.allclose(m.T @ m, jnp.eye(16), atol=1e-5))
      True

    References:
      ``keras.initializers.Orthogonal`` (Keras 3.15); Saxe et al. 2014, arXiv:1312.6120.
    """
    gain = _checks.check_real_or_traced("keras.orthogonal", "gain", gain)
    return _orthogonal.orthogonal(gain, column_axis=-1, dtype=dtype)


@factory("keras.dense_default")
def dense_default(dtype: DTypeLike | None = None) -> Initializer:
    r"""Keras's default ``Dense`` and ``Conv*`` kernel: Glorot uniform.

    :math:`U(\pm\sqrt{6/(in+out)})`: ``jinit.keras.variance_scaling(1.0, "fan_avg",
    "uniform")``. On a convolution's ``(*k, in, out)`` the fans are ``prod(k) * in`` and
    ``prod(k) * out`` (``jinit.keras.conv_default`` is this initializer). Keras's default bias is
    :func:`jinit.zeros`.

    Args:
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.keras.dense_default()(jax.random.key(0), (200, 100))
      >>> round(float(abs(w).max() / (6 / 300) ** 0.5), 2)
      1.0

    References:
      ``keras.layers.Dense`` and ``keras.layers.Conv2D``
      (``kernel_initializer="glorot_uniform"``), Keras 3.15.
    """
    return variance_scaling(1.0, "fan_avg", "uniform", dtype=dtype)


conv_default = dense_default  # Keras's Conv* default is its Dense one


@factory("keras.embedding_default")
def embedding_default(dtype: DTypeLike | None = None) -> Initializer:
    """Keras's default ``Embedding`` table: ``RandomUniform(-0.05, 0.05)``.

    Args:
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> e = jinit.keras.embedding_default()(jax.random.key(0), (1000, 64))
      >>> bool(abs(e).max() <= 0.05), round(float(e.std() * 3**0.5 / 0.05), 2)
      (True, 1.0)

    References:
      ``keras.layers.Embedding`` (``embeddings_initializer="uniform"``), Keras 3.15.
    """
    return random_uniform(-0.05, 0.05, dtype=dtype)
