"""Equinox's own initialisation of its layers, as one rule set resolved per parameter.

Each of equinox's layers makes its parameters in ``__init__`` (equinox 0.13.8, checked against
its source): ``Linear``, ``Conv*``, ``ConvTranspose*`` weights and biases
``jax.random.uniform(key, shape, dtype, -lim, lim)`` with ``lim = 1 / sqrt(fan_in)``,
``GRUCell``/``LSTMCell`` the same with ``lim = sqrt(1 / hidden_size)``, ``Embedding``
``jax.random.normal``, the norms ones and zeros, ``BatchNorm``'s running statistics zeros and
ones, ``PReLU``'s slope 0.25. Two compute from their layer's other parameters, so they are
finished on the built model (:func:`jinit._tree.equinox.from_layer`): ``WeightNorm``'s ``g``
is its weight's norm, ``SpectralNorm``'s ``u``, ``v`` are normal draws refined by 15 power
iterations on the weight. :func:`defaults` gives every parameter the same formula under its
path key; the layer (read from the module, not guessed from the name) gives each its ``lim``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jinit import _checks
from jinit._catalog.basic import constant, normal, ones, zeros
from jinit._core import formula_init, make_init
from jinit._rng import distributions as _distributions
from jinit._rng import draws as _draws
from jinit._rng.formula import Formula
from jinit._tree import equinox as _eqx_tree
from jinit._typing import DTypeLike, Initializer, public
from jinit._value import factory


@factory("equinox.uniform")
def uniform(lim: float, dtype: DTypeLike | None = None) -> Initializer:
    r"""Equinox's default initialisation: ``jax.random.uniform(key, shape, dtype, -lim, lim)``.

    The draw equinox's ``Linear``, ``Conv*``, ``ConvTranspose*``, ``GRUCell`` and ``LSTMCell``
    make for their weights and biases (real dtypes): :math:`U[-\text{lim}, \text{lim})`, the
    same bits as equinox's for the same key in float32. :func:`jinit.equinox.defaults` gives
    each such parameter its layer's ``lim``.

    Args:
      lim: the bound, ``>= 0``; may be traced (a sweep under ``jit``/``vmap``: the same bits
        as the number, each leaf drawn on its own).
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit.equinox
      >>> w = jinit.equinox.uniform(0.125)(jax.random.key(0), (64, 64))
      >>> bool(abs(w).max() <= 0.125), round(float(w.std() * 3 ** 0.5 / 0.125), 1)
      (True, 1.0)

    References:
      ``equinox.nn._misc.default_init`` (equinox 0.13.8).
    """
    where = "equinox.uniform"
    lim = _checks.check_real_or_traced(where, "lim", lim, nonnegative=True)
    _checks.check_factory_dtype(where, dtype, allow_complex=False)
    if _checks.traced(lim):
        # The bounds are the draw's own arguments (jax.random.uniform's arithmetic, equinox's
        # bits), which a grouped draw takes as numbers: a traced `lim` is drawn leaf by leaf,
        # by the same kernel with the bounds as its arguments (the concrete call's bits).
        def body(key: Any, shape: Any, dtype: Any, out_sharding: Any) -> jax.Array:
            return _distributions.uniform(key, shape, dtype, -lim, lim, out_sharding)

        return make_init(where, body, dtype, allow_complex=False, traced=True)
    formula = Formula(_draws.uniform(-lim, lim))  # (a factor of 1: the draw as it is)
    return formula_init(where, lambda shape, dtype: formula, dtype, allow_complex=False)


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
_DERIVED = ("PReLU", "WeightNorm", "SpectralNorm")
_KNOWN = {**dict.fromkeys(_UNIFORM), "Embedding": None, **dict.fromkeys(_NORMS + _DERIVED)}
# BatchNorm's running statistics ``(mean, var)`` by mode: ``jnp.empty`` (zeros in jax) for
# "ema", zeros and ones for "batch".
_STATS = {"ema_state_index": (zeros, zeros), "batch_state_index": (zeros, ones)}
_PRELU_ALPHA = 0.25  # equinox's default ``init_alpha``


@public("equinox.EquinoxDefaults")
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
        return uniform(lim), f"{kind} {field}, U(±{text})"
    if kind == "Embedding" and field == "weight":
        return normal(1.0), "Embedding weight, N(0, 1)"
    if kind in _NORMS and field in ("weight", "bias"):
        return (ones, f"{kind} weight, 1") if field == "weight" else (zeros, f"{kind} bias, 0")
    index = path.rpartition("/")[2]  # of a state's (first, second) array
    if kind == "BatchNorm" and field in _STATS and index in ("0", "1"):
        init = _STATS[field][int(index)]
        return init, f"BatchNorm running {('mean', 'var')[int(index)]}, {int(init is ones)}"
    if kind == "PReLU" and field == "negative_slope":
        slope = _eqx_tree.from_layer(constant(_PRELU_ALPHA), _prelu_slope, "constant(0.25)")
        return slope, "PReLU negative_slope, 0.25 (init_alpha's default)"
    if kind == "WeightNorm" and field == "g":
        g = _eqx_tree.from_layer(ones, _weight_norm_g, "norm(weight)")
        return g, "WeightNorm g, the built weight's norm"
    if kind == "SpectralNorm" and field == "uv_index" and index in ("0", "1"):
        what = "u" if index == "0" else "v"
        init = _eqx_tree.from_layer(normal(1.0), _spectral_uv, "normal, power iterations")
        return init, f"SpectralNorm {what}, N(0, 1) then 15 power iterations"
    layer = "no layer" if owner is None else type(owner.layer).__name__
    raise ValueError(
        f"`{where}`: `jinit.equinox.defaults()` has no equinox default for the parameter "
        f"{path!r} of shape {shape} (field {field!r} of {layer}); it knows "
        f"{', '.join(sorted(_KNOWN))}. Put a rule for it before the rule set."
    )


# The values equinox's constructors compute from the built layer (``Init.finish``), each
# one jitted function per shape. ``depth``: the leading stack axes of an ``eqx.filter_vmap``-ed
# layer, computed per layer.


def _whole(x: Any) -> Any:
    """``x`` replicated over its mesh when it is split: the computation then runs as on one
    device, so the values do not depend on the mesh (a split reduction may round otherwise)."""
    s = getattr(x, "sharding", None)
    if isinstance(x, jax.core.Tracer) or not isinstance(s, jax.sharding.NamedSharding):
        return x
    if all(p is None for p in s.spec):
        return x
    return jax.device_put(x, jax.sharding.NamedSharding(s.mesh, jax.P()))


def _prelu_slope(layer: Any, path: str, value: Any, abstract: Any) -> Any:
    """``jnp.asarray(0.25)`` is weakly typed (a bfloat16 input stays bfloat16): so is ours."""
    weak = jnp.full(abstract.shape, _PRELU_ALPHA)
    return weak if abstract.weak_type and weak.dtype == abstract.dtype else value


def _g_shape(shape: tuple[int, ...], depth: int, axis: int | None) -> tuple[int, ...] | None:
    """The shape of ``g`` for a weight of ``shape`` with ``depth`` stack axes (None: none)."""
    inner = shape[depth:]
    if axis is None:
        return shape[:depth] + (1,) * len(inner)
    if not -len(inner) <= axis < len(inner):
        return None
    a = axis % len(inner)
    return shape[:depth] + tuple(n if i == a else 1 for i, n in enumerate(inner))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _norm_except_axis(weight: Any, axis: int | None, depth: int) -> Any:
    norm = functools.partial(jnp.linalg.norm, keepdims=True)
    one = norm if axis is None else jax.vmap(norm, in_axes=axis, out_axes=axis)
    for _ in range(depth):
        one = jax.vmap(one)
    return one(weight)


def _weight_norm_g(layer: Any, path: str, value: Any, abstract: Any) -> Any:
    """``WeightNorm.__init__``: ``g`` is the norm of the (built) weight over every axis but
    ``axis``, so the wrapped layer starts as the bare one."""
    weight = getattr(layer.layer, layer.weight_name)
    shape = tuple(weight.shape)
    depth = next(
        (d for d in range(len(shape)) if _g_shape(shape, d, layer.axis) == value.shape), None
    )
    if depth is None:
        raise ValueError(
            f"`jinit.equinox.defaults()`: the WeightNorm parameter {path!r} of shape "
            f"{value.shape} is not the norm of its weight {layer.weight_name!r} of shape {shape} "
            f"over every axis but {layer.axis}; put a rule for it before the rule set."
        )
    return _norm_except_axis(_whole(weight), layer.axis, depth).astype(abstract.dtype)


def _power_iteration(weight: Any, u: Any, v: Any, eps: float) -> tuple[Any, Any]:
    """One step of ``equinox.nn.SpectralNorm``'s power iteration (equinox 0.13.8)."""
    u = weight @ v
    u = u / jnp.maximum(eps, jnp.sqrt(jnp.sum(u**2)))
    v = weight.T @ u
    v = v / jnp.maximum(eps, jnp.sqrt(jnp.sum(v**2)))
    return u, v


