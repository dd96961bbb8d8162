r"""``torch.nn.init`` and torch's layer defaults: torch's formulas and constants, Flax layouts.

The ports of ``torch.nn.init`` (``calculate_gain``, ``kaiming_*``, ``xavier_*``,
``trunc_normal_``) and of the defaults torch's ``Linear``, ``Conv`` and ``Embedding`` give their
parameters in ``reset_parameters``; :func:`jinit.torch.defaults` applies the latter to a whole
model.

**Layouts.** torch stores a Linear weight as ``(out, in)`` and a Conv weight as
``(out, in / groups, *kernel)``; Flax stores a Dense kernel as ``(in, out)`` and a Conv kernel as
``(*kernel, in / groups, out)``. The same layer's weights are related by

.. code-block:: python

   flax_kernel = torch_weight.permute(*range(2, ndim), 1, 0)   # Conv; Linear: torch_weight.T

and torch's ``_calculate_fan_in_and_fan_out`` (``fan_in = size(1) * prod(size[2:])``,
``fan_out = size(0) * prod(size[2:])``) equals :func:`jinit.compute_fans` on the Flax kernel with
the defaults ``in_axis=-2, out_axis=-1``. So every function here takes the *Flax* shape and gives
the distribution torch gives the corresponding torch tensor. Transposed convolutions are the
exception: torch's ``ConvTranspose`` weight is ``(in, out / groups, *kernel)`` and torch still
calls ``size(1)`` the fan-in, so to reproduce torch there pass ``in_axis=-1, out_axis=-2``.

The values are jinit's (a JAX key, not a ``torch.Generator``), so they match torch in
distribution, not bit for bit.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import jax.numpy as jnp
import numpy as np
from jax import lax

from jinit import _checks
from jinit._catalog.basic import normal
from jinit._catalog.variance import variance_scaling
from jinit._core import make_init
from jinit._rng import distributions as _distributions
from jinit._rng import portable as _portable
from jinit._typing import Array, Axes, DTypeLike, Initializer, KeyArray, OutSharding, public
from jinit._value import factory

NONLINEARITIES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)
TorchMode = Literal["fan_in", "fan_out"]
_FLOAT_MAX = float(np.finfo(np.float64).max)


@public("calculate_gain")
def calculate_gain(nonlinearity: str, param: Any = None) -> float:
    r"""The gain ``torch.nn.init.calculate_gain`` recommends for a nonlinearity.

    ============================================ =============================================
    nonlinearity                                 gain
    ============================================ =============================================
    ``linear``, ``conv{1,2,3}d``,                :math:`1`
    ``conv_transpose{1,2,3}d``, ``sigmoid``
    ``tanh``                                     :math:`5/3`
    ``relu``                                     :math:`\sqrt{2}`
    ``leaky_relu``                               :math:`\sqrt{2 / (1 + s^2)}`, ``s = param``
                                                 (default 0.01)
    ``selu``                                     :math:`3/4` (torch's empirical value; for
                                                 self-normalising nets use ``linear``)
    ============================================ =============================================

    Args:
      nonlinearity: the ``torch.nn.functional`` name of the nonlinearity.
      param: the negative slope of ``leaky_relu`` (ignored otherwise, as in torch).

    Returns:
      The gain, a Python float.

    Raises:
      ValueError: for an unknown nonlinearity or a ``leaky_relu`` slope that is not a real number
        (torch raises ``ValueError`` for both too).

    Examples:
      >>> import jinit
      >>> jinit.calculate_gain("tanh"), round(jinit.calculate_gain("leaky_relu"), 5)
      (1.6666666666666667, 1.41414)
      >>> round(jinit.calculate_gain("leaky_relu", 0.2), 5)
      1.38675

    References:
      ``torch.nn.init.calculate_gain`` (torch 2.13); PyTorch PR #50664 for the SELU gain.
    """
    _checks.check_one_of("calculate_gain", "nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity != "leaky_relu":
        return 1.0
    if param is None:
        slope = 0.01
    else:
        try:  # NumPy and 0-d jax scalars act as the Python numbers they hold
            slope = _checks.check_real("calculate_gain", "param", param)
        except (TypeError, ValueError):  # torch raises ValueError for a slope it cannot use
            raise ValueError(
                "`calculate_gain('leaky_relu', param=...)` must be a finite real number "
                f"(the negative slope) or None; got {param!r}."
            ) from None
    if abs(slope) < 1e150:  # torch's formula, torch's bits
        return math.sqrt(2.0 / (1 + slope**2))
    return math.sqrt(2.0) / abs(slope)  # 1 + slope^2 == slope^2 here; slope^2 may overflow


def _squared_gain_of(where: str, nonlinearity: str, a: Any) -> Any:
    """``calculate_gain(nonlinearity, a) ** 2``, the variance scale of the Kaiming rows.

    For ``leaky_relu``, ``2 / (1 + a^2)`` in float32, each operation rounded once, by the same
    operations for a concrete slope (NumPy) and a traced one (XLA, with a barrier so that no
    FMA fuses ``a * a + 1``): a sweep over slopes gives the concrete slopes' bits.
    """
    _checks.check_one_of(where, "nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity != "leaky_relu":
        return calculate_gain(nonlinearity, a) ** 2
    a = _checks.check_real_or_traced(where, "a", a)
    if _checks.traced(a):
        a = jnp.asarray(a, np.float32)
        return _checks.traced_quotient(2.0, 1 + lax.optimization_barrier(a * a), np.float32)
    with np.errstate(over="ignore"):  # a huge slope: a^2 is inf and the scale 0, as traced
        a = np.float32(a)
        return float(np.float32(2) / (np.float32(1) + a * a))


@factory("torch.kaiming_uniform")
def kaiming_uniform(
    a: Any = 0.0,
    mode: TorchMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""``torch.nn.init.kaiming_uniform_``: :math:`U(\pm\,\text{gain}\sqrt{3/\text{fan}})`.

    ``gain = calculate_gain(nonlinearity, a)``; with the defaults (``a=0``, ``leaky_relu``) the gain
    is :math:`\sqrt 2` (torch passes ``a=0`` as the slope, not the default 0.01).

    Args:
      a: the negative slope of the rectifier after this layer (used with ``leaky_relu`` only);
        or a traced scalar (under ``jax.vmap``/``jit``), which gives the concrete slope's bits
        (the squared gain ``2 / (1 + a^2)`` is computed in float32 either way).
      mode: ``"fan_in"`` (default) or ``"fan_out"``.
      nonlinearity: a name accepted by :func:`calculate_gain`.
      in_axis: fan-in axis or axes of the Flax-layout kernel (``-2``; see the module docstring).
      out_axis: fan-out axis or axes (``-1``).
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.torch.kaiming_uniform(nonlinearity="relu")(jax.random.key(0), (3, 3, 64, 128))
      >>> round(float(abs(w).max() * (576 / 6) ** 0.5), 2)  # bound = sqrt(6 / fan_in)
      1.0

    References:
      He et al. 2015, 'Delving deep into rectifiers', arXiv:1502.01852; ``torch.nn.init``.
    """
    where = "torch.kaiming_uniform"
    _checks.check_one_of(where, "mode", mode, ("fan_in", "fan_out"))
    scale = _squared_gain_of(where, nonlinearity, a)
    return variance_scaling(scale, mode, "uniform", in_axis, out_axis, batch_axis, dtype)


