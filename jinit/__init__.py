"""jinit: reproducible, sharding-native neural-network weight initializers for JAX and Flax."""

from jinit._basic import constant as constant
from jinit._basic import normal as normal
from jinit._basic import ones as ones
from jinit._basic import truncated_normal as truncated_normal
from jinit._basic import uniform as uniform
from jinit._basic import zeros as zeros
from jinit._fans import EinsumAxes as EinsumAxes
from jinit._fans import compute_fans as compute_fans
from jinit._fans import einsum_axes as einsum_axes
from jinit._keys import key_for_path as key_for_path
from jinit._keys import keys_like as keys_like
from jinit._keys import path_str as path_str
from jinit._orthogonal import delta_orthogonal as delta_orthogonal
from jinit._orthogonal import orthogonal as orthogonal
from jinit._tree import init_tree as init_tree
from jinit._typing import Initializer as Initializer
from jinit._variance import glorot_normal as glorot_normal
from jinit._variance import glorot_uniform as glorot_uniform
from jinit._variance import he_normal as he_normal
from jinit._variance import he_uniform as he_uniform
from jinit._variance import kaiming_normal as kaiming_normal
from jinit._variance import kaiming_uniform as kaiming_uniform
from jinit._variance import lecun_normal as lecun_normal
from jinit._variance import lecun_uniform as lecun_uniform
from jinit._variance import variance_scaling as variance_scaling
from jinit._variance import xavier_normal as xavier_normal
from jinit._variance import xavier_uniform as xavier_uniform

__version__ = "0.1.0"
