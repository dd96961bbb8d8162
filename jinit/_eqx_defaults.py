"""Equinox's own initialisation of its layers, as one rule set resolved per parameter.

Each of equinox's layers draws its parameters in ``__init__`` (equinox 0.13.8, checked against
its source): ``Linear``, ``Conv*``, ``ConvTranspose*`` weights and biases
``jax.random.uniform(key, shape, dtype, -lim, lim)`` with ``lim = 1 / sqrt(fan_in)``,
``GRUCell``/``LSTMCell`` the same with ``lim = sqrt(1 / hidden_size)``, ``Embedding``
``jax.random.normal``, the norms ones and zeros. :func:`defaults` gives every parameter the same
formula under its path key; the layer (read from the module, not guessed from the name) gives
each its ``lim``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jinit import _checks
from jinit._basic import normal, ones, zeros
from jinit._core import make_init
from jinit._rng import samplers as _samplers
from jinit._rng import sampling as _sampling
from jinit._tree import equinox as _eqx_tree
from jinit._typing import DTypeLike, Initializer, KeyArray, OutSharding


def equinox_uniform(lim: float, dtype: DTypeLike | None = None) -> Initializer:
    """``jax.random.uniform(key, shape, dtype, -lim, lim)``: equinox's ``default_init`` (real
    dtypes), the same bits for the same key in float32."""
    where = "equinox_uniform"
    lim = _checks.check_real(where, "lim", lim, nonnegative=True)
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    draw = _sampling.uniform(-lim, lim)

    def body(key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding):
        return _samplers.uniform(key, shape, dtype, -lim, lim, out_sharding).astype(dtype)

    def sampling(shape: tuple[int, ...], dtype: np.dtype) -> _sampling.Sampling:
        return _sampling.Sampling(draw, lambda u: u.astype(dtype))

    return make_init(
        where,
        body,
        dtype,
        allow_complex=False,
        target=lambda s: (None, None, 0.0, lim / math.sqrt(3)),
        sampling=sampling,
    )


def _linear_lim(layer: Any) -> tuple[float, str]:
    fan = 1 if layer.in_features == "scalar" else layer.in_features
    return (1.0 if fan == 0 else 1 / math.sqrt(fan)), f"1/sqrt({fan})"


def _conv_lim(layer: Any) -> tuple[float, str]:
    fan = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
    return 1 / math.sqrt(fan), f"1/sqrt({fan})"


def _cell_lim(layer: Any) -> tuple[float, str]:
    return math.sqrt(1 / layer.hidden_size), f"sqrt(1/{layer.hidden_size})"


_UNIFORM = {
    "Linear": (_linear_lim, ("weight", "bias")),
    "Conv": (_conv_lim, ("weight", "bias")),
    "ConvTranspose": (_conv_lim, ("weight", "bias")),
    "GRUCell": (_cell_lim, ("weight_ih", "weight_hh", "bias", "bias_n")),
    "LSTMCell": (_cell_lim, ("weight_ih", "weight_hh", "bias")),
}
_NORMS = ("LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm")
_KNOWN = {**dict.fromkeys(_UNIFORM), "Embedding": None, **dict.fromkeys(_NORMS)}


@dataclasses.dataclass(frozen=True, eq=False)
class EquinoxDefaults:
    """The rule set :func:`defaults` returns (see there); bound to a model's layers by
    :func:`jinit.equinox.init_eqx`, :func:`jinit.init_tree` and :func:`jinit.explain`."""

    owners: Mapping[str, _eqx_tree.Owner] | None = None

    def __repr__(self) -> str:
        return "jinit.equinox.defaults()"

    def bind_layers(self, owners: Mapping[str, _eqx_tree.Owner]) -> EquinoxDefaults:
        return EquinoxDefaults(owners)

    def expand(
        self,
        params: Sequence[tuple[str, tuple[int, ...]]],
        taken: Callable[[str], bool],
        where: str = "defaults",
    ) -> list[tuple[re.Pattern, Initializer, str]]:
        """One exact-path rule per parameter not ``taken`` by an earlier rule."""
        owners = _eqx_tree.owners_required(self.owners, "jinit.equinox.defaults()", where)
        out = []
        for path, shape in params:
            if taken(path):
                continue
            init, what = _rule(path, shape, owners.get(path), where)
            out.append((re.compile(rf"\A{re.escape(path)}\Z"), init, f"equinox: {what}"))
        return out


def _rule(
    path: str, shape: tuple[int, ...], owner: _eqx_tree.Owner | None, where: str
) -> tuple[Initializer, str]:
    kind = None if owner is None else _eqx_tree.layer_kind(owner.layer, _KNOWN)
    field = None if owner is None else owner.field
    if kind in _UNIFORM and field in _UNIFORM[kind][1]:
        lim_of, _ = _UNIFORM[kind]
        lim, text = lim_of(owner.layer)  # type: ignore[union-attr]
        return equinox_uniform(lim), f"{kind} {field}, U(±{text})"
    if kind == "Embedding" and field == "weight":
        return normal(1.0), "Embedding weight, N(0, 1)"
    if kind in _NORMS and field in ("weight", "bias"):
        return (ones, f"{kind} weight, 1") if field == "weight" else (zeros, f"{kind} bias, 0")
    layer = "no layer" if owner is None else type(owner.layer).__name__
    raise ValueError(
        f"`{where}`: `jinit.equinox.defaults()` has no equinox default for the parameter "
        f"{path!r} of shape {shape} (field {field!r} of {layer}); it knows "
        f"{', '.join(sorted(_KNOWN))}. Put a rule for it before the rule set."
    )


def defaults() -> EquinoxDefaults:
    r"""A rule set giving an equinox model equinox's own initialisation, under jinit's keys.

    Use it as ``rules`` (or as the last entry of a list of rules, after your own) in
    :func:`jinit.equinox.init_eqx`. Each parameter gets the formula its equinox layer's
    ``__init__`` uses (equinox 0.13.8):

    - ``Linear`` weight and bias: ``jax.random.uniform(key, shape, dtype, -lim, lim)`` with
      :math:`\text{lim} = 1/\sqrt{\text{in\_features}}` (1 for ``in_features=0``);
    - ``Conv*`` and ``ConvTranspose*`` weight and bias: the same, with
      :math:`\text{lim} = 1/\sqrt{\text{in\_channels} / \text{groups} \cdot
      \prod \text{kernel\_size}}`;
    - ``GRUCell``/``LSTMCell`` weights and biases: the same, :math:`\sqrt{1/\text{hidden}}`;
    - ``Embedding`` weight: :math:`N(0, 1)`;
    - ``LayerNorm``, ``RMSNorm``, ``GroupNorm``, ``BatchNorm`` weight 1 and bias 0.

    ``MLP`` and ``MultiheadAttention`` are made of ``Linear`` layers. The layer is read from the
    model, so the bound comes from the layer's own ``in_features`` (also for a bias, or a layer
    stacked by ``eqx.filter_vmap``). The values have equinox's distribution, not its values:
    equinox splits one key through its constructors, jinit derives each parameter's key from
    its path. In float32 the draw is equinox's to the bit for a given key.

    A parameter it does not know raises naming its path and layer: put a rule for it first.

    Returns:
      A rule set.

    Examples:
      >>> import jax, equinox as eqx, jinit, jinit.equinox
      >>> mlp = eqx.filter_eval_shape(eqx.nn.MLP, 400, 10, 64, 2, key=jax.random.key(0))
      >>> model = jinit.equinox.init_eqx(mlp, 0, jinit.equinox.defaults())
      >>> bool(abs(model.layers[0].weight).max() <= 1 / 400 ** 0.5)
      True
      >>> print(jinit.explain(mlp, jinit.equinox.defaults())[0].rule)
      equinox: Linear weight, U(±1/sqrt(400))

    References:
      ``equinox.nn.Linear``, ``Conv``, ``ConvTranspose``, ``GRUCell``, ``LSTMCell``,
      ``Embedding``, ``LayerNorm``, ``RMSNorm``, ``GroupNorm`` ``__init__`` (equinox 0.13.8).
    """
    return EquinoxDefaults()
