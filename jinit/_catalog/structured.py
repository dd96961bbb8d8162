"""Structured initializers: identity (torch's ``eye_``), Dirac (``dirac_``), sparse (``sparse_``).

Deterministic constructions are built whole and laid out as ``out_sharding`` at the end (cheap:
an iota comparison per element); random values are sampled where they will live.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _checks
from jinit._core import make_init, place
from jinit._rng import distributions as _distributions
from jinit._rng import draws as _draws
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding
from jinit._value import factory


@factory()
def identity(gain: Any = 1.0, dtype: DTypeLike | None = None) -> Initializer:
    r"""Builds an initializer of (possibly rectangular) identity matrices times ``gain``.

    For a Dense kernel ``(in, out)`` the result is :math:`W_{ij} = \text{gain}\cdot[i = j]`: the
    first ``min(in, out)`` inputs are passed through unchanged. This is ``torch.nn.init.eye_``
    (which fills the torch weight ``(out, in)`` with ``eye(out, in)``, the transpose of this) and
    Keras's ``Identity(gain)``; rectangular shapes are allowed. For rank > 2 the identity is on
    the last two axes and repeated over the leading ones, like haiku's ``Identity`` (a stack of
    per-head or per-expert matrices); for convolutions use :func:`dirac`.

    Args:
      gain: the multiplier of the diagonal; a number or a traced scalar (under
        ``jax.vmap``/``jit``), which gives the concrete gain's bits.
      dtype: the initializer's default dtype.

    Returns:
      An initializer for shapes of rank >= 2; the key is ignored.

    Examples:
      >>> import jax, jinit
      >>> jinit.identity(2.0)(jax.random.key(0), (2, 3)).tolist()
      [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    """
    where = "identity"
    gain = _checks.check_real_or_traced(where, "gain", gain)
    _checks.check_factory_dtype(where, dtype)

    def body(
        key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
    ) -> Array:
        if len(shape) < 2:
            raise ValueError(f"`{where}` needs a shape of rank >= 2 (..., in, out); got {shape}.")
        ct = _distributions.compute_dtype(dtype)
        # A select, not eye * gain: +0.0 off the diagonal for any gain, traced or not (XLA
        # rewrites the product with a constant gain into this select; batched, it would not).
        eye = jnp.where(jnp.eye(shape[-2], shape[-1], dtype=bool), jnp.array(gain, ct), 0)
        return place(jnp.broadcast_to(eye, shape).astype(dtype), out_sharding)

    traced = _checks.traced(gain)
    magnitude = lambda shape: abs(gain)
    return make_init(where, body, dtype, magnitude=magnitude, uses_key=False, traced=traced)


@factory()
def dirac(groups: int = 1, dtype: DTypeLike | None = None) -> Initializer:
    r"""Builds a Dirac-delta initializer for convolution kernels (``torch.nn.init.dirac_``).

    The Flax kernel ``(*spatial, in / groups, out)`` is zero except at the spatial centre
    ``k // 2`` (torch's centre; :func:`jinit.delta_orthogonal` uses ``(k - 1) // 2``), where
    output channel ``o`` of group ``g = o // (out / groups)`` copies input channel
    ``d = o mod (out / groups)`` of its group when ``d < in / groups``:

    .. math::
       W[c_1, \dots, c_n, d, g\cdot\tfrac{\text{out}}{\text{groups}} + d] = 1

    so the convolution starts as the identity on as many channels as fit. The result equals
    ``dirac_(torch.empty(out, in / groups, *spatial), groups)`` permuted to Flax's layout, for
    any rank >= 3 (torch accepts ranks 3 to 5 only).

    Args:
      groups: the number of convolution groups; it must divide ``out``.
      dtype: the initializer's default dtype.

    Returns:
      An initializer for shapes of rank >= 3; the key is ignored.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.dirac()(jax.random.key(0), (3, 3, 4, 4))
      >>> w[1, 1].tolist() == jax.numpy.eye(4).tolist(), float(w.sum())
      (True, 4.0)
    """
    where = "dirac"
    groups = _checks.check_count(where, "groups", groups)
    _checks.check_factory_dtype(where, dtype)

    def body(
        key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
    ) -> Array:
        if len(shape) < 3:
            raise ValueError(
                f"`{where}` needs a convolution kernel of rank >= 3 (*spatial, in, "
                f"out); got shape {shape}."
            )
        n_in, n_out = shape[-2:]
        if n_out % groups:
            raise ValueError(
                f"`{where}(groups={groups})`: the output channels (shape[-1] = "
                f"{n_out}) must be divisible by groups; got shape {shape}."
            )
        if not math.prod(shape):  # an empty kernel: no centre tap to set
            return place(jnp.zeros(shape, dtype), out_sharding)
        # Built by padding, not by indices: an axis may pass 2**31 (int32 indices would overflow).
        per_group = n_out // groups
        k = min(n_in, per_group)
        one = jnp.pad(jnp.eye(k, dtype=dtype), ((0, n_in - k), (0, per_group - k)))
        tap = jnp.tile(one, (1, groups))
        pads = [(c // 2, c - 1 - c // 2) for c in shape[:-2]]  # the centre k // 2, as torch's
        w = jnp.pad(tap.reshape((1,) * len(pads) + tap.shape), [*pads, (0, 0), (0, 0)])
        return place(w, out_sharding)

    return make_init(where, body, dtype, uses_key=False)


@factory()
def sparse(sparsity: Any, std: Any = 0.01, dtype: DTypeLike | None = None) -> Initializer:
    r"""Builds a sparse initializer: N(0, std^2) with a fixed number of zeros per input unit.

    ``torch.nn.init.sparse_`` zeroes, in each *column* of the torch weight ``(out, in)``,
    exactly :math:`k = \lceil \text{sparsity}\cdot\text{out}\rceil` entries at random rows. A
    torch column is one input unit, which is a *row* of the Flax kernel ``(in, out)``; so here
    each row ``W[i, :]`` (axis -1) has exactly ``k = ceil(sparsity * shape[-1])`` zeros, the rest
    are :math:`N(0, \text{std}^2)`. The zero positions are drawn from the key (torch's ``randperm``
    ignores its ``generator``), so the result is a pure function of the key.

    Args:
      sparsity: the fraction of zeros in each row, in ``[0, 1]``: a concrete number, never a
        traced one, since it sets a count (the zeros per row) and so the zero pattern.
      std: the standard deviation of the non-zero values; a number or a traced scalar (under
        ``jax.vmap``/``jit``), which gives the concrete std's bits.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer for 2-D kernels ``(in, out)``. The zero pattern is a per-row sort, computed
      whole on each device and then laid out as ``out_sharding``; the normal values are sampled
      sharded.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.sparse(0.25)(jax.random.key(0), (8, 100))
      >>> (w == 0).sum(axis=-1).tolist()
      [25, 25, 25, 25, 25, 25, 25, 25]

    References:
      Martens 2010, 'Deep learning via Hessian-free optimization'; ``torch.nn.init.sparse_``.
    """
    where = "sparse"
    why = "it sets how many entries of each row are zero, ceil(sparsity * shape[-1]), a count"
    _checks.refuse_traced(where, "sparsity", sparsity, why, kind="number")
    sparsity = _checks.check_real(where, "sparsity", sparsity)
    if not 0 <= sparsity <= 1:
        raise ValueError(f"`{where}(sparsity=...)` must be in [0, 1]; got {sparsity!r}.")
    std = _checks.check_real_or_traced(where, "std", std, nonnegative=True)
    _checks.check_factory_dtype(where, dtype, allow_complex=False)

    def body(
        key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
    ) -> Array:
        if len(shape) != 2:
            raise ValueError(f"`{where}` needs a 2-D kernel (in, out); got shape {shape}.")
        n_zeros = math.ceil(sparsity * shape[-1])
        ct = _distributions.compute_dtype(dtype)
        key_values, key_mask = jax.random.split(key)
        if ct == _distributions.F32 and _distributions.use_kernels(key_values, ct, shape):
            # erf_inv(u) * (sqrt(2) * std), the product XLA forms under any mesh (see `normal`):
            # written out, so the bits do not depend on how an ambient mesh changes fusion.
            z = _draws.normal()(key_values, shape, out_sharding)
            values = z * (_distributions.SQRT2 * jnp.array(std, ct))
        else:
            z = _distributions.normal(key_values, shape, dtype, out_sharding)
            values = z * jnp.array(std, ct)
        u = _distributions.uniform(key_mask, shape, jnp.dtype(jnp.float32))
        rank = jnp.argsort(jnp.argsort(u, axis=-1), axis=-1)
        keep = place(rank >= n_zeros, out_sharding)
        return jnp.where(keep, values, jnp.zeros((), ct)).astype(dtype)

    return make_init(
        where,
        body,
        dtype,
        allow_complex=False,
        magnitude=lambda shape: 6 * std,
        traced=_checks.traced(std),
    )
