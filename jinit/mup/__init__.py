"""muP (Yang et al. 2022): the maximal-update parametrization's initializers and optimizers.

:func:`hidden` and :func:`readout` give muP's initial weights; :func:`adam`, :func:`adamw`,
:func:`sgd` and :func:`scale_by_mup` give its per-parameter learning rates as optax
transformations, so that hyperparameters tuned on a small *base* model transfer to a wide one.
The optimizers import optax when called; the initializers, like the rest of jinit, do not need it.

Each parameter is classified by comparing its shape in the base model with its shape in the
target model, as ``microsoft/mup`` does (``set_base_shapes``): an axis whose size differs is a
*width* axis, with width multiplier ``target / base``. A parameter with two width axes is
*matrix-like* (hidden weights), with one *vector-like* (biases, input weights, embeddings), with
none *fixed*. Flax's layout is assumed: the fan-in axis is ``in_axis`` (default -2) and the fan-out
axis ``out_axis`` (default -1). The rules are ``mup.MuAdam``'s and ``mup.MuSGD``'s:

===========  ==================================  ==================================
kind         Adam-like (``optimizer="adam"``)    SGD-like (``optimizer="sgd"``)
===========  ==================================  ==================================
matrix-like  lr / fan_in_mult                    lr * fan_out_mult / fan_in_mult
vector-like  lr                                  lr * width_mult
fixed        lr                                  lr
readout      lr / fan_in_mult                    lr / fan_in_mult
===========  ==================================  ==================================

The *readout* row is for a readout written as a plain ``Dense`` initialised with
:func:`readout` (weights :math:`W' = W/w`), the form Flax models use: it is exactly
``mup.MuReadout`` (which keeps :math:`W` and divides its input by :math:`w`) with the same
training dynamics under ``MuAdam``/``MuSGD`` (``tests/test_mup.py`` trains both side by side).
Name the readout parameters with ``readout=`` (a regex searched in each parameter's path).

Weight decay: optax's ``adamw`` multiplies its decay by the learning rate, so scaling the update
also scales the decay; that is ``MuAdam(decoupled_wd=True)``.
"""

from jinit.mup._initializers import hidden as hidden
from jinit.mup._initializers import readout as readout
from jinit.mup._optimizers import WidthMult as WidthMult
from jinit.mup._optimizers import adam as adam
from jinit.mup._optimizers import adamw as adamw
from jinit.mup._optimizers import coord_check as coord_check
from jinit.mup._optimizers import lr_factors as lr_factors
from jinit.mup._optimizers import render as render
from jinit.mup._optimizers import scale_by_mup as scale_by_mup
from jinit.mup._optimizers import sgd as sgd
from jinit.mup._optimizers import width_mults as width_mults

__all__ = [
    "WidthMult",
    "adam",
    "adamw",
    "coord_check",
    "hidden",
    "lr_factors",
    "readout",
    "render",
    "scale_by_mup",
    "sgd",
    "width_mults",
]
