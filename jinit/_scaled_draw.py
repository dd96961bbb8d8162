"""One standard draw, scaled by a static function of the shape: the body of the Keras/Haiku rows.

Keras and Haiku state each initializer as ``mean + spread(shape) * z`` with ``z`` one of three
standard draws (``truncated_normal``: N(0, 1) cut at +-2, uncorrected; ``normal``; ``uniform`` on
[-1, 1)) and a spread that is plain Python on the static shape (their own fan rules, which accept
0-D and 1-D shapes). :func:`scaled_draw` states that formula once (:mod:`jinit._rng.formula`),
so leaves of equal shape group in :func:`jinit.init_tree` whatever their spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from jinit._core import formula_init
from jinit._rng import samplers as _samplers
from jinit._rng import sampling as _sampling
from jinit._rng.formula import Formula
from jinit._typing import DTypeLike, Initializer

Kind = Literal["truncated_normal", "normal", "uniform"]
Spread = Callable[[tuple[int, ...]], float]


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
    draw = _sampling.STANDARD[kind]
    formula = lambda shape, dtype: Formula(draw, spread(shape), mean)
    return formula_init(where, formula, dtype, fans=fans, allow_complex=False)
