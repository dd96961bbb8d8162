"""Distribution initializers without fan scaling: constants, uniform, normal, truncated normal."""

from __future__ import annotations

import cmath
import numbers
from typing import Any, cast

import jax.numpy as jnp
import numpy as np

from jinit import _checks
from jinit._core import check_call, formula_init, make_init
from jinit._rng import distributions as _distributions
from jinit._rng import draws as _draws
from jinit._rng.formula import Formula
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding, Shape
from jinit._value import factory, initializer

_UNIT_UNIFORM = _draws.uniform(0.0, 1.0)


# Initializers themselves, as in jax (``kernel_init=jinit.zeros``), not factories.
@initializer(target=lambda shape: (None, None, 0.0, 0.0))
def zeros(
    key: KeyArray, shape: Shape, dtype: DTypeLike | None = None, out_sharding: OutSharding = None
) -> Array:
    """An initializer that returns an array of zeros; ``key`` is ignored.

    Examples:
      >>> import jax, jinit
      >>> jinit.zeros(jax.random.key(0), (2, 3)).sum()
      Array(0., dtype=float32)
    """
    return _fill("zeros", 0, key, shape, dtype, out_sharding)


@initializer(target=lambda shape: (None, None, 1.0, 0.0))
def ones(
    key: KeyArray, shape: Shape, dtype: DTypeLike | None = None, out_sharding: OutSharding = None
) -> Array:
    """An initializer that returns an array of ones; ``key`` is ignored.

    Examples:
      >>> import jax, jinit
      >>> jinit.ones(jax.random.key(0), (2, 3)).sum()
      Array(6., dtype=float32)
    """
    return _fill("ones", 1, key, shape, dtype, out_sharding)


__test__ = {"zeros": zeros.__doc__, "ones": ones.__doc__}  # (doctest does not look inside values)


def _fill(where: str, value: int, key: Any, shape: Any, dtype: Any, out_sharding: Any) -> Array:
    """``zeros`` and ``ones``: the key is ignored, whatever it is (as in jax: Flax passes an
    ``nnx.RngStream`` to ``nnx.WeightNorm``'s ``scale_init``)."""
    _, shape, dtype, out_sharding = check_call(
        where, key, shape, dtype, out_sharding, uses_key=False
    )
    fill = jnp.zeros if value == 0 else jnp.ones
    return fill(shape, dtype, out_sharding=out_sharding)


@factory()
def constant(value: Any, dtype: DTypeLike | None = None) -> Initializer:
    """Builds an initializer that fills arrays with ``value``; the key is ignored.

    Args:
      value: the fill value: a finite real or complex number (Python, NumPy or a 0-d array),
        cast to the output dtype; or a traced scalar (under ``jax.vmap``/``jit``, as in jax).
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> jinit.constant(-7)(jax.random.key(0), (2, 2)).tolist()
      [[-7.0, -7.0], [-7.0, -7.0]]
    """
    original = value
    traced = _checks.traced(value)
    if traced:
        _checks.check_real_or_traced(
            "constant", "value", value, kind="a number", allow_complex=True
        )
        is_complex = bool(jnp.issubdtype(value.dtype, jnp.complexfloating))
    else:
        value = _checks.scalar("constant", "value", value, "a number")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Number):
            raise TypeError(f"`constant(value=...)` must be a number; got {original!r}.")
        value = cast(Any, value)  # a Python int, float or complex
        try:
            finite = cmath.isfinite(value)
        except OverflowError:  # an int beyond float range
            finite = False
        if not finite:
            raise ValueError(f"`constant(value=...)` must be finite; got {original!r}.")
        is_complex = isinstance(value, complex)
    _checks.check_factory_dtype("constant", dtype)

    def body(key: KeyArray, shape: Shape, dtype: np.dtype, out_sharding: OutSharding) -> Array:
        if is_complex and not jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"`constant({original!r})`: a complex value needs a complex `dtype`; got "
                f"{np.dtype(dtype).name}."
            )
        return jnp.full(shape, value, dtype, out_sharding=out_sharding)

    target = None if is_complex or traced else lambda s: (None, None, float(value), 0.0)
    return make_init(
        "constant",
        body,
        dtype,
        target=target,
        magnitude=lambda s: abs(value),
        uses_key=False,
        traced=traced,
    )


