"""The preset trees as PyTorch modules (torch imported only when one is built, never Flax).

PyTorch stores Linear weights as (out, in) and names them its own way, so only the parameter
count and the multiset of sizes match :mod:`bench.presets`.
"""

from __future__ import annotations

import itertools
from typing import Any

from bench.presets import Preset


def torch_model(preset: Preset, dtype: Any, device: str | None = None):
    """The PyTorch module of `preset`, built on `device` with torch's default initialisation."""
    import torch
    from torch import nn as tnn

    kw = {"dtype": dtype, "device": device}
    c = preset.config
    if preset.kind == "gpt2":
        d = c["d"]
        blocks = [
            tnn.ModuleDict(
                {
                    "ln_1": tnn.LayerNorm(d, **kw),
                    "c_attn": tnn.Linear(d, 3 * d, **kw),
                    "attn_proj": tnn.Linear(d, d, **kw),
                    "ln_2": tnn.LayerNorm(d, **kw),
                    "c_fc": tnn.Linear(d, 4 * d, **kw),
                    "mlp_proj": tnn.Linear(4 * d, d, **kw),
                }
            )
            for _ in range(c["layers"])
        ]
        return tnn.ModuleDict(
            {
                "wte": tnn.Embedding(c["vocab"], d, **kw),
                "wpe": tnn.Embedding(c["ctx"], d, **kw),
                "h": tnn.ModuleList(blocks),
                "ln_f": tnn.LayerNorm(d, **kw),
                "lm_head": tnn.Linear(d, c["vocab"], bias=False, **kw),
            }
        )
    if preset.kind == "llama":
        d, kv = c["d"], c["d"] // c["heads"] * c["kv_heads"]
        lin = lambda a, b: tnn.Linear(a, b, bias=False, **kw)
        blocks = [
            tnn.ModuleDict(
                {
                    "input_layernorm": tnn.RMSNorm(d, **kw),
                    "q_proj": lin(d, d),
                    "k_proj": lin(d, kv),
                    "v_proj": lin(d, kv),
                    "o_proj": lin(d, d),
                    "post_attention_layernorm": tnn.RMSNorm(d, **kw),
                    "gate_proj": lin(d, c["hidden"]),
                    "up_proj": lin(d, c["hidden"]),
                    "down_proj": lin(c["hidden"], d),
                }
            )
            for _ in range(c["layers"])
        ]
        return tnn.ModuleDict(
            {
                "embed_tokens": tnn.Embedding(c["vocab"], d, **kw),
                "layers": tnn.ModuleList(blocks),
                "norm": tnn.RMSNorm(d, **kw),
                "lm_head": lin(d, c["vocab"]),
            }
        )
    if preset.kind == "mlp":
        w = c["widths"]
        return tnn.Sequential(*(tnn.Linear(a, b, **kw) for a, b in itertools.pairwise(w)))
    if preset.kind == "resnet50":
        layers: list[Any] = [
            tnn.Conv2d(3, 64, 7, 2, 3, bias=False, **kw),
            tnn.BatchNorm2d(64, **kw),
        ]
        cin = 64
        for i, n in enumerate(c["stages"]):
            width = 64 * 2**i
            for j in range(n):
                layers += [
                    tnn.Conv2d(cin, width, 1, bias=False, **kw),
                    tnn.BatchNorm2d(width, **kw),
                    tnn.Conv2d(width, width, 3, padding=1, bias=False, **kw),
                    tnn.BatchNorm2d(width, **kw),
                    tnn.Conv2d(width, 4 * width, 1, bias=False, **kw),
                    tnn.BatchNorm2d(4 * width, **kw),
                ]
                if j == 0:
                    layers += [
                        tnn.Conv2d(cin, 4 * width, 1, bias=False, **kw),
                        tnn.BatchNorm2d(4 * width, **kw),
                    ]
                cin = 4 * width
        layers.append(tnn.Linear(cin, c["classes"], **kw))
        return tnn.ModuleList(layers)
    del torch
    raise ValueError(f"torch_model: unknown preset kind {preset.kind!r}.")
