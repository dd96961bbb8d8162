"""jinit in every init slot of Flax's modules, nnx and linen, against Flax's own initializers.

Each module is built twice from the same seed, once with a jinit initializer in one slot and once
with Flax's initializer of the same name (``flax.nnx.initializers``, which is
``jax.nn.initializers`` plus ``zeros_init``/``ones_init``): every parameter must be the same bits
in float32, where jinit claims jax's bits. Where Flax's initializer refuses the slot (an
orthogonal bias, a random ``scale_init`` that ``nnx.WeightNorm`` hands an ``nnx.RngStream``),
jinit must refuse it too. In bfloat16 jinit's values are its float32 values rounded once.

What each module passes to the initializer (Flax 0.12.8):

- nnx ``Linear``, ``Conv``, ``ConvTranspose``, ``Einsum``, ``LoRA``, ``Embed``, the norms and the
  recurrent cells: a typed key (``rngs.params()``), the parameter's shape and ``param_dtype``.
- nnx ``LinearGeneral`` (hence ``MultiHeadAttention``'s query/key/value/out): the kernel's shape
  flattened to 2-D (and the bias's to 1-D); the result is reshaped.
- nnx ``WeightNorm``: an ``nnx.RngStream`` (not a key) and no dtype.
- nnx cells' ``initialize_carry(..., carry_init=...)``: ``carry_init(rngs(), shape, param_dtype)``
  with ``rngs`` its ``carry`` stream.
- linen: ``self.param(name, init, shape, param_dtype)``, i.e. the key that ``Module.init`` was
  given folded per parameter (typed or legacy ``uint32[2]``, as given).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit

F = nnx.initializers

# name -> (jinit's initializer, Flax's initializer of the same name)
INITS: dict[str, tuple[Any, Any]] = {
    "zeros": (jinit.zeros, F.zeros_init()),
    "ones": (jinit.ones, F.ones_init()),
    "constant": (jinit.constant(0.5), F.constant(0.5)),
    "normal": (jinit.normal(0.02), F.normal(0.02)),
    "uniform": (jinit.uniform(0.1), F.uniform(0.1)),
    "truncated_normal": (jinit.truncated_normal(0.02), F.truncated_normal(0.02)),
    # The named schemes are variance_scaling (tests/test_jax_parity.py has every one): one per
    # distribution, Flax's default kernel init first.
    "lecun_normal": (jinit.lecun_normal(), F.lecun_normal()),
    "glorot_uniform": (jinit.glorot_uniform(), F.glorot_uniform()),
    "variance_scaling": (
        jinit.variance_scaling(2.0, "fan_avg", "normal"),
        F.variance_scaling(2.0, "fan_avg", "normal"),
    ),
    "orthogonal": (jinit.orthogonal(), F.orthogonal()),
    "delta_orthogonal": (jinit.delta_orthogonal(), F.delta_orthogonal()),
}

Build = Callable[[dict[str, Any], Any], dict[str, jax.Array]]


def _flat(tree: Any) -> dict[str, jax.Array]:
    return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(tree)}


def _nnx(make: Callable[..., nnx.Module]) -> Build:
    """Builds ``make(**slots, param_dtype=..., rngs=nnx.Rngs(0))``; returns its parameters."""

    def build(slots: dict[str, Any], dtype: Any) -> dict[str, jax.Array]:
        module = make(**slots, param_dtype=dtype, rngs=nnx.Rngs(0))
        return _flat(nnx.state(module, nnx.Param))

    return build


def _nnx_weight_norm(slots: dict[str, Any], dtype: Any) -> dict[str, jax.Array]:
    # WeightNorm keeps its scales as plain arrays (nnx.data), not as Params.
    layer = nnx.Linear(6, 4, param_dtype=dtype, rngs=nnx.Rngs(1))
    module = nnx.WeightNorm(layer, **slots, param_dtype=dtype, rngs=nnx.Rngs(0))
    return _flat(module.scales)


def _nnx_cell(make: Callable[..., nnx.Module]) -> Build:
    """A recurrent cell's parameters and the carry its ``initialize_carry`` makes."""

    def build(slots: dict[str, Any], dtype: Any) -> dict[str, jax.Array]:
        # nnx takes the carry's initializer in initialize_carry (in __init__ it warns).
        slots = dict(slots)
        carry_init = slots.pop("carry_init", None)
        cell = make(**slots, param_dtype=dtype, rngs=nnx.Rngs(0))
        carry = cell.initialize_carry((2, 6), nnx.Rngs(3), carry_init=carry_init)
        return {**_flat(nnx.state(cell, nnx.Param)), **_flat({"carry": carry})}

    return build


