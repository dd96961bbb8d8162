"""One standard draw, scaled by a static function of the shape: the body of the Keras/Haiku rows.

Keras and Haiku state each initializer as ``mean + spread(shape) * z`` with ``z`` one of three
standard draws (``truncated_normal``: N(0, 1) cut at +-2, uncorrected; ``normal``; ``uniform`` on
[-1, 1)) and a spread that is plain Python on the static shape (their own fan rules, which accept
0-D and 1-D shapes). :func:`scaled_draw` builds such an initializer once, with the sampling
protocol, so leaves of equal shape group in :func:`jinit.init_tree` whatever their spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import jax.numpy as jnp
import numpy as np

from jinit._core import make_init
from jinit._rng import portable as _portable
from jinit._rng import samplers as _samplers
from jinit._rng import sampling as _sampling
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding

Kind = Literal["truncated_normal", "normal", "uniform"]
Spread = Callable[[tuple[int, ...]], float]

_STD_OF_DRAW = {"truncated_normal": _samplers.TN2_STD, "normal": 1.0, "uniform": 1 / math.sqrt(3)}


def spread_for_variance(kind: Kind, var: float) -> float:
    """The spread that gives the standard ``kind`` draw the variance ``var`` (Keras's and Haiku's
    arithmetic: ``sqrt(var) / 0.8796``, ``sqrt(var)``, ``sqrt(3 * var)``)."""
    if kind == "truncated_normal":
        return math.sqrt(var) / _samplers.TN2_STD
    return math.sqrt(3 * var) if kind == "uniform" else math.sqrt(var)


def scaled_draw(
    where: str,
    kind: Kind,
    spread: Spread,
    dtype: DTypeLike | None,
    *,
    mean: float = 0.0,
    fans: Callable[[tuple[int, ...]], tuple[float, float]] | None = None,
) -> Initializer:
    """``mean + spread(shape) * z``, ``z`` the standard ``kind`` draw, in float32, rounded once.

    ``spread`` raises the shape errors (it runs first, on static ints); ``fans`` (optional) is
    what :func:`jinit.describe` reports.
    """

    def factor(shape: tuple[int, ...]) -> np.ndarray:
        s = spread(shape)
        return np.array(s * math.sqrt(2) if kind == "normal" else s, _samplers.F32)

    def finish_for(shape: tuple[int, ...], dtype: np.dtype) -> Callable[[Array], Array]:
        f, m = factor(shape), np.array(mean, _samplers.F32)
        if mean == 0.0:
            return lambda z: (z * f).astype(dtype)
        return lambda z: _portable.mul_add(z, f, m).astype(dtype)

    def body(key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding):
        # Keys or configurations jinit's kernels do not cover: jax.random, same formula.
        ct = _samplers.compute_dtype(dtype)
        s, m = jnp.array(spread(shape), ct), jnp.array(mean, ct)
        if kind == "truncated_normal":
            z = _samplers.truncated_normal(key, -2.0, 2.0, shape, dtype, out_sharding)
        elif kind == "normal":
            z = _samplers.normal(key, shape, dtype, out_sharding)
        else:
            z = _samplers.uniform(key, shape, dtype, -1.0, 1.0, out_sharding)
        if _portable.active():  # float32: the portable samplers refuse anything else
            return _portable.mul_add(z, spread(shape), mean).astype(dtype)
        return (z * s + m).astype(dtype)

    def sampling(shape: tuple[int, ...], dtype: np.dtype) -> _sampling.Sampling:
        return _sampling.Sampling(_sampling.STANDARD[kind], finish_for(shape, dtype))

    def target(shape: tuple[int, ...]) -> tuple[float | None, float | None, float, float]:
        fan_in, fan_out = fans(shape) if fans is not None else (None, None)
        return fan_in, fan_out, mean, spread(shape) * _STD_OF_DRAW[kind]

    return make_init(where, body, dtype, allow_complex=False, target=target, sampling=sampling)
