"""Haiku's ``haiku.initializers``: its formulas, layer defaults and fan rules.

``hk.initializers.VarianceScaling`` is ``jinit.haiku.variance_scaling()``, ``hk.Linear``'s and
``hk.ConvND``'s weight default (a truncated normal, uncorrected for the truncation) is
``jinit.haiku.linear_default()``. This module does not import Haiku.
"""

from jinit.haiku._initializers import conv_default as conv_default
from jinit.haiku._initializers import embed_default as embed_default
from jinit.haiku._initializers import linear_default as linear_default
from jinit.haiku._initializers import orthogonal as orthogonal
from jinit.haiku._initializers import variance_scaling as variance_scaling

__all__ = [
    "conv_default",
    "embed_default",
    "linear_default",
    "orthogonal",
    "variance_scaling",
]