def _linen(make: Callable[..., nn.Module], *inputs: Any, key: Any = None) -> Build:
    """``make(**slots, param_dtype=...).init(key, *inputs)``'s parameters."""

    def build(slots: dict[str, Any], dtype: Any) -> dict[str, jax.Array]:
        k = jax.random.key(0) if key is None else key
        return _flat(make(**slots, param_dtype=dtype).init(k, *inputs)["params"])

    return build


def _linen_cell(make: Callable[..., nn.Module]) -> Build:
    def build(slots: dict[str, Any], dtype: Any) -> dict[str, jax.Array]:
        cell = make(**slots, param_dtype=dtype)
        x = jnp.ones((2, 6))
        carry = cell.initialize_carry(jax.random.key(3), x.shape)
        params = cell.init(jax.random.key(0), carry, x)["params"]
        return {**_flat(params), **_flat({"carry": carry})}

    return build


X2 = jnp.ones((2, 6))
X4 = jnp.ones((1, 8, 8, 4))
SEQ = jnp.ones((2, 5, 8))
IDS = jnp.zeros((2, 3), jnp.int32)

# module -> (build, its init slots)
NORM = ("scale_init", "bias_init")
DENSE = ("kernel_init", "bias_init")
CELL = ("kernel_init", "recurrent_kernel_init", "bias_init", "carry_init")
MHA = ("kernel_init", "out_kernel_init", "bias_init", "out_bias_init")
MODULES: dict[str, tuple[Build, tuple[str, ...]]] = {
    "nnx.Linear": (_nnx(lambda **k: nnx.Linear(6, 8, **k)), DENSE),
    "nnx.LinearGeneral": (_nnx(lambda **k: nnx.LinearGeneral(6, (2, 4), **k)), DENSE),
    "nnx.Einsum": (_nnx(lambda **k: nnx.Einsum("ab,bcd->acd", (6, 2, 4), (2, 4), **k)), DENSE),
    "nnx.Conv": (_nnx(lambda **k: nnx.Conv(4, 8, (3, 3), **k)), DENSE),
    "nnx.ConvTranspose": (_nnx(lambda **k: nnx.ConvTranspose(4, 8, (3, 3), **k)), DENSE),
    "nnx.Embed": (_nnx(lambda **k: nnx.Embed(10, 4, **k)), ("embedding_init",)),
    "nnx.MultiHeadAttention": (
        _nnx(lambda **k: nnx.MultiHeadAttention(2, 8, qkv_features=8, decode=False, **k)),
        MHA,
    ),
    "nnx.LoRA": (_nnx(lambda **k: nnx.LoRA(6, 2, 8, **k)), ("a_initializer", "b_initializer")),
    "nnx.LoRALinear": (
        _nnx(lambda **k: nnx.LoRALinear(6, 8, lora_rank=2, **k)),
        ("a_initializer", "b_initializer", "kernel_init", "bias_init"),
    ),
    "nnx.BatchNorm": (_nnx(lambda **k: nnx.BatchNorm(6, **k)), NORM),
    "nnx.LayerNorm": (_nnx(lambda **k: nnx.LayerNorm(6, **k)), NORM),
    "nnx.RMSNorm": (_nnx(lambda **k: nnx.RMSNorm(6, **k)), ("scale_init",)),
    "nnx.GroupNorm": (_nnx(lambda **k: nnx.GroupNorm(6, num_groups=2, **k)), NORM),
    "nnx.InstanceNorm": (_nnx(lambda **k: nnx.InstanceNorm(6, **k)), NORM),
    "nnx.WeightNorm": (_nnx_weight_norm, ("scale_init",)),
    "nnx.LSTMCell": (_nnx_cell(lambda **k: nnx.LSTMCell(6, 4, **k)), CELL),
    "nnx.OptimizedLSTMCell": (_nnx_cell(lambda **k: nnx.OptimizedLSTMCell(6, 4, **k)), CELL),
    "nnx.GRUCell": (_nnx_cell(lambda **k: nnx.GRUCell(6, 4, **k)), CELL),
    "nnx.SimpleCell": (_nnx_cell(lambda **k: nnx.SimpleCell(6, 4, **k)), CELL),
    "linen.Dense": (_linen(lambda **k: nn.Dense(8, **k), X2), DENSE),
    "linen.Dense(legacy key)": (
        _linen(lambda **k: nn.Dense(8, **k), X2, key=jax.random.PRNGKey(0)),
        DENSE,
    ),
    "linen.DenseGeneral": (_linen(lambda **k: nn.DenseGeneral((2, 4), **k), X2), DENSE),
    "linen.Einsum": (_linen(lambda **k: nn.Einsum((6, 2, 4), "ab,bcd->acd", **k), X2), DENSE),
    "linen.Conv": (_linen(lambda **k: nn.Conv(8, (3, 3), **k), X4), DENSE),
    "linen.ConvTranspose": (_linen(lambda **k: nn.ConvTranspose(8, (3, 3), **k), X4), DENSE),
    "linen.ConvLocal": (_linen(lambda **k: nn.ConvLocal(8, (3, 3), **k), X4), DENSE),
    "linen.Embed": (_linen(lambda **k: nn.Embed(10, 4, **k), IDS), ("embedding_init",)),
    "linen.MultiHeadDotProductAttention": (
        _linen(lambda **k: nn.MultiHeadDotProductAttention(2, qkv_features=8, **k), SEQ),
        MHA,
    ),
    "linen.BatchNorm": (_linen(lambda **k: nn.BatchNorm(True, **k), X2), NORM),
    "linen.LayerNorm": (_linen(lambda **k: nn.LayerNorm(**k), X2), NORM),
    "linen.RMSNorm": (_linen(lambda **k: nn.RMSNorm(**k), X2), ("scale_init",)),
    "linen.GroupNorm": (_linen(lambda **k: nn.GroupNorm(num_groups=2, **k), X2), NORM),
    "linen.InstanceNorm": (_linen(lambda **k: nn.InstanceNorm(**k), X2), NORM),
    "linen.WeightNorm": (_linen(lambda **k: nn.WeightNorm(nn.Dense(4), **k), X2), ("scale_init",)),
    "linen.LSTMCell": (_linen_cell(lambda **k: nn.LSTMCell(4, **k)), CELL),
    "linen.OptimizedLSTMCell": (_linen_cell(lambda **k: nn.OptimizedLSTMCell(4, **k)), CELL),
    "linen.GRUCell": (_linen_cell(lambda **k: nn.GRUCell(4, **k)), CELL),
    "linen.SimpleCell": (_linen_cell(lambda **k: nn.SimpleCell(4, **k)), CELL),
}