@functools.partial(jax.jit, static_argnums=(3, 4))
def _power_iterations(weight: Any, u: Any, v: Any, eps: float, depth: int) -> tuple[Any, Any]:
    def one(w: Any, u: Any, v: Any) -> tuple[Any, Any]:
        w = jnp.reshape(w, (w.shape[0], -1))
        for _ in range(15):  # as `SpectralNorm.__init__`
            u, v = _power_iteration(w, u, v, eps)
        return u, v

    for _ in range(depth):
        one = jax.vmap(one)
    return one(weight, u, v)


def _spectral_uv(layer: Any, path: str, value: Any, abstract: Any) -> Any:
    """``SpectralNorm.__init__``: ``u``, ``v`` drawn N(0, 1), then 15 power iterations on the
    (built) weight reshaped to ``(out, -1)``. Both start from both draws (each is computed from
    the built model before either is put in)."""
    weight = getattr(layer.layer, layer.weight_name)
    u0, v0 = layer.uv_index.init
    depth, shape = u0.ndim - 1, tuple(weight.shape)
    fits = v0.shape == (*u0.shape[:-1], math.prod(shape[depth + 1 :]))
    if shape[: depth + 1] != u0.shape or not fits:
        raise ValueError(
            f"`jinit.equinox.defaults()`: the SpectralNorm state {path!r} has shapes "
            f"{u0.shape}, {v0.shape}, which do not fit its weight {layer.weight_name!r} of "
            f"shape {shape}; put a rule for it before the rule set."
        )
    whole = (_whole(weight), _whole(u0), _whole(v0))
    u, v = _power_iterations(*whole, float(layer.eps), depth)
    return u if path.rpartition("/")[2] == "0" else v


