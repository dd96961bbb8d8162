"""Keras 3's ``keras.initializers``: its formulas, layer defaults and fan rules.

``keras.initializers.VarianceScaling`` is ``jinit.keras.variance_scaling()`` (whose ``"normal"``
is truncated, as in Keras), ``Dense``'s kernel default is ``jinit.keras.dense_default()``. This
module does not import Keras.
"""

from jinit._keras import keras_conv_default as conv_default
from jinit._keras import keras_dense_default as dense_default
from jinit._keras import keras_embedding_default as embedding_default
from jinit._keras import keras_identity as identity
from jinit._keras import keras_orthogonal as orthogonal
from jinit._keras import keras_random_normal as random_normal
from jinit._keras import keras_random_uniform as random_uniform
from jinit._keras import keras_truncated_normal as truncated_normal
from jinit._keras import keras_variance_scaling as variance_scaling

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
