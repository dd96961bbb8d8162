"""DeepNorm (Wang et al. 2022): the residual multiplier alpha and the init gain beta."""

from __future__ import annotations

from jinit import _checks
from jinit._catalog.research import Part
from jinit._typing import Axes, DTypeLike, Initializer, public
from jinit._value import factory
from jinit.torch import _initializers as _torch


def _deepnorm_constants(
    where: str, n_layers: int, decoder_layers: int | None, part: Part
) -> tuple[float, float]:
    n_layers = _checks.check_count(where, "n_layers", n_layers)
    _checks.check_one_of(where, "part", part, ("encoder", "decoder"))
    if decoder_layers is None:  # encoder-only or decoder-only
        return (2 * n_layers) ** 0.25, (8 * n_layers) ** -0.25
    decoder_layers = _checks.check_count(where, "decoder_layers", decoder_layers)
    if part == "decoder":
        return (3 * decoder_layers) ** 0.25, (12 * decoder_layers) ** -0.25
    nm = n_layers**4 * decoder_layers
    return 0.81 * nm ** (1 / 16), 0.87 * nm ** (-1 / 16)


@public("deepnorm_alpha")
def deepnorm_alpha(
    n_layers: int, decoder_layers: int | None = None, *, part: Part = "encoder"
) -> float:
    r"""DeepNorm's residual multiplier :math:`\alpha`: each block computes ``LN(alpha * x + f(x))``.

    ========================= ================================ ==================================
    architecture              :math:`\alpha`                   :math:`\beta`
    ========================= ================================ ==================================
    encoder-only (N layers)   :math:`(2N)^{1/4}`               :math:`(8N)^{-1/4}`
    decoder-only (M layers)   :math:`(2M)^{1/4}`               :math:`(8M)^{-1/4}`
    enc-dec, encoder          :math:`0.81 (N^4 M)^{1/16}`      :math:`0.87 (N^4 M)^{-1/16}`
    enc-dec, decoder          :math:`(3M)^{1/4}`               :math:`(12M)^{-1/4}`
    ========================= ================================ ==================================

    ``decoder_layers=None`` means a single stack (encoder-only or decoder-only: same formula) of
    ``n_layers`` layers; for an encoder-decoder pass ``n_layers=N`` (encoder),
    ``decoder_layers=M`` and ``part``.

    Args:
      n_layers: layers of the (encoder or only) stack.
      decoder_layers: decoder layers of an encoder-decoder model, or None.
      part: ``"encoder"`` or ``"decoder"`` (which stack of an encoder-decoder).

    Returns:
      :math:`\alpha` as a float; the model uses it in its forward pass, no initializer does.

    Examples:
      >>> import jinit
      >>> round(jinit.deepnorm_alpha(18), 4)  # (2 * 18) ** 0.25
      2.4495
      >>> round(jinit.deepnorm_beta(18), 4)  # (8 * 18) ** -0.25
      0.2887

    References:
      Wang et al. 2022, 'DeepNet: scaling transformers to 1,000 layers', arXiv:2203.00555.
    """
    return _deepnorm_constants("deepnorm_alpha", n_layers, decoder_layers, part)[0]


@public("deepnorm_beta")
def deepnorm_beta(
    n_layers: int, decoder_layers: int | None = None, *, part: Part = "encoder"
) -> float:
    r"""DeepNorm's initialization gain :math:`\beta` (see :func:`deepnorm`).

    ========================= ================================ ==================================
    architecture              :math:`\alpha`                   :math:`\beta`
    ========================= ================================ ==================================
    encoder-only (N layers)   :math:`(2N)^{1/4}`               :math:`(8N)^{-1/4}`
    decoder-only (M layers)   :math:`(2M)^{1/4}`               :math:`(8M)^{-1/4}`
    enc-dec, encoder          :math:`0.81 (N^4 M)^{1/16}`      :math:`0.87 (N^4 M)^{-1/16}`
    enc-dec, decoder          :math:`(3M)^{1/4}`               :math:`(12M)^{-1/4}`
    ========================= ================================ ==================================

    ``decoder_layers=None`` means a single stack (encoder-only or decoder-only: same formula) of
    ``n_layers`` layers; for an encoder-decoder pass ``n_layers=N`` (encoder),
    ``decoder_layers=M`` and ``part``.

    Args:
      n_layers: layers of the (encoder or only) stack.
      decoder_layers: decoder layers of an encoder-decoder model, or None.
      part: ``"encoder"`` or ``"decoder"``.

    Returns:
      :math:`\beta` as a float.

    Examples:
      >>> import jinit
      >>> round(jinit.deepnorm_beta(6, decoder_layers=6, part="decoder"), 4)  # (12 * 6) ** -0.25
      0.3433

    References:
      Wang et al. 2022, arXiv:2203.00555.
    """
    return _deepnorm_constants("deepnorm_beta", n_layers, decoder_layers, part)[1]


@factory()
def deepnorm(
    n_layers: int,
    decoder_layers: int | None = None,
    *,
    part: Part = "encoder",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
) -> Initializer:
    r"""DeepNorm initialization: ``xavier_normal_(w, gain=beta)`` (torch's, untruncated).

    ========================= ================================ ==================================
    architecture              :math:`\alpha`                   :math:`\beta`
    ========================= ================================ ==================================
    encoder-only (N layers)   :math:`(2N)^{1/4}`               :math:`(8N)^{-1/4}`
    decoder-only (M layers)   :math:`(2M)^{1/4}`               :math:`(8M)^{-1/4}`
    enc-dec, encoder          :math:`0.81 (N^4 M)^{1/16}`      :math:`0.87 (N^4 M)^{-1/16}`
    enc-dec, decoder          :math:`(3M)^{1/4}`               :math:`(12M)^{-1/4}`
    ========================= ================================ ==================================

    ``decoder_layers=None`` means a single stack (encoder-only or decoder-only: same formula) of
    ``n_layers`` layers; for an encoder-decoder pass ``n_layers=N`` (encoder),
    ``decoder_layers=M`` and ``part``.

    The paper initialises the FFN weights and the attention value and output projections with
    Xavier normal of gain :math:`\beta`, and the query and key projections with gain 1
    (:func:`jinit.torch.xavier_normal`); the model must also apply :math:`\alpha`
    (:func:`deepnorm_alpha`) to the residual before each post-LayerNorm.

    Args:
      n_layers: layers of the (encoder or only) stack.
      decoder_layers: decoder layers of an encoder-decoder model, or None.
      part: ``"encoder"`` or ``"decoder"``.
      in_axis: fan-in axis or axes.
      out_axis: fan-out axis or axes.
      batch_axis: axes that count in neither fan.
      dtype: the initializer's default dtype.

    Returns:
      An initializer: :math:`N(0, \beta^2 \cdot 2/(\text{fan\_in} + \text{fan\_out}))`.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.deepnorm(18)(jax.random.key(0), (512, 512))
      >>> round(float(w.std() * 512 ** 0.5 / jinit.deepnorm_beta(18)), 2)
      1.0

    References:
      Wang et al. 2022, 'DeepNet: scaling transformers to 1,000 layers', arXiv:2203.00555.
    """
    beta = _deepnorm_constants("deepnorm", n_layers, decoder_layers, part)[1]
    return _torch.xavier_normal(beta, in_axis, out_axis, batch_axis, dtype)
