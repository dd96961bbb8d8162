"""PyTorch's ``torch.nn.init`` schemes and layer defaults, on Flax layouts.

``torch.nn.init.kaiming_uniform_`` is ``jinit.torch.kaiming_uniform()``, ``nn.Linear``'s weight
is ``jinit.torch.linear_default()``, and ``jinit.torch.defaults()`` gives a whole Flax model
torch's defaults. Every function takes the Flax shape and gives the distribution torch gives the
corresponding torch tensor (see the porting tables). This module does not import torch.
"""

from jinit.torch._defaults import defaults as defaults
from jinit.torch._initializers import bias_default as bias_default
from jinit.torch._initializers import embedding_default as embedding_default
from jinit.torch._initializers import kaiming_normal as kaiming_normal
from jinit.torch._initializers import kaiming_uniform as kaiming_uniform
from jinit.torch._initializers import linear_default as linear_default
from jinit.torch._initializers import trunc_normal as trunc_normal
from jinit.torch._initializers import xavier_normal as xavier_normal
from jinit.torch._initializers import xavier_uniform as xavier_uniform

__all__ = [
    "bias_default",
    "defaults",
    "embedding_default",
    "kaiming_normal",
    "kaiming_uniform",
    "linear_default",
    "trunc_normal",
    "xavier_normal",
    "xavier_uniform",
]
