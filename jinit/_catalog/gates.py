r"""Residual gates (ReZero, SkipInit): zero-initialised scalars; a deep net starts as the identity.

Both methods multiply each residual branch by a learnable gate, :math:`x_{l+1} = x_l + \alpha_l
F_l(x_l)`, and start it at (or near) zero, so at initialisation every block is the identity map
whatever the depth: the forward signal and the backward gradient pass through unchanged, and
normalisation layers are no longer needed to keep them bounded. The gate is a parameter of the
model (a scalar per block, or one per channel); these initializers make it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jinit import _checks
from jinit._core import make_init, place
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding
from jinit._value import factory


def _gate(where: str, value: Any, dtype: DTypeLike | None) -> Initializer:
    value = _checks.check_real_or_traced(where, "value", value)
    _checks.check_factory_dtype(where, dtype)

    def body(key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding):
        out: Array = jnp.full(shape, value, dtype)
        return place(out, out_sharding)

    traced = _checks.traced(value)
    target = None if traced else lambda s: (None, None, float(value), 0.0)
    return make_init(where, body, dtype, target=target, uses_key=False, traced=traced)


@factory()
def rezero(dtype: DTypeLike | None = None) -> Initializer:
    r"""The ReZero gate: :math:`\alpha = 0` for :math:`x_{l+1} = x_l + \alpha_l F_l(x_l)`.

    ReZero (Bachlechner et al. 2020) needs nothing else: no normalisation, no warm-up, any
    initializer inside :math:`F`. The gate is usually one scalar per block (shape ``()``); any
    shape works (a per-channel gate). The key is ignored.

    Args:
      dtype: the initializer's default dtype.

    Returns:
      An initializer of zeros.

    Examples:
      >>> import jax, jinit
      >>> alpha = jinit.rezero()(jax.random.key(0), ())
      >>> alpha.shape, float(alpha)
      ((), 0.0)

    References:
      Bachlechner et al. 2020, 'ReZero is all you need: fast convergence at large depth',
      arXiv:2003.04887.
    """
    return _gate("rezero", 0.0, dtype)


@factory()
def skipinit(value: Any = 0.0, dtype: DTypeLike | None = None) -> Initializer:
    r"""The SkipInit gate: the scalar multiplier at the end of each residual branch, :math:`\alpha`.

    SkipInit (De & Smith 2020) replaces batch normalisation in a deep residual network by a
    learnable scalar at the end of every residual branch, initialised to zero (the default) or to a
    small constant; batch normalisation's effect at initialisation is to downscale each branch by
    about :math:`1/\sqrt{d}` for depth :math:`d`, which ``value`` can reproduce. The key is
    ignored.

    Args:
      value: the gate's initial value (a finite real number, default 0), or a traced scalar
        (under ``jax.vmap``/``jit``), which gives the concrete value's bits.
      dtype: the initializer's default dtype.

    Returns:
      An initializer filled with ``value``.

    Examples:
      >>> import jax, jinit
      >>> jinit.skipinit(0.125)(jax.random.key(0), (4,)).tolist()
      [0.125, 0.125, 0.125, 0.125]

    References:
      De & Smith 2020, 'Batch normalization biases residual blocks towards the identity function
      in deep networks', arXiv:2002.10444.
    """
    return _gate("skipinit", value, dtype)