SLOTS = [(m, s) for m, (_, slots) in MODULES.items() for s in slots]


class _Spy:
    """An initializer that records each call Flax makes to the one it wraps."""

    def __init__(self, init: Any) -> None:
        self.init, self.calls = init, []

    def __call__(self, key: Any, shape: Any, dtype: Any = None) -> jax.Array:
        out = self.init(key, shape) if dtype is None else self.init(key, shape, dtype)
        self.calls.append((key, shape, dtype, out))
        return out


def _build(module: str, slot: str, init: Any, dtype: Any) -> dict[str, jax.Array]:
    build, _ = MODULES[module]
    return build({slot: init}, dtype)


@functools.cache
def _refused(module: str, slot: str, name: str, dtype: Any = jnp.float32) -> bool:
    """Whether the module fails with Flax's initializer ``name`` in this slot (an orthogonal
    bias, a random init given an RngStream; in bfloat16, jax's orthogonal anywhere in it)."""
    try:
        _build(module, slot, INITS[name][1], dtype)
    except Exception:
        return True
    return False


# Flax's initializers under `jit`: the reference for jinit's bits (jax's eager bits differ from
# its jitted ones in the last place, tests/test_jax_parity.py; jinit always gives the jitted ones).
JITTED = {name: jax.jit(theirs, static_argnums=(1, 2)) for name, (_, theirs) in INITS.items()}


def _reference(name: str, key: Any, shape: Any, dtype: Any) -> jax.Array:
    theirs = INITS[name][1]
    if not isinstance(key, jax.Array):  # nnx.WeightNorm's RngStream: a deterministic init
        return theirs(key, shape) if dtype is None else theirs(key, shape, dtype)
    return JITTED[name](key, tuple(shape), jnp.float32 if dtype is None else dtype)