@public("equinox.defaults")
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
    - ``LayerNorm``, ``RMSNorm``, ``GroupNorm``, ``BatchNorm`` weight 1 and bias 0;
    - ``BatchNorm`` running statistics: mean 0 and variance 0 (``mode="ema"``, where equinox
      writes ``jnp.empty``, zeros in jax, and overwrites them on the first call) or 1
      (``mode="batch"``); its first-call flag and step counter are not parameters and take
      equinox's ``True`` and ``0`` whatever the rules;
    - ``PReLU`` ``negative_slope``: 0.25, the default ``init_alpha`` (an abstract model does
      not say which ``init_alpha`` was passed: put a rule first for another), weakly typed
      when equinox's is;
    - ``WeightNorm`` ``g``: the norm of the built weight over every axis but ``axis``, as
      equinox computes it, so the wrapped layer starts as the bare one;
    - ``SpectralNorm`` ``u``, ``v`` (the state in ``uv_index``): :math:`N(0, 1)` draws, then
      15 power iterations on the built weight, as equinox does; their law is equinox's, the
      draws are jinit's (from their paths' keys), not equinox's bits. (``g``, ``u`` and ``v``
      are computed after the build, the weight gathered whole when it is split, so they do not
      depend on the mesh; inside a ``jax.jit`` of the whole call XLA may fuse them with the
      draw and round their last bit differently.)

    ``MLP`` and ``MultiheadAttention`` are made of ``Linear`` layers. The layer is read from the
    model, so the bound comes from the layer's own ``in_features`` (also for a bias, or a layer
    stacked by ``eqx.filter_vmap``). The values have equinox's distribution, not its values:
    equinox splits one key through its constructors, jinit derives each parameter's key from
    its path. In float32 the uniform and normal draws are equinox's to the bit for a given key.

    A stateful model (``BatchNorm``, ``SpectralNorm``) comes back holding its initial state, as
    equinox's constructor returns it: split it as ``eqx.nn.make_with_state`` does, e.g.
    ``model, state = eqx.nn.make_with_state(jinit.equinox.init_eqx)(abstract, key, rules)``.

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
      ``Embedding``, ``LayerNorm``, ``RMSNorm``, ``GroupNorm``, ``BatchNorm``, ``PReLU``,
      ``WeightNorm``, ``SpectralNorm`` ``__init__`` (equinox 0.13.8).
    """
    return EquinoxDefaults()
