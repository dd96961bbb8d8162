"""One standard draw, scaled and shifted: the body of the Keras/Haiku rows.

Keras and Haiku state each initializer as ``mean + spread * z`` with ``z`` one of three standard
draws (``truncated_normal``: N(0, 1) cut at +-2, uncorrected; ``normal``; ``uniform`` on
[-1, 1)). Their ``VarianceScaling`` rows give ``z`` the variance ``scale / max(1, n)`` from their
own fan rules (plain Python on the static shape, accepting 0-D and 1-D shapes), with the
arithmetic of :func:`jinit.variance_scaling` (:func:`variance_draw`); the plain rows take a
spread and a mean (:func:`scaled_draw`). Each states its formula once (:mod:`jinit._rng.formula`),
so leaves of equal shape group in :func:`jinit.init_tree` whatever their spread, and a traced
hyperparameter takes the same float32 operations as a concrete one (the same bits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from jinit._core import formula_init
from jinit._rng import draws as _draws
from jinit._rng.formula import Formula
from jinit._typing import DTypeLike, Initializer

Kind = Literal["truncated_normal", "normal", "uniform"]
Fans = Callable[[tuple[int, ...]], tuple[float, float]]


def variance_draw(
    where: str,
    kind: Kind,
    scale: Any,
    denominator: Callable[[tuple[int, ...]], float],
    dtype: DTypeLike | None,
    *,
    fans: Fans,
    traced: bool = False,
) -> Initializer:
    """The standard ``kind`` draw with the variance ``scale / max(1, denominator(shape))``
    (``sqrt(var) / 0.8796``, ``sqrt(var)``, ``sqrt(3 * var)``), computed as jax's
    ``variance_scaling`` computes it; ``denominator`` raises the shape errors (on static ints);
    ``fans`` is what :func:`jinit.describe` reports."""
    draw = _draws.STANDARD[kind]
    formula = lambda shape, dtype: Formula(draw, scale, fan=max(1.0, denominator(shape)))
    return formula_init(where, formula, dtype, fans=fans, allow_complex=False, traced=traced)


def scaled_draw(
    where: str,
    kind: Kind,
    spread: Callable[[tuple[int, ...]], Any],
    dtype: DTypeLike | None,
    *,
    mean: Any = 0.0,
    fans: Fans | None = None,
    traced: bool = False,
) -> Initializer:
    """``mean + spread(shape) * z``, ``z`` the standard ``kind`` draw, in float32, rounded once.

    ``spread`` raises the shape errors (it runs first, on static ints); ``fans`` (optional) is
    what :func:`jinit.describe` reports. ``spread`` and ``mean`` are float32 numbers or traced
    scalars (``traced``).
    """
    draw = _draws.STANDARD[kind]
    formula = lambda shape, dtype: Formula(draw, spread(shape), mean)
    return formula_init(where, formula, dtype, fans=fans, allow_complex=False, traced=traced)
