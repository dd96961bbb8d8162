"""jinit: reproducible, sharding-native neural-network weight initializers for JAX and Flax.

The porting families are namespaces: :mod:`jinit.torch`, :mod:`jinit.keras`, :mod:`jinit.haiku`
and :mod:`jinit.mup` (``jinit.torch.kaiming_uniform``). Their old flat names
(``jinit.torch_kaiming_uniform``) still give the same objects, with a ``DeprecationWarning``
(``jinit/_deprecations.py``). The namespaces are attributes of ``jinit`` but not in ``__all__``,
so ``from jinit import *`` cannot shadow ``import torch``.
"""

from typing import TYPE_CHECKING

from jinit import _catalog, _deprecations
from jinit import haiku as haiku
from jinit import keras as keras
from jinit import mup as mup
from jinit import torch as torch
from jinit._catalog import layout as _layout  # noqa: F401  (registers the equinox layout)
from jinit._catalog.basic import constant as constant
from jinit._catalog.basic import normal as normal
from jinit._catalog.basic import ones as ones
from jinit._catalog.basic import truncated_normal as truncated_normal
from jinit._catalog.basic import uniform as uniform
from jinit._catalog.basic import zeros as zeros
from jinit._catalog.combinators import portable as portable
from jinit._catalog.combinators import scaled as scaled
from jinit._catalog.deepnorm import deepnorm as deepnorm
from jinit._catalog.deepnorm import deepnorm_alpha as deepnorm_alpha
from jinit._catalog.deepnorm import deepnorm_beta as deepnorm_beta
from jinit._catalog.gates import rezero as rezero
from jinit._catalog.gates import skipinit as skipinit
from jinit._catalog.orthogonal import delta_orthogonal as delta_orthogonal
from jinit._catalog.orthogonal import orthogonal as orthogonal
from jinit._catalog.research import fixup as fixup
from jinit._catalog.research import scaled_residual as scaled_residual
from jinit._catalog.research import t_fixup as t_fixup
from jinit._catalog.research import t_fixup_embedding as t_fixup_embedding
from jinit._catalog.research import t_fixup_scale as t_fixup_scale
from jinit._catalog.stacked import stacked as stacked
from jinit._catalog.structured import dirac as dirac
from jinit._catalog.structured import identity as identity
from jinit._catalog.structured import sparse as sparse
from jinit._catalog.variance import glorot_normal as glorot_normal
from jinit._catalog.variance import glorot_uniform as glorot_uniform
from jinit._catalog.variance import he_normal as he_normal
from jinit._catalog.variance import he_uniform as he_uniform
from jinit._catalog.variance import kaiming_normal as kaiming_normal
from jinit._catalog.variance import kaiming_uniform as kaiming_uniform
from jinit._catalog.variance import lecun_normal as lecun_normal
from jinit._catalog.variance import lecun_uniform as lecun_uniform
from jinit._catalog.variance import variance_scaling as variance_scaling
from jinit._catalog.variance import xavier_normal as xavier_normal
from jinit._catalog.variance import xavier_uniform as xavier_uniform
from jinit._catalog.zero import hadamard as hadamard
from jinit._catalog.zero import zero_init as zero_init
from jinit._describe import Description as Description
from jinit._describe import describe as describe
from jinit._explain import Explanation as Explanation
from jinit._explain import ParamRule as ParamRule
from jinit._explain import explain as explain
from jinit._fans import EinsumAxes as EinsumAxes
from jinit._fans import compute_fans as compute_fans
from jinit._fans import einsum_axes as einsum_axes
from jinit._rng.draws import Draw as Draw
from jinit._rng.draws import Sampling as Sampling
from jinit._signal import LayerSignal as LayerSignal
from jinit._signal import SignalReport as SignalReport
from jinit._signal import signal_propagation as signal_propagation
from jinit._tree.api import init_tree as init_tree
from jinit._tree.keys import key_for_path as key_for_path
from jinit._tree.keys import keys_like as keys_like
from jinit._tree.keys import path_str as path_str
from jinit._tree.rules import full_match as full_match
from jinit._typing import Initializer as Initializer
from jinit._value import Init as Init
from jinit.torch._initializers import calculate_gain as calculate_gain

__version__ = "0.1.0"

# The top-level names by family, in the catalog's order: one table, jinit/_catalog/__init__.py,
# from which the docs' catalog page is built and against which the README's table is checked.
__all__ = _catalog.top_level_names()

if not TYPE_CHECKING:  # type checkers see only the current names, as in jax
    __getattr__ = _deprecations.module_getattr(__name__, _deprecations.RENAMED)
del TYPE_CHECKING
