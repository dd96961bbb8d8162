"""torch's default ``Linear``/``Conv``/``Embedding`` inits and ``trunc_normal_`` (absolute bounds).

The layout conventions are those of :mod:`jinit._torch`: Flax-layout kernels, torch's fans.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from jinit import _checks, _random
from jinit._basic import normal
from jinit._core import make_init
from jinit._typing import Array, Axes, DTypeLike, Initializer, KeyArray, OutSharding
from jinit._variance import variance_scaling


def torch_trunc_normal(
    mean: Any = 0.0, std: Any = 1.0, a: Any = -2.0, b: Any = 2.0, dtype: DTypeLike | None = None
) -> Initializer:
    r"""``torch.nn.init.trunc_normal_``: ``N(mean, std^2)`` truncated to the absolute ``[a, b]``.

    The bounds are **absolute** values, not multiples of ``std`` (jax's
    :func:`jinit.truncated_normal` convention; flax#4091). With torch's defaults and a small
    ``std`` such as 0.02 the bounds are 100 standard deviations away, so there is, in effect, no
    truncation, exactly as in torch. No variance correction is applied, as in torch. The sampler
    is jax's inverse-CDF truncated normal in float32 (even for bfloat16 outputs), scaled and
    shifted, then clipped to ``[a, b]`` and rounded once.

    Args:
      mean: the mean of the normal before truncation.
      std: its standard deviation (positive).
      a: the lower bound (absolute).
      b: the upper bound (absolute), ``a < b``.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer of values in ``[a, b]``.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.torch_trunc_normal(std=0.02)(jax.random.key(0), (100_000,))
      >>> round(float(w.std()), 3)
      0.02
      >>> w = jinit.torch_trunc_normal(mean=1.0, a=0.5, b=1.5)(jax.random.key(0), (1000,))
      >>> bool(w.min() >= 0.5), bool(w.max() <= 1.5)
      (True, True)

    References:
      ``torch.nn.init.trunc_normal_`` (torch 2.13); flax#4091.
    """
    where = "torch_trunc_normal"
    mean = _checks.check_real(where, "mean", mean)
    a = _checks.check_real(where, "a", a)
    b = _checks.check_real(where, "b", b)
    std = _checks.check_real(where, "std", std, positive=True)
    if not a < b:
        raise ValueError(f"`{where}(a=..., b=...)` needs a < b; got a={a!r}, b={b!r}.")
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    lower, upper = (a - mean) / std, (b - mean) / std

    def sample(key: KeyArray, shape: tuple[int, ...], dtype: Any, out_sharding: Any) -> Array:
        # make_init compiles this as one program, so eager and jit round the affine map alike.
        ct = _random.compute_dtype(dtype)
        z = _random.truncated_normal(key, lower, upper, shape, dtype, out_sharding=out_sharding)
        x = z * jnp.array(std, ct) + jnp.array(mean, ct)
        return jnp.clip(x, jnp.array(a, ct), jnp.array(b, ct)).astype(dtype)

    return make_init(where, sample, dtype, allow_complex=False)


def torch_linear_default(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), dtype: DTypeLike | None = None
) -> Initializer:
    r"""torch's default ``Linear``/``Conv`` weight: :math:`U(\pm 1/\sqrt{\text{fan\_in}})`.

    torch's ``reset_parameters`` calls ``kaiming_uniform_(w, a=sqrt(5))``: the gain is
    :math:`\sqrt{2/(1+5)} = \sqrt{1/3}` and the bound
    :math:`\sqrt 3\cdot\text{gain}/\sqrt{\text{fan\_in}} = 1/\sqrt{\text{fan\_in}}`, so the
    variance is :math:`1/(3\,\text{fan\_in})`. For a grouped
    convolution, ``fan_in = (in / groups) * prod(kernel)``, which is what the Flax kernel shape
    ``(*kernel, in / groups, out)`` gives.

    Args:
      in_axis: fan-in axis or axes of the Flax-layout kernel.
      out_axis: fan-out axis or axes.
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype.

    Returns:
      An initializer. Pair it with :func:`torch_bias_default` for the bias.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.torch_linear_default()(jax.random.key(0), (400, 100))
      >>> round(float(abs(w).max() * 400 ** 0.5), 2)
      1.0

    References:
      ``torch.nn.Linear.reset_parameters``; PyTorch issues #15314 and #57109.
    """
    return variance_scaling(1.0 / 3.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def torch_bias_default(fan_in: int, dtype: DTypeLike | None = None) -> Initializer:
    r"""torch's default ``Linear``/``Conv`` bias: :math:`U(\pm 1/\sqrt{\text{fan\_in}})`.

    A bias has no fan of its own, so the layer's ``fan_in`` (``in_features``, or
    ``in_channels / groups * prod(kernel_size)`` for a convolution) is an argument; as in torch,
    ``fan_in=0`` gives a zero bound. Any shape is accepted.

    Args:
      fan_in: the fan-in of the layer's weight (a non-negative int).
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> b = jinit.torch_bias_default(fan_in=400)(jax.random.key(0), (10_000,))
      >>> round(float(abs(b).max() * 400 ** 0.5), 2)
      1.0

    References:
      ``torch.nn.Linear.reset_parameters``.
    """
    where = "torch_bias_default"
    fan_in = _checks.check_count(where, "fan_in", fan_in, minimum=0)
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def body(
        key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
    ) -> Array:
        ct = _random.compute_dtype(dtype)
        u = _random.uniform(key, shape, dtype, -1, 1, out_sharding)
        return (u * jnp.array(bound, ct)).astype(dtype)

    return make_init(where, body, dtype, allow_complex=False)


def torch_embedding_default(dtype: DTypeLike | None = None) -> Initializer:
    r"""torch's default ``Embedding`` weight: :math:`N(0, 1)`.

    torch's ``Embedding.weight`` is ``(num_embeddings, embedding_dim)``, the same layout as Flax's
    ``Embed.embedding``, so no transposition is involved. (Flax's own default is
    :math:`N(0, 1/\text{features})`.)

    Args:
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> e = jinit.torch_embedding_default()(jax.random.key(0), (1000, 64))
      >>> e.shape, round(float(e.std()), 2)
      ((1000, 64), 1.0)

    References:
      ``torch.nn.Embedding.reset_parameters``.
    """
    _checks.check_factory_dtype("torch_embedding_default", dtype)
    return normal(1.0, dtype)