@factory()
def uniform(scale: Any = 1e-2, dtype: DTypeLike | None = None) -> Initializer:
    """Builds an initializer of U[0, scale) values (jax's one-sided convention).

    Args:
      scale: the upper bound of the interval; a number or a traced scalar (under
        ``jax.vmap``/``jit``, as in jax).
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer. Low-precision outputs are sampled in float32 and rounded once.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.uniform(10.0)(jax.random.key(0), (1000,))
      >>> bool(w.min() >= 0.0), bool(w.max() < 10.0)
      (True, True)
    """
    scale = _checks.check_real_or_traced("uniform", "scale", scale)
    _checks.check_factory_dtype("uniform", dtype, allow_complex=False)
    formula = lambda shape, dtype: Formula(_UNIT_UNIFORM, scale)
    return formula_init(
        "uniform", formula, dtype, allow_complex=False, traced=_checks.traced(scale)
    )


@factory()
def normal(stddev: Any = 1e-2, dtype: DTypeLike | None = None) -> Initializer:
    """Builds an initializer of N(0, stddev^2) values (complex: E|w|^2 = stddev^2).

    Args:
      stddev: the standard deviation; a number or a traced scalar (under ``jax.vmap``/``jit``,
        as in jax), which gives the bits of the same number given concretely for real dtypes
        and threefry keys (a sweep over scales is one vmapped program; with complex dtypes or
        other key implementations the last bit can differ).
      dtype: the initializer's default dtype.

    Returns:
      An initializer. Low-precision outputs are sampled in float32 and rounded once, so a
      bfloat16 draw has thousands of distinct values and its full tails (jax's has 128 values).

    Examples:
      >>> import jax, jinit
      >>> w = jinit.normal(5.0)(jax.random.key(0), (100_000,))
      >>> round(float(w.std()), 1)
      5.0
    """
    stddev = _checks.check_real_or_traced("normal", "stddev", stddev, nonnegative=True)
    _checks.check_factory_dtype("normal", dtype)
    formula = lambda shape, dtype: Formula(_draws.normal(), stddev)
    return formula_init("normal", formula, dtype, traced=_checks.traced(stddev))


@factory()
def truncated_normal(
    stddev: Any = 1e-2, dtype: DTypeLike | None = None, lower: Any = -2.0, upper: Any = 2.0
) -> Initializer:
    r"""Builds an initializer of truncated-normal values: ``stddev * TN(lower, upper)``.

    ``lower`` and ``upper`` are in units of ``stddev`` (jax's convention; torch's
    ``trunc_normal_`` bounds are absolute, see :func:`jinit.torch.trunc_normal`). As in jax there is
    no variance correction: the actual standard deviation is below ``stddev`` (0.8796 * stddev for
    the default bounds); :func:`variance_scaling` applies the correction.

    Args:
      stddev: the standard deviation of the normal before truncation; a number or
        a traced scalar (under ``jax.vmap``/``jit``, as in jax).
      dtype: the initializer's default dtype (real floating).
      lower: lower truncation bound, in units of ``stddev``; a number or a traced scalar, whose
        values are close to the concrete bound's, not its bits: the bound enters ``erf``,
        which XLA evaluates at compile time for a concrete bound and at run time for a traced
        one (within about ``1e-5 * stddev`` for bounds within 3; about ``4e-4 * stddev`` at 4,
        where ``erf`` is nearly -1). ``lower < upper`` is then not checked.
      upper: upper truncation bound, in units of ``stddev``; a number or a traced scalar.

    Returns:
      An initializer whose values lie in :math:`(\text{lower}\cdot\sigma, \text{upper}\cdot\sigma)`.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.truncated_normal(1.0)(jax.random.key(0), (100_000,))
      >>> round(float(w.std()), 2), bool(abs(w).max() < 2.0)
      (0.88, True)
    """
    stddev = _checks.check_real_or_traced("truncated_normal", "stddev", stddev, nonnegative=True)
    lower = _checks.check_real_or_traced("truncated_normal", "lower", lower)
    upper = _checks.check_real_or_traced("truncated_normal", "upper", upper)
    traced = any(_checks.traced(x) for x in (stddev, lower, upper))
    if not (_checks.traced(lower) or _checks.traced(upper) or lower < upper):
        raise ValueError(
            f"`truncated_normal(lower=..., upper=...)` needs lower < upper; got "
            f"lower={lower!r}, upper={upper!r}."
        )
    _checks.check_factory_dtype("truncated_normal", dtype, allow_complex=False)

    lo, hi = _checks.static_float(lower), _checks.static_float(upper)
    # Traced bounds: no static draw to group by, each leaf drawn alone (and no moments).
    draw = None if lo is None or hi is None else _draws.truncated_normal(lo, hi)

    def sample(key: KeyArray, shape: Shape, dtype: np.dtype, out_sharding: OutSharding) -> Array:
        return _distributions.truncated_normal(key, lower, upper, shape, dtype, out_sharding)

    return formula_init(
        "truncated_normal",
        lambda shape, dtype: Formula(draw, stddev, sample=sample),
        dtype,
        allow_complex=False,
        traced=traced,
    )
