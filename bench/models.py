"""The preset trees as the Flax linen modules users write (PyTorch: :mod:`bench.torch_models`).

Flax parameter paths and shapes match :mod:`bench.presets` exactly (checked in the tests). A
scanned preset (``--scan``) builds its blocks as pods run them: ``nn.scan(nn.remat(block))`` with
``variable_axes={"params": 0}`` and ``split_rngs={"params": True}``, one scope of stacked
parameters (:data:`bench.presets.SCAN_SCOPE`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from bench.presets import SCAN_SCOPE, Preset


def _scanned(block: type[nn.Module], layers: int) -> Any:
    """`block` over `layers` layers as MaxText writes it: remat inside scan, the parameters
    stacked on a leading axis, each layer with its own params key."""
    return nn.scan(
        nn.remat(block, prevent_cse=False),
        variable_axes={"params": 0},
        split_rngs={"params": True},
        length=layers,
    )


class _GPT2Attn(nn.Module):
    d: int
    pd: Any

    @nn.compact
    def __call__(self, x):
        b, t, _ = x.shape
        heads = max(1, self.d // 64)
        qkv = nn.Dense(3 * self.d, param_dtype=self.pd, name="c_attn")(x)
        q, k, v = (a.reshape(b, t, heads, -1) for a in jnp.split(qkv, 3, axis=-1))
        y = jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(b, t, self.d)
        return nn.Dense(self.d, param_dtype=self.pd, name="c_proj")(y)


class _GPT2MLP(nn.Module):
    d: int
    pd: Any

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(4 * self.d, param_dtype=self.pd, name="c_fc")(x)
        return nn.Dense(self.d, param_dtype=self.pd, name="c_proj")(nn.gelu(h))


class _GPT2Block(nn.Module):
    d: int
    pd: Any
    carry: bool = False  # scanned: (x, None) -> (x, None), nn.scan's signature

    @nn.compact
    def __call__(self, x, _=None):
        x = x + _GPT2Attn(self.d, self.pd, name="attn")(
            nn.LayerNorm(param_dtype=self.pd, name="ln_1")(x)
        )
        x = x + _GPT2MLP(self.d, self.pd, name="mlp")(
            nn.LayerNorm(param_dtype=self.pd, name="ln_2")(x)
        )
        return (x, None) if self.carry else x


class GPT2(nn.Module):
    vocab: int
    ctx: int
    d: int
    layers: int
    pd: Any = jnp.float32
    scan: bool = False

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab, self.d, param_dtype=self.pd, name="wte")(tokens)
        x = (
            x
            + nn.Embed(self.ctx, self.d, param_dtype=self.pd, name="wpe")(
                jnp.arange(tokens.shape[-1])
            )[None]
        )
        if self.scan:
            blocks = _scanned(_GPT2Block, self.layers)
            x, _ = blocks(self.d, self.pd, carry=True, name=SCAN_SCOPE["gpt2"])(x, None)
        else:
            for i in range(self.layers):
                x = _GPT2Block(self.d, self.pd, name=f"h_{i}")(x)
        x = nn.LayerNorm(param_dtype=self.pd, name="ln_f")(x)
        return nn.Dense(self.vocab, use_bias=False, param_dtype=self.pd, name="lm_head")(x)


class _LlamaAttn(nn.Module):
    d: int
    heads: int
    kv_heads: int
    pd: Any

    @nn.compact
    def __call__(self, h):
        hd, (b, t, _) = self.d // self.heads, h.shape
        dense = lambda n, name: nn.Dense(n, use_bias=False, param_dtype=self.pd, name=name)
        q = dense(self.d, "q_proj")(h).reshape(b, t, self.heads, hd)
        k = dense(self.kv_heads * hd, "k_proj")(h).reshape(b, t, self.kv_heads, hd)
        v = dense(self.kv_heads * hd, "v_proj")(h).reshape(b, t, self.kv_heads, hd)
        y = jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(b, t, self.d)
        return dense(self.d, "o_proj")(y)


class _LlamaMLP(nn.Module):
    d: int
    hidden: int
    pd: Any

    @nn.compact
    def __call__(self, h):
        dense = lambda n, name: nn.Dense(n, use_bias=False, param_dtype=self.pd, name=name)
        g, u = dense(self.hidden, "gate_proj")(h), dense(self.hidden, "up_proj")(h)
        return dense(self.d, "down_proj")(nn.silu(g) * u)


class _LlamaBlock(nn.Module):
    d: int
    heads: int
    kv_heads: int
    hidden: int
    pd: Any
    carry: bool = False  # scanned: (x, None) -> (x, None), nn.scan's signature

    @nn.compact
    def __call__(self, x, _=None):
        h = nn.RMSNorm(param_dtype=self.pd, name="input_layernorm")(x)
        x = x + _LlamaAttn(self.d, self.heads, self.kv_heads, self.pd, name="self_attn")(h)
        h = nn.RMSNorm(param_dtype=self.pd, name="post_attention_layernorm")(x)
        x = x + _LlamaMLP(self.d, self.hidden, self.pd, name="mlp")(h)
        return (x, None) if self.carry else x


class Llama(nn.Module):
    vocab: int
    d: int
    layers: int
    heads: int
    kv_heads: int
    hidden: int
    pd: Any = jnp.float32
    scan: bool = False

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab, self.d, param_dtype=self.pd, name="embed_tokens")(tokens)
        dims = (self.d, self.heads, self.kv_heads, self.hidden, self.pd)
        if self.scan:
            blocks = _scanned(_LlamaBlock, self.layers)
            x, _ = blocks(*dims, carry=True, name=SCAN_SCOPE["llama"])(x, None)
        else:
            for i in range(self.layers):
                x = _LlamaBlock(*dims, name=f"layers_{i}")(x)
        x = nn.RMSNorm(param_dtype=self.pd, name="norm")(x)
        return nn.Dense(self.vocab, use_bias=False, param_dtype=self.pd, name="lm_head")(x)


class MLP(nn.Module):
    widths: tuple[int, ...]
    pd: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        for i, w in enumerate(self.widths[1:]):
            x = nn.Dense(w, param_dtype=self.pd)(x)
            if i < len(self.widths) - 2:
                x = nn.relu(x)
        return x


class BottleneckBlock(nn.Module):
    width: int
    strides: int
    proj: bool
    pd: Any

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, s=1: nn.Conv(f, (k, k), (s, s), use_bias=False, param_dtype=self.pd)
        bn = lambda **kw: nn.BatchNorm(use_running_average=True, param_dtype=self.pd, **kw)
        y = nn.relu(bn()(conv(self.width, 1)(x)))
        y = nn.relu(bn()(conv(self.width, 3, self.strides)(y)))
        y = bn()(conv(4 * self.width, 1)(y))
        if self.proj:
            x = nn.Conv(
                4 * self.width,
                (1, 1),
                (self.strides, self.strides),
                use_bias=False,
                param_dtype=self.pd,
                name="conv_proj",
            )(x)
            x = bn(name="norm_proj")(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    stages: tuple[int, ...]
    classes: int
    pd: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(64, (7, 7), (2, 2), use_bias=False, param_dtype=self.pd, name="conv_init")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=True, param_dtype=self.pd, name="bn_init")(x))
        for i, n in enumerate(self.stages):
            for j in range(n):
                x = BottleneckBlock(64 * 2**i, 2 if i > 0 and j == 0 else 1, j == 0, self.pd)(x)
        return nn.Dense(self.classes, param_dtype=self.pd)(x.mean(axis=(1, 2)))


def flax_model(preset: Preset, dtype: Any) -> tuple[nn.Module, jax.ShapeDtypeStruct]:
    """The linen module of `preset` with ``param_dtype=dtype`` (scanned for a ``--scan``
    preset), and an input to init it with."""
    c = preset.config
    if preset.kind == "gpt2":
        return GPT2(**c, pd=dtype, scan=preset.scan), jax.ShapeDtypeStruct((1, 8), jnp.int32)
    if preset.kind == "llama":
        return Llama(**c, pd=dtype, scan=preset.scan), jax.ShapeDtypeStruct((1, 8), jnp.int32)
    if preset.kind == "mlp":
        return MLP(tuple(c["widths"]), pd=dtype), jax.ShapeDtypeStruct(
            (1, c["widths"][0]), jnp.float32
        )
    if preset.kind == "resnet50":
        return ResNet(tuple(c["stages"]), c["classes"], pd=dtype), jax.ShapeDtypeStruct(
            (1, 32, 32, 3), jnp.float32
        )
    raise ValueError(f"flax_model: unknown preset kind {preset.kind!r}.")