@factory("torch.kaiming_normal")
def kaiming_normal(
    a: Any = 0.0,
    mode: TorchMode = "fan_in",
    nonlinearity: str = "leaky_relu",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""``torch.nn.init.kaiming_normal_``: :math:`N(0, \text{gain}^2/\text{fan})`, *untruncated*.

    Unlike :func:`jinit.he_normal` (a truncated normal, jax's convention) the tails are not cut.
    The arguments are those of :func:`torch.kaiming_uniform`.

    Args:
      a: the negative slope of the rectifier after this layer (used with ``leaky_relu`` only);
        or a traced scalar (under ``jax.vmap``/``jit``), which gives the concrete slope's bits
        (the squared gain ``2 / (1 + a^2)`` is computed in float32 either way).
      mode: ``"fan_in"`` (default) or ``"fan_out"``.
      nonlinearity: a name accepted by :func:`calculate_gain`.
      in_axis: fan-in axis or axes of the Flax-layout kernel.
      out_axis: fan-out axis or axes.
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.torch.kaiming_normal(mode="fan_out")(jax.random.key(0), (512, 256))
      >>> round(float(w.std() * (256 / 2) ** 0.5), 2)
      1.0

    References:
      He et al. 2015, arXiv:1502.01852; ``torch.nn.init.kaiming_normal_``.
    """
    where = "torch.kaiming_normal"
    _checks.check_one_of(where, "mode", mode, ("fan_in", "fan_out"))
    scale = _squared_gain_of(where, nonlinearity, a)
    return variance_scaling(scale, mode, "normal", in_axis, out_axis, batch_axis, dtype)


@factory("torch.xavier_uniform")
def xavier_uniform(
    gain: Any = 1.0,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""torch's ``xavier_uniform_``: :math:`U(\pm g\sqrt{6/(\text{fan\_in}+\text{fan\_out})})`.

    ``g`` is ``gain``; the fans are those of :func:`jinit.compute_fans` on the Flax-layout kernel.

    Args:
      gain: the multiplier (non-negative), e.g. ``calculate_gain("tanh")``; or a traced scalar,
        which gives the concrete gain's bits (``gain**2`` is rounded to float32 either way).
      in_axis: fan-in axis or axes of the Flax-layout kernel.
      out_axis: fan-out axis or axes.
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.torch.xavier_uniform()(jax.random.key(0), (256, 512))
      >>> round(float(abs(w).max() * (768 / 6) ** 0.5), 2)
      1.0

    References:
      Glorot & Bengio 2010; ``torch.nn.init.xavier_uniform_``.
    """
    gain = _squared_gain("torch.xavier_uniform", gain)
    return variance_scaling(gain, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


@factory("torch.xavier_normal")
def xavier_normal(
    gain: Any = 1.0,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""``torch.nn.init.xavier_normal_``: :math:`N(0, 2g^2/(\text{fan\_in}+\text{fan\_out}))`.

    ``g`` is ``gain``. Untruncated, unlike :func:`jinit.glorot_normal`.

    Args:
      gain: the multiplier (non-negative); or a traced scalar, which gives the concrete gain's
        bits (``gain**2`` is rounded to float32 either way).
      in_axis: fan-in axis or axes of the Flax-layout kernel.
      out_axis: fan-out axis or axes.
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype.

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.torch.xavier_normal(gain=2.0)(jax.random.key(0), (256, 512))
      >>> round(float(w.std() * (768 / 2 / 4) ** 0.5), 2)
      1.0

    References:
      Glorot & Bengio 2010; ``torch.nn.init.xavier_normal_``.
    """
    gain = _squared_gain("torch.xavier_normal", gain)
    return variance_scaling(gain, "fan_avg", "normal", in_axis, out_axis, batch_axis, dtype)


def _squared_gain(where: str, gain: Any) -> Any:
    """``gain**2`` (the variance scale) for a non-negative ``gain`` whose square is a float.

    The square is rounded to float32, for a concrete gain as for a traced one (so a sweep over
    gains gives the concrete gains' bits); beyond float32's range, the float64 square.
    """
    gain = _checks.check_real_or_traced(where, "gain", gain, nonnegative=True)
    if _checks.traced(gain):
        return gain * gain
    with np.errstate(over="ignore"):  # as a traced gain's: float32
        squared = float(np.float32(gain) * np.float32(gain))
    if not math.isfinite(squared):
        squared = gain * gain  # inf on overflow (``**`` would raise OverflowError)
    if not math.isfinite(squared):
        raise ValueError(
            f"`{where}(gain=...)` must be at most {math.sqrt(_FLOAT_MAX):.4g} (its square, the "
            f"variance scale, must be a finite float); got {gain!r}."
        )
    return squared


@factory("torch.trunc_normal")
def trunc_normal(
    mean: Any = 0.0, std: Any = 1.0, a: Any = -2.0, b: Any = 2.0, dtype: DTypeLike | None = None
) -> Initializer:
    r"""``torch.nn.init.trunc_normal_``: ``N(mean, std^2)`` truncated to the absolute ``[a, b]``.

    The bounds are **absolute** values, not multiples of ``std`` (jax's
    :func:`jinit.truncated_normal` convention; flax#4091). With torch's defaults and a small
    ``std`` such as 0.02 the bounds are 100 standard deviations away, so there is, in effect, no
    truncation, exactly as in torch. No variance correction is applied, as in torch. The sampler
    is jax's inverse-CDF truncated normal in float32 (even for bfloat16 outputs), scaled and
    shifted, then clipped to ``[a, b]`` and rounded once.

    Each of ``mean``, ``std``, ``a`` and ``b`` may be a traced scalar (under ``jax.vmap``/``jit``,
    its value then not checked), which gives the concrete call's bits: the standardised bounds
    ``(a - mean) / std`` and their ``erf`` are computed at run time in float32 for numbers too
    (not folded by XLA), so the two take the same operations.

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
      >>> w = jinit.torch.trunc_normal(std=0.02)(jax.random.key(0), (100_000,))
      >>> round(float(w.std()), 3)
      0.02
      >>> w = jinit.torch.trunc_normal(mean=1.0, a=0.5, b=1.5)(jax.random.key(0), (1000,))
      >>> bool(w.min() >= 0.5), bool(w.max() <= 1.5)
      (True, True)

    References:
      ``torch.nn.init.trunc_normal_`` (torch 2.13); flax#4091.
    """
    where = "torch.trunc_normal"
    mean = _checks.check_real_or_traced(where, "mean", mean)
    a = _checks.check_real_or_traced(where, "a", a)
    b = _checks.check_real_or_traced(where, "b", b)
    std = _checks.check_real_or_traced(where, "std", std, positive=True)
    traced = any(_checks.traced(x) for x in (mean, std, a, b))
    if not (_checks.traced(a) or _checks.traced(b) or a < b):
        raise ValueError(f"`{where}(a=..., b=...)` needs a < b; got a={a!r}, b={b!r}.")
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    lower, upper = (a - mean) / std, (b - mean) / std

    def sample(key: KeyArray, shape: tuple[int, ...], dtype: Any, out_sharding: Any) -> Array:
        # make_init compiles this as one program, so eager and jit round the affine map alike.
        ct = _distributions.compute_dtype(dtype)
        largest = float(jnp.finfo(ct).max)
        for name, value in (("mean", mean), ("std", std), ("a", a), ("b", b)):
            if (
                not _checks.traced(value) and not abs(value) <= largest
            ):  # it would be inf in `ct`, and the values NaN
                raise ValueError(
                    f"`{where}({name}=...)` must be representable in {np.dtype(ct).name}, the "
                    f"dtype the values are computed in (largest finite value {largest:.4g}); "
                    f"got {value!r}. Use a float64 dtype (jax_enable_x64) or a smaller {name}."
                )
        if _portable.active():  # float32: exact products, no FMA can change the bits
            z = _distributions.truncated_normal(key, lower, upper, shape, dtype, out_sharding)
            x = _portable.mul_add(z, std, mean)
            return jnp.clip(x, jnp.array(a, ct), jnp.array(b, ct)).astype(dtype)
        # The hyperparameters enter at run time, behind a barrier that stops XLA folding a
        # number's bounds (`erf` folded on the host and `erf` run on the device differ in the
        # last bits): a traced one takes the same operations, so a sweep gives the same bits.
        hyper = tuple(jnp.asarray(v, ct) for v in (mean, std, a, b))
        m, s, lo, hi = lax.optimization_barrier(hyper)
        z = _distributions.truncated_normal(
            key, (lo - m) / s, (hi - m) / s, shape, dtype, out_sharding
        )
        return jnp.clip(z * s + m, lo, hi).astype(dtype)

    if traced:  # no overflow check: the values are not known until they run
        return make_init(where, sample, dtype, allow_complex=False, traced=True)
    # The values lie in [a, b], and within a few std of the mean when [a, b] allows.
    near = (min(max(mean - 6 * std, a), b), min(max(mean + 6 * std, a), b))
    magnitude = max(abs(near[0]), abs(near[1]))
    return make_init(where, sample, dtype, allow_complex=False, magnitude=lambda s: magnitude)


@factory("torch.linear_default")
def linear_default(
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
      An initializer. Pair it with :func:`torch.bias_default` for the bias.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.torch.linear_default()(jax.random.key(0), (400, 100))
      >>> round(float(abs(w).max() * 400 ** 0.5), 2)
      1.0

    References:
      ``torch.nn.Linear.reset_parameters``; PyTorch issues #15314 and #57109.
    """
    return variance_scaling(1.0 / 3.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


@factory("torch.bias_default")
def bias_default(fan_in: int, dtype: DTypeLike | None = None) -> Initializer:
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
      >>> b = jinit.torch.bias_default(fan_in=400)(jax.random.key(0), (10_000,))
      >>> round(float(abs(b).max() * 400 ** 0.5), 2)
      1.0

    References:
      ``torch.nn.Linear.reset_parameters``.
    """
    where = "torch.bias_default"
    fan_in = _checks.check_count(where, "fan_in", fan_in, minimum=0)
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def body(
        key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
    ) -> Array:
        ct = _distributions.compute_dtype(dtype)
        u = _distributions.uniform(key, shape, dtype, -1, 1, out_sharding)
        return (u * jnp.array(bound, ct)).astype(dtype)

    return make_init(where, body, dtype, allow_complex=False)


@factory("torch.embedding_default")
def embedding_default(dtype: DTypeLike | None = None) -> Initializer:
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
      >>> e = jinit.torch.embedding_default()(jax.random.key(0), (1000, 64))
      >>> e.shape, round(float(e.std()), 2)
      ((1000, 64), 1.0)

    References:
      ``torch.nn.Embedding.reset_parameters``.
    """
    _checks.check_factory_dtype("torch.embedding_default", dtype)
    return normal(1.0, dtype)
