"""A family's formula, stated once: a standard draw and the affine map that finishes it.

A family says, for a shape and a dtype, how one leaf is made: a :class:`Formula`,
``shift + factor * z`` with ``z`` a :class:`~jinit._rng.draws.Draw` in standard units. Everything
that must agree with everything else is derived from that one statement, here:

* :func:`sampling`: the grouped draw (the draw's kernel, which the tree builder batches across
  leaves, and a per-leaf ``finish``), used wherever jinit's kernels give ``jax.random``'s bits
  (a threefry key, a float32 compute dtype), by an eager call as by :func:`jinit.init_tree`;
* :func:`value`: the same draw by the samplers (:mod:`jinit._rng.distributions`:
  ``jax.random``'s bits for other keys and for float64, the circular twins for complex dtypes),
  finished the same way;
* :func:`moments`: the intended mean and standard deviation that :func:`jinit.describe` reports.

``factor`` is the number ``scale``, or, with ``fan``, the multiplier that gives the standard draw
the variance ``scale / fan``, computed as ``jax.nn.initializers.variance_scaling`` computes it,
in the compute dtype (so float32 values keep jax's bits). ``scale``'s product with the normal
draw's ``sqrt(2)`` (:func:`jinit._rng.draws.normal`), like every operation on a
hyperparameter, is made in the draw's dtype by the same operations for a number as for a traced
scalar, so a sweep gives the concrete calls' bits.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._rng import distributions as _distributions
from jinit._rng import portable as _portable
from jinit._rng.draws import Draw, Sampling
from jinit._typing import Array, KeyArray, OutSharding

# sqrt(E|z|^2) of the complex truncated normal with modulus below 2 (jax divides by 0.95311).
COMPLEX_TN2_STD = _distributions.complex_truncated_normal_std(2.0)


@dataclasses.dataclass(frozen=True)
class Formula:
    """One leaf: ``shift + factor * z``, ``z`` the standard ``draw``.

    ``factor`` is ``scale`` (a number, or a traced scalar); with ``fan``, the multiplier that
    gives ``z`` the variance ``scale / fan`` (for the standard draws of
    :data:`jinit._rng.draws.STANDARD` only, as in jax: ``sqrt(var) / 0.8796`` for the
    truncated normal, ``sqrt(var)`` for the normal, ``sqrt(3 * var)`` for the uniform).
    ``sample(key, shape, dtype, out_sharding)`` draws ``z`` where the kernels do not apply
    (default: the samplers' draw of the same name and arguments); with ``draw=None`` it is the
    only draw (nothing to group, e.g. an empty shape).
    """

    draw: Draw | None
    scale: Any = 1.0
    shift: float = 0.0
    fan: float | None = None
    sample: Callable[[KeyArray, tuple[int, ...], np.dtype, OutSharding], Array] | None = None


def sampling(f: Formula, dtype: np.dtype) -> Sampling | None:
    """The grouped draw of ``f`` for outputs of ``dtype``; None where the compute dtype is not
    the draw's (complex and float64 outputs: :func:`value` makes them) or there is no draw."""
    draw = f.draw
    if draw is None or _distributions.compute_dtype(dtype) != draw.dtype:
        return None
    unit = draw.name == "normal"  # the kernel draws erf_inv(u) = z / sqrt(2)
    # (equal for finishes that compute the same function: see Sampling.same)
    same = _hashable((draw, f.scale, f.shift, f.fan, np.dtype(dtype)))
    if f.fan is not None:
        spread = _spread(f, f.fan, draw.dtype, unit)
        fixed = None if _traced(f.scale) else spread
        return Sampling(draw, lambda z: (z * spread).astype(dtype), same, fixed)
    # In the draw's dtype, by the same operations for a number (NumPy) as for a traced scalar.
    factor = _in(draw.dtype, f.scale)
    factor = _in(draw.dtype, _distributions.SQRT2) * factor if unit else factor
    if not _traced(f.shift) and f.shift == 0:
        fixed = None if _traced(factor) else factor
        return Sampling(draw, lambda z: (z * factor).astype(dtype), same, fixed)
    shift = _in(draw.dtype, f.shift)
    return Sampling(draw, lambda z: _portable.mul_add(z, factor, shift).astype(dtype), same)


def _hashable(x: Any) -> Any:
    """``x`` where it is hashable (Python and numpy numbers), else ``None`` (a traced or array
    scale)."""
    try:
        hash(x)
    except TypeError:
        return None
    return x


def value(
    f: Formula, key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
) -> Array:
    """``f``'s leaf drawn by the samplers, in the compute dtype, rounded once to ``dtype``."""
    z = _sample(f, key, shape, dtype, out_sharding)
    if f.fan is not None:
        return (z * _spread(f, f.fan, z.dtype, False)).astype(dtype)
    out = z * jnp.asarray(f.scale, z.dtype)
    if not _traced(f.shift) and f.shift == 0:
        return out.astype(dtype)
    return (out + jnp.asarray(f.shift, z.dtype)).astype(dtype)


def moments(f: Formula) -> tuple[float, float]:
    """The intended mean and standard deviation of ``f``'s values (static hyperparameters)."""
    if f.fan is not None:
        return f.shift, (f.scale / f.fan) ** 0.5
    if f.draw is None:
        raise TypeError("no moments known for a Formula without a draw; give the target.")
    name, args = f.draw.name, f.draw.args
    if name == "uniform":
        mean, std = (args[0] + args[1]) / 2, (args[1] - args[0]) / (2 * math.sqrt(3))
    elif name == "normal":
        mean, std = 0.0, 1.0
    elif name == "truncated_normal":
        mean, std = truncated_moments(*args)
    else:
        raise TypeError(f"no moments known for the draw {name!r}; give the target explicitly.")
    return f.shift + f.scale * mean, abs(f.scale) * std


def truncated_moments(a: float, b: float) -> tuple[float, float]:
    """Mean and standard deviation of N(0, 1) truncated to (a, b) (0 and jax's 0.8796 for +-2)."""
    if (a, b) == (-2.0, 2.0):
        return 0.0, _distributions.TN2_STD
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    z = cdf(b) - cdf(a)
    mean = (phi(a) - phi(b)) / z
    return mean, (1 + (a * phi(a) - b * phi(b)) / z - mean**2) ** 0.5


def _spread(f: Formula, fan: float, ct: np.dtype, unit: bool) -> Array:
    """The factor that gives the standard draw the variance ``scale / fan``, in ``ct``
    (jax's ``variance_scaling`` arithmetic); times ``sqrt(2)`` for the kernel's normal."""
    traced = _traced(f.scale)
    if traced:  # one rounding, as the float64 quotient rounded to `ct` (for an exact `fan`)
        var = _divide(jnp.asarray(f.scale, ct), fan, traced)
    else:
        var = jnp.array(f.scale / fan, dtype=ct)
    is_complex = jnp.issubdtype(ct, jnp.complexfloating)
    name = f.draw.name if f.draw is not None else None
    if name == "truncated_normal":
        if is_complex:
            return jnp.sqrt(var) / jnp.array(COMPLEX_TN2_STD, ct)
        return _divide(jnp.sqrt(var), _distributions.TN2_STD, traced)
    if name == "uniform" and not is_complex:
        return jnp.sqrt(3 * var)
    return jnp.multiply(_distributions.SQRT2, jnp.sqrt(var)) if unit else jnp.sqrt(var)


def _divide(x: Array, value: float, traced: bool) -> Array:
    """``x / value`` in ``x``'s dtype, one correctly rounded division.

    With a concrete scale the quotient is a constant XLA folds exactly. With a traced one it is
    computed at run time, where XLA rewrites ``x / c`` for a constant or broadcast scalar ``c``
    as ``x * (1 / c)``: two roundings, last bits off the concrete scale's. A divisor that
    depends on ``x`` element by element (``x`` itself where it is NaN, which gives NaN either
    way) stays a division, so a traced scale gives the concrete scale's bits.
    """
    c = jnp.array(value, x.dtype)
    return x / (jnp.where(jnp.isnan(x), x, c) if traced else c)


def _sample(
    f: Formula, key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
) -> Array:
    """``z`` by the samplers, in the compute dtype and standard units (complex dtypes: the
    uniform disk and the circular truncated normal of ``jax.nn.initializers``)."""
    if f.sample is not None:
        return f.sample(key, shape, dtype, out_sharding)
    assert f.draw is not None, "a Formula without a draw needs a `sample`"
    name, args = f.draw.name, f.draw.args
    is_complex = jnp.issubdtype(dtype, jnp.complexfloating)
    if name == "uniform" and is_complex:
        return _distributions.complex_uniform(key, shape, dtype, out_sharding)
    if name == "uniform":
        return _distributions.uniform(key, shape, dtype, args[0], args[1], out_sharding)
    if name == "normal":
        return _distributions.normal(key, shape, dtype, out_sharding)
    if name == "truncated_normal" and is_complex:
        return _distributions.complex_truncated_normal(key, args[1], shape, dtype, out_sharding)
    if name == "truncated_normal":
        return _distributions.truncated_normal(key, args[0], args[1], shape, dtype, out_sharding)
    raise TypeError(f"no sampler for the draw {name!r}; give the Formula a `sample`.")


def _in(dtype: np.dtype, x: Any) -> Any:
    """``x`` in ``dtype``: a NumPy scalar for a number, an array for a traced scalar."""
    return jnp.asarray(x, dtype) if _traced(x) else np.dtype(dtype).type(x)


def _traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)
