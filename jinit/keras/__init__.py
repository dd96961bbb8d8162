"""Keras 3's ``keras.initializers``: its formulas, layer defaults and fan rules.

``keras.initializers.VarianceScaling`` is ``jinit.keras.variance_scaling()`` (whose ``"normal"``
is truncated, as in Keras), ``Dense``'s kernel default is ``jinit.keras.dense_default()``. This
module does not import Keras.
"""

from jinit.keras._initializers import conv_default as conv_default
from jinit.keras._initializers import dense_default as dense_default
from jinit.keras._initializers import embedding_default as embedding_default
from jinit.keras._initializers import identity as identity
from jinit.keras._initializers import orthogonal as orthogonal
from jinit.keras._initializers import random_normal as random_normal
from jinit.keras._initializers import random_uniform as random_uniform
from jinit.keras._initializers import truncated_normal as truncated_normal
from jinit.keras._initializers import variance_scaling as variance_scaling

__all__ = [
    "conv_default",
    "dense_default",
    "embedding_default",
    "identity",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
]
