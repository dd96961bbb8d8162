"""Parameter-tree presets: leaf paths and shapes, and the Flax-default rules that initialise them.

A preset is plain data (path -> shape) so that the same tree feeds every peer: jinit, the
``jax.nn.initializers`` peers, NumPy, the fill limit, and (through :mod:`bench.models`) the Flax
and PyTorch modules, whose parameter paths and shapes are checked against it in the tests.

``--scan`` gives a gpt2 or llama preset the layout pods run: the blocks under one ``nn.scan``
scope (:data:`SCAN_SCOPE`), each parameter stacked with a leading layer axis, e.g.
``params/h/attn/c_attn/kernel`` of shape ``(L, d, 3d)`` for ``params/h_<i>/attn/c_attn/kernel``.
Layer ``i`` is drawn as Flax's scan draws it, with one layer's fans, under the key of
``params/h/<i>/attn/c_attn/kernel`` (:func:`rules` wraps such leaves in ``jinit.stacked``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

# (regex, scheme) pairs, first match wins, matched with re.search on the '/'-joined path.
# A scheme is (name, args, kwargs) of a factory that exists with the same call form in both
# `jinit` and `jax.nn.initializers` (or a bare initializer when args is None).
Scheme = tuple[str, tuple | None, dict]
EMBED: Scheme = ("variance_scaling", (1.0, "fan_in", "normal"), {"out_axis": 0})
LECUN: Scheme = ("lecun_normal", (), {})
ZEROS: Scheme = ("zeros", None, {})
ONES: Scheme = ("ones", None, {})

# Flax's defaults: Dense/Conv kernels lecun_normal, biases zeros, (Layer|RMS|Batch)Norm scale
# ones and bias zeros, Embed variance_scaling(1, 'fan_in', 'normal', out_axis=0),
# BatchNorm running mean zeros and variance ones.
FLAX_DEFAULT_RULES: tuple[tuple[str, Scheme], ...] = (
    (r"embedding$", EMBED),
    (r"kernel$", LECUN),
    (r"bias$", ZEROS),
    (r"scale$", ONES),
    (r"/mean$", ZEROS),
    (r"/var$", ONES),
)


def scheme_init(module: Any, scheme: Scheme) -> Callable:
    """The initializer `scheme` names, from `module` (``jinit`` or ``jax.nn.initializers``)."""
    name, args, kwargs = scheme
    f = getattr(module, name)
    return f if args is None else f(*args, **kwargs)


def rules(module: Any, scope: str | None = None) -> list[tuple[str, Callable]]:
    """FLAX_DEFAULT_RULES with the initializers taken from `module`; with a scan `scope` (jinit
    only), the leaves under ``params/<scope>/`` first, each rule's initializer wrapped in
    ``jinit.stacked(init, unroll=scope)``: one layer's fans, layer ``i`` keyed by the path
    ``params/<scope>/<i>/...``, as ``jinit.flax.init_linen`` draws the scanned Flax model."""
    plain = [(rx, scheme_init(module, s)) for rx, s in FLAX_DEFAULT_RULES]
    if scope is None:
        return plain
    if not hasattr(module, "stacked"):
        raise ValueError(
            f"`rules(module, scope={scope!r})` needs jinit's `stacked`; got {module.__name__!r} "
            f"(jax.nn has none: bench.bodies draws its stacked leaves layer by layer)."
        )
    under = [
        (f"^{stacked_prefix(scope)}.*{rx}", module.stacked(i, unroll=scope)) for rx, i in plain
    ]
    return under + plain


def stacked_prefix(scope: str) -> str:
    """The path prefix of the leaves a scan over `scope` stacks."""
    return f"params/{scope}/"


# The scope `nn.scan` puts the blocks under (the unrolled model's block names less `_<i>`).
SCAN_SCOPE = {"gpt2": "h", "llama": "layers"}


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    kind: str  # "gpt2" | "llama" | "mlp" | "resnet50"
    config: dict[str, Any]
    description: str
    scan: bool = False  # the blocks stacked under one nn.scan scope (gpt2 and llama kinds)

    @property
    def scope(self) -> str | None:
        """The scan scope (``'h'``, ``'layers'``) of a scanned preset; None unrolled."""
        return SCAN_SCOPE[self.kind] if self.scan else None

    def leaves(self) -> dict[str, tuple[int, ...]]:
        """'/'-joined path -> shape, in a fixed order."""
        return _BUILDERS[self.kind](**self.config, **({"scan": True} if self.scan else {}))

    def stack_axes(self, path: str) -> int:
        """Leading layer axes of the leaf at `path`: 1 under a scan scope, else 0."""
        scope = self.scope
        return int(scope is not None and path.startswith(stacked_prefix(scope)))

    def with_layers(self, layers: int | None) -> Preset:
        """This preset with `layers` blocks (gpt2 and llama kinds); itself when `layers` is None."""
        if layers is None:
            return self
        if "layers" not in self.config:
            raise ValueError(
                f"`--layers {layers}` applies to the gpt2 and llama presets; got {self.name!r} "
                f"(kind {self.kind!r})."
            )
        if layers < 1:
            raise ValueError(f"`--layers` must be >= 1; got {layers}.")
        return dataclasses.replace(
            self,
            name=f"{self.name}-L{layers}",
            config={**self.config, "layers": layers},
            description=f"{self.description}, {layers} layers",
        )

    def with_scan(self, scan: bool = True) -> Preset:
        """This preset with its blocks under one ``nn.scan`` scope (gpt2 and llama kinds),
        named ``<name>-scan``; itself when `scan` is False."""
        if not scan or self.scan:
            return self
        if self.kind not in SCAN_SCOPE:
            raise ValueError(
                f"`--scan` applies to the gpt2 and llama presets (kinds {sorted(SCAN_SCOPE)}); "
                f"got {self.name!r} (kind {self.kind!r})."
            )
        return dataclasses.replace(
            self,
            name=f"{self.name}-scan",
            description=f"{self.description}, blocks scanned (nn.scan, a leading layer axis)",
            scan=True,
        )

    def num_params(self) -> int:
        total = 0
        for shape in self.leaves().values():
            n = 1
            for d in shape:
                n *= d
            total += n
        return total


def _blocks(
    block: dict[str, tuple[int, ...]], name: str, layers: int, scan: bool
) -> dict[str, tuple[int, ...]]:
    """`layers` copies of one block's leaves: ``params/<name>_<i>/...`` unrolled, or
    ``params/<name>/...`` with a leading layer axis when scanned."""
    if scan:
        return {f"params/{name}/{k}": (layers, *s) for k, s in block.items()}
    return {f"params/{name}_{i}/{k}": s for i in range(layers) for k, s in block.items()}


def _gpt2(
    vocab: int, ctx: int, d: int, layers: int, scan: bool = False
) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {
        "params/wte/embedding": (vocab, d),
        "params/wpe/embedding": (ctx, d),
    }
    block = {
        "ln_1/scale": (d,),
        "ln_1/bias": (d,),
        "attn/c_attn/kernel": (d, 3 * d),
        "attn/c_attn/bias": (3 * d,),
        "attn/c_proj/kernel": (d, d),
        "attn/c_proj/bias": (d,),
        "ln_2/scale": (d,),
        "ln_2/bias": (d,),
        "mlp/c_fc/kernel": (d, 4 * d),
        "mlp/c_fc/bias": (4 * d,),
        "mlp/c_proj/kernel": (4 * d, d),
        "mlp/c_proj/bias": (d,),
    }
    out |= _blocks(block, SCAN_SCOPE["gpt2"], layers, scan)
    out |= {
        "params/ln_f/scale": (d,),
        "params/ln_f/bias": (d,),
        "params/lm_head/kernel": (d, vocab),
    }
    return out


def _llama(
    vocab: int,
    d: int,
    layers: int,
    heads: int,
    kv_heads: int,
    hidden: int,
    scan: bool = False,
) -> dict[str, tuple[int, ...]]:
    kv = d // heads * kv_heads
    out: dict[str, tuple[int, ...]] = {"params/embed_tokens/embedding": (vocab, d)}
    block = {
        "input_layernorm/scale": (d,),
        "self_attn/q_proj/kernel": (d, d),
        "self_attn/k_proj/kernel": (d, kv),
        "self_attn/v_proj/kernel": (d, kv),
        "self_attn/o_proj/kernel": (d, d),
        "post_attention_layernorm/scale": (d,),
        "mlp/gate_proj/kernel": (d, hidden),
        "mlp/up_proj/kernel": (d, hidden),
        "mlp/down_proj/kernel": (hidden, d),
    }
    out |= _blocks(block, SCAN_SCOPE["llama"], layers, scan)
    out |= {"params/norm/scale": (d,), "params/lm_head/kernel": (d, vocab)}
    return out


def _mlp(widths: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        out |= {f"params/Dense_{i}/kernel": (a, b), f"params/Dense_{i}/bias": (b,)}
    return out


def _resnet(stages: tuple[int, ...], classes: int) -> dict[str, tuple[int, ...]]:
    """Bottleneck ResNet (v1.5) with BatchNorm; paths as Flax names them (params + batch_stats)."""
    params: dict[str, tuple[int, ...]] = {}
    stats: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, conv: str, bn: str, k: int, cin: int, cout: int) -> None:
        params[f"{prefix}{conv}/kernel"] = (k, k, cin, cout)
        params[f"{prefix}{bn}/scale"] = (cout,)
        params[f"{prefix}{bn}/bias"] = (cout,)
        stats[f"{prefix}{bn}/mean"] = (cout,)
        stats[f"{prefix}{bn}/var"] = (cout,)

    conv_bn("", "conv_init", "bn_init", 7, 3, 64)
    cin, block = 64, 0
    for i, n in enumerate(stages):
        width = 64 * 2**i
        for j in range(n):
            p = f"BottleneckBlock_{block}/"
            conv_bn(p, "Conv_0", "BatchNorm_0", 1, cin, width)
            conv_bn(p, "Conv_1", "BatchNorm_1", 3, width, width)
            conv_bn(p, "Conv_2", "BatchNorm_2", 1, width, 4 * width)
            if j == 0:
                conv_bn(p, "conv_proj", "norm_proj", 1, cin, 4 * width)
            cin, block = 4 * width, block + 1
    params["Dense_0/kernel"] = (cin, classes)
    params["Dense_0/bias"] = (classes,)
    return {f"params/{k}": v for k, v in params.items()} | {
        f"batch_stats/{k}": v for k, v in stats.items()
    }


_BUILDERS: dict[str, Callable[..., dict[str, tuple[int, ...]]]] = {
    "gpt2": _gpt2,
    "llama": _llama,
    "mlp": _mlp,
    "resnet50": _resnet,
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "mlp",
            "mlp",
            {"widths": (1024, 4096, 4096, 4096, 4096, 1024)},
            "MLP 1024-4096x4-1024 (Dense kernels + biases)",
        ),
        Preset(
            "resnet50",
            "resnet50",
            {"stages": (3, 4, 6, 3), "classes": 1000},
            "ResNet-50 v1.5 (Conv, BatchNorm params + batch_stats, Dense head)",
        ),
        Preset(
            "gpt2-small",
            "gpt2",
            {"vocab": 50257, "ctx": 1024, "d": 768, "layers": 12},
            "GPT-2 small, untied lm_head",
        ),
        Preset(
            "gpt2-medium",
            "gpt2",
            {"vocab": 50257, "ctx": 1024, "d": 1024, "layers": 24},
            "GPT-2 medium, untied lm_head",
        ),
        Preset(
            "gpt2-large",
            "gpt2",
            {"vocab": 50257, "ctx": 1024, "d": 1280, "layers": 36},
            "GPT-2 large, untied lm_head",
        ),
        Preset(
            "llama-1b",
            "llama",
            {"vocab": 32000, "d": 2048, "layers": 22, "heads": 32, "kv_heads": 4, "hidden": 5632},
            "LLaMA-style 1.1B (TinyLlama shapes: GQA 32/4 heads), untied head",
        ),
        Preset(
            "llama-7b",
            "llama",
            {"vocab": 32000, "d": 4096, "layers": 32, "heads": 32, "kv_heads": 32, "hidden": 11008},
            "LLaMA-7B shapes, untied head",
        ),
        Preset(
            "llama-70b",
            "llama",
            {"vocab": 128256, "d": 8192, "layers": 80, "heads": 64, "kv_heads": 8, "hidden": 28672},
            "LLaMA-70B shapes (GQA 64/8 heads, vocabulary 128256), untied head",
        ),
        # Tiny trees for the smoke tests.
        Preset(
            "gpt2-tiny",
            "gpt2",
            {"vocab": 96, "ctx": 16, "d": 32, "layers": 2},
            "GPT-2 shapes, tiny (tests)",
        ),
        Preset(
            "llama-tiny",
            "llama",
            {"vocab": 96, "d": 32, "layers": 2, "heads": 4, "kv_heads": 2, "hidden": 48},
            "LLaMA shapes, tiny (tests)",
        ),
        Preset("mlp-tiny", "mlp", {"widths": (16, 32, 8)}, "MLP, tiny (tests)"),
        Preset(
            "resnet-tiny",
            "resnet50",
            {"stages": (1, 1), "classes": 10},
            "ResNet bottleneck, tiny (tests)",
        ),
    )
}


def parse_mesh(text: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """'8' -> ((8,), ('model',)); '2x4' -> ((2, 4), ('data', 'model'))."""
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) not in (1, 2) or min(dims) < 1:
        raise ValueError(f"`--mesh` must look like '8' or '2x4'; got {text!r}.")
    return dims, (("model",) if len(dims) == 1 else ("data", "model"))


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """'/'-joined paths -> nested dicts (the layout Flax uses)."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, last = path.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> '/'-joined paths (inverse of :func:`nest`)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, path + "/")
        else:
            out[path] = v
    return out
