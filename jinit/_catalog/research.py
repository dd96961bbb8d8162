"""Depth- and width-aware schemes from the literature, as composable initializers.

Each is an ordinary initializer (or a scale to compose with :func:`jinit.scaled`); the
architectural half of each method (DeepNorm's residual ``alpha``, Fixup's scalar multipliers and
biases, muP's output multiplier and learning-rate rules) lives in the model and the optimizer,
not here.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from jinit import _checks
from jinit._catalog.basic import normal
from jinit._catalog.combinators import scaled
from jinit._catalog.variance import glorot_uniform, he_normal, variance_scaling
from jinit._typing import DTypeLike, Initializer, public
from jinit._value import factory

Part = Literal["encoder", "decoder"]


@factory()
def scaled_residual(
    n_layers: int, stddev: Any = 0.02, dtype: DTypeLike | None = None
) -> Initializer:
    r"""GPT-2 / Megatron residual output projections: :math:`N(0, (\sigma/\sqrt{2L})^2)`.

    A pre-LN transformer with :math:`L` layers adds :math:`2L` residual branches (attention and
    MLP per layer); scaling the last projection of each branch by :math:`1/\sqrt{2L}` keeps the
    residual stream's variance independent of depth. Use it for the attention output and the
    MLP down projection; the other weights use ``normal(stddev)``.

    Args:
      n_layers: the number of transformer layers :math:`L` (positive).
      stddev: the base standard deviation :math:`\sigma` (GPT-2: 0.02); a number or a traced
        scalar (under ``jax.vmap``/``jit``), which gives the concrete stddev's bits
        (:math:`\sigma/\sqrt{2L}` is one float32 division either way).
      dtype: the initializer's default dtype.

    Returns:
      An initializer of untruncated normal values, any shape.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.scaled_residual(n_layers=8)(jax.random.key(0), (512, 512))
      >>> round(float(w.std()) * 4, 3)  # 0.02 / sqrt(16)
      0.02

    References:
      Radford et al. 2019 (GPT-2); Shoeybi et al. 2019, arXiv:1909.08053 (Megatron-LM,
      ``scaled_init_method_normal``).
    """
    n_layers = _checks.check_count("scaled_residual", "n_layers", n_layers)
    stddev = _checks.check_real_or_traced("scaled_residual", "stddev", stddev, nonnegative=True)
    return normal(_checks.quotient(stddev, math.sqrt(2 * n_layers), np.float32), dtype)


@factory()
def fixup(n_branches: int, layers_per_branch: int, init: Initializer | None = None) -> Initializer:
    r"""Fixup's scaled branch layers: ``init`` times :math:`L^{-1/(2m-2)}`.

    Fixup (Zhang et al. 2019) trains residual networks without normalisation: initialise the
    classifier and the *last* layer of every residual branch to zero (:func:`jinit.zeros`); give
    the other layers of each branch a standard init (default :func:`jinit.he_normal`) scaled by
    :math:`L^{-1/(2m-2)}`, where :math:`L` is the number of residual branches and :math:`m` the
    number of layers per branch; add scalar multipliers (init 1) and biases (init 0) in the model.

    Args:
      n_branches: :math:`L`, the number of residual branches (positive).
      layers_per_branch: :math:`m >= 2` (with :math:`m = 1` the only layer is the zero one).
      init: the base initializer (default ``he_normal()``).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.fixup(16, 2, init=jinit.torch.kaiming_normal())(jax.random.key(0), (512, 512))
      >>> round(float(w.std() * (512 / 2) ** 0.5 * 16 ** 0.5), 2)  # 16 ** (-1 / 2)
      1.0

    References:
      Zhang, Dauphin & Ma 2019, 'Fixup initialization: residual learning without normalization',
      arXiv:1901.09321.
    """
    n_branches = _checks.check_count("fixup", "n_branches", n_branches)
    layers_per_branch = _checks.check_count("fixup", "layers_per_branch", layers_per_branch)
    if layers_per_branch < 2:
        raise ValueError(
            "`fixup(layers_per_branch=...)` must be >= 2 (the last layer of a branch "
            f"is zero-initialised; use `jinit.zeros` for it); got {layers_per_branch}."
        )
    base = he_normal() if init is None else init
    return scaled(base, n_branches ** (-1 / (2 * layers_per_branch - 2)))


@public("t_fixup_scale")
def t_fixup_scale(n_layers: int, part: Part = "encoder") -> float:
    r"""T-Fixup's weight scale: :math:`0.67\,N^{-1/4}` (encoder) or :math:`(9M)^{-1/4}` (decoder).

    Args:
      n_layers: :math:`N` encoder or :math:`M` decoder layers.
      part: ``"encoder"`` or ``"decoder"``.

    Returns:
      The scale as a float.

    Examples:
      >>> import jinit
      >>> round(jinit.t_fixup_scale(6), 4), round(jinit.t_fixup_scale(6, "decoder"), 4)
      (0.4281, 0.3689)

    References:
      Huang et al. 2020, 'Improving transformer optimization through better initialization'
      (ICML 2020).
    """
    n_layers = _checks.check_count("t_fixup_scale", "n_layers", n_layers)
    _checks.check_one_of("t_fixup_scale", "part", part, ("encoder", "decoder"))
    return 0.67 * n_layers**-0.25 if part == "encoder" else (9 * n_layers) ** -0.25


@factory()
def t_fixup(n_layers: int, part: Part = "encoder", init: Initializer | None = None) -> Initializer:
    r"""T-Fixup (Huang et al. 2020): Xavier uniform times :func:`t_fixup_scale`.

    T-Fixup trains post-LN-free transformers without warmup: Xavier init everywhere; the
    attention value and output projections and the MLP weights are scaled by
    :math:`0.67\,N^{-1/4}` in the encoder and :math:`(9M)^{-1/4}` in the decoder (queries and
    keys keep plain Xavier); input embeddings use :func:`t_fixup_embedding`.

    Args:
      n_layers: :math:`N` encoder or :math:`M` decoder layers.
      part: ``"encoder"`` or ``"decoder"``.
      init: the base initializer (default ``glorot_uniform()``, torch's ``xavier_uniform_``).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.t_fixup(6, "decoder")(jax.random.key(0), (256, 256))
      >>> round(float(abs(w).max() / (6 / 512) ** 0.5 / jinit.t_fixup_scale(6, "decoder")), 2)
      1.0

    References:
      Huang, Perez, Ba & Volkovs 2020, 'Improving transformer optimization through better
      initialization' (ICML 2020).
    """
    scale = t_fixup_scale(_checks.check_count("t_fixup", "n_layers", n_layers), part)
    return scaled(glorot_uniform() if init is None else init, scale)


@factory()
def t_fixup_embedding(decoder_layers: int, dtype: DTypeLike | None = None) -> Initializer:
    r"""T-Fixup's input embeddings: :math:`N(0, d^{-1})` times :math:`(9M)^{-1/4}`.

    The paper writes :math:`\mathcal N(0, d^{-1/2})` for embeddings of width :math:`d` and scales
    the encoder and decoder input embeddings by :math:`(9M)^{-1/4}` (:math:`M` decoder layers);
    the standard deviation is :math:`d^{-1/2}`, as in the fairseq embedding init the authors'
    code builds on. The table is ``(vocab, d)`` (Flax ``Embed`` layout), ``d = shape[-1]``.

    Args:
      decoder_layers: :math:`M` (positive).
      dtype: the initializer's default dtype.

    Returns:
      An initializer for tables of rank >= 2.

    Examples:
      >>> import jax, jinit
      >>> e = jinit.t_fixup_embedding(6)(jax.random.key(0), (1000, 256))
      >>> round(float(e.std() * 256 ** 0.5 / 54 ** -0.25), 2)
      1.0

    References:
      Huang et al. 2020 (ICML 2020), Algorithm 1.
    """
    decoder_layers = _checks.check_count("t_fixup_embedding", "decoder_layers", decoder_layers)
    return variance_scaling(
        (9 * decoder_layers) ** -0.5, "fan_in", "normal", in_axis=-1, out_axis=-2, dtype=dtype
    )
