"""PyTorch's ``torch.nn.init`` schemes and layer defaults, on Flax layouts.

``torch.nn.init.kaiming_uniform_`` is ``jinit.torch.kaiming_uniform()``, ``nn.Linear``'s weight
is ``jinit.torch.linear_default()``, and ``jinit.torch.defaults()`` gives a whole Flax model
torch's defaults. Every function takes the Flax shape and gives the distribution torch gives the
corresponding torch tensor (see the porting tables). This module does not import torch.
"""

from jinit._torch import torch_bias_default as bias_default
from jinit._torch import torch_embedding_default as embedding_default
from jinit._torch import torch_kaiming_normal as kaiming_normal
from jinit._torch import torch_kaiming_uniform as kaiming_uniform
from jinit._torch import torch_linear_default as linear_default
from jinit._torch import torch_trunc_normal as trunc_normal
from jinit._torch import torch_xavier_normal as xavier_normal
from jinit._torch import torch_xavier_uniform as xavier_uniform
from jinit._torch_rules import torch_defaults as defaults

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