@pytest.mark.parametrize("name", list(INITS))
@pytest.mark.parametrize(("module", "slot"), SLOTS, ids=[f"{m}-{s}" for m, s in SLOTS])
def test_jinit_in_a_flax_slot_gives_flax_bits(module, slot, name):
    """float32: every call the module makes to a jinit initializer returns Flax's initializer's
    bits for the same arguments, and the module holds that value; a slot Flax's initializer
    refuses (an orthogonal bias, a random init given an RngStream), jinit's refuses too."""
    ours = INITS[name][0]
    if _refused(module, slot, name):
        with pytest.raises((TypeError, ValueError)):
            _build(module, slot, ours, jnp.float32)
        return
    spy = _Spy(ours)
    params = _build(module, slot, spy, jnp.float32)
    assert spy.calls, f"{module} never called its {slot}"
    for key, shape, dtype, out in spy.calls:
        want = _reference(name, key, shape, dtype)
        assert (out.shape, out.dtype) == (want.shape, want.dtype)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(want), err_msg=str(shape))
        held = [v for v in params.values() if v.size == out.size]
        assert any(np.array_equal(np.ravel(v), np.ravel(out)) for v in held), "not stored"


@pytest.mark.parametrize(("module", "slot"), SLOTS, ids=[f"{m}-{s}" for m, s in SLOTS])
def test_jinit_in_a_flax_slot_in_bfloat16(module, slot):
    """``param_dtype=bfloat16``: wherever the module builds with Flax's initializer, it builds
    with jinit's, whose every call returns the dtype Flax asks for, its float32 values rounded
    once (jax's own bfloat16 draws differ, by design)."""
    for name, (ours, _) in INITS.items():
        if _refused(module, slot, name):
            continue  # refused alike: test_jinit_in_a_flax_slot_gives_flax_bits
        spy = _Spy(ours)
        try:
            _build(module, slot, spy, jnp.bfloat16)
        except Exception:
            # Only where Flax's fails too (jax's QR has no bfloat16: its orthogonal, a cell's
            # default recurrent_kernel_init, refuses; jinit's orthogonal does not).
            assert _refused(module, slot, name, jnp.bfloat16), name
            continue
        for key, shape, dtype, out in spy.calls:
            # bfloat16, except where Flax asks for no dtype (nnx.WeightNorm's scales: float32).
            assert out.dtype == (jnp.float32 if dtype is None else dtype), (name, shape)
            want = ours(key, shape, jnp.float32).astype(out.dtype)
            np.testing.assert_array_equal(np.asarray(out), np.asarray(want), err_msg=name)


@pytest.mark.parametrize(
    "init",
    [jinit.ones, jinit.zeros, jinit.constant(0.5), jinit.constant(jnp.float32(-2.0))],
    ids=["ones", "zeros", "constant", "constant(jax scalar)"],
)
def test_weight_norm_takes_deterministic_scale_inits(init):
    """nnx.WeightNorm hands ``scale_init`` its RngStream: deterministic initializers ignore it
    (as ``jax.nn.initializers.ones`` does), and the module trains its weights the same."""
    layer = nnx.Linear(6, 4, rngs=nnx.Rngs(1))
    module = nnx.WeightNorm(layer, scale_init=init, rngs=nnx.Rngs(0))
    want = init(jax.random.key(0), (4,))
    np.testing.assert_array_equal(np.asarray(module.scales[("kernel",)]), np.asarray(want))
    out = module(jnp.ones((2, 6)))
    assert out.shape == (2, 4) and bool(jnp.isfinite(out).all())


def test_deterministic_initializers_accept_any_key():
    """Whatever jax's ``zeros``/``ones`` take as a key (they ignore it), jinit's deterministic
    initializers take too; random ones still check theirs."""
    stream = nnx.Rngs(0)["params"]
    for init, shape in (
        (jinit.zeros, (4, 4)),
        (jinit.ones, (4, 4)),
        (jinit.constant(2.0), (4, 4)),
        (jinit.identity(), (4, 4)),
        (jinit.dirac(), (3, 4, 4)),
        (jinit.hadamard(), (4, 4)),
        (jinit.zero_init(), (4, 4)),
        (jinit.rezero(), ()),
        (jinit.keras.identity(), (4, 4)),
        (jinit.mup.readout(2.0, zero=True, dtype=jnp.bfloat16), (4, 4)),
    ):
        for key in (stream, None, "ignored", 1.5):
            np.testing.assert_array_equal(
                np.asarray(init(key, shape)), np.asarray(init(jax.random.key(0), shape))
            )
    with pytest.raises(TypeError, match=r"`normal`: `key` must be a typed key.*got RngStream"):
        jinit.normal()(stream, (4,))
