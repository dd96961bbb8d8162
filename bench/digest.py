"""Digests of one reference tree and of raw draws, to compare backends: ``python -m bench digest``.

Portable mode (:func:`jinit.portable`) promises the same bits on every backend. Run this on two
machines (say the CPU here and a GPU) and compare the lines, or compare with a recorded run:

    python -m bench digest --json bench/results/digest-cpu.json        # record (CPU)
    python -m bench digest --compare bench/results/digest-cpu.json     # on the GPU: exit 1 if a
                                                                       # portable digest differs

Each row is a SHA-256 prefix of the float32 (or bfloat16) bytes. ``portable`` rows must agree
everywhere; ``jax`` rows (jinit's default mode, jax's values) are expected to differ between
backends for normal-family leaves. The raw draws are also recomputed by the NumPy reference
(``tests/portable_reference.py``, no jax), on whatever machine runs this.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jinit
from jinit._rng import portable as _portable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import portable_reference as ref

SHAPE = (1024, 1024)


def _h(x: Any) -> str:
    return hashlib.sha256(np.asarray(x).tobytes()).hexdigest()[:16]


def tree() -> tuple[dict, list]:
    """A GPT-2-shaped tree (two layers, d=768) and rules covering every sampler family."""
    f32, bf16 = jnp.float32, jnp.bfloat16
    d = 768
    layer = {
        "attn": {
            "c_attn": {"kernel": jax.ShapeDtypeStruct((d, 3 * d), f32)},
            "c_proj": {"kernel": jax.ShapeDtypeStruct((d, d), f32)},
        },
        "mlp": {
            "c_fc": {"kernel": jax.ShapeDtypeStruct((d, 4 * d), bf16)},
            "c_proj": {"kernel": jax.ShapeDtypeStruct((4 * d, d), f32)},
            "bias": jax.ShapeDtypeStruct((4 * d,), f32),
        },
        "gate": jax.ShapeDtypeStruct((64, 64), f32),
    }
    abstract = {"wte": jax.ShapeDtypeStruct((4096, d), f32), "h": [layer, layer]}
    rules = [
        ("wte", jinit.normal(0.02)),
        ("c_attn", jinit.lecun_normal()),
        ("attn/c_proj", jinit.glorot_normal()),
        ("c_fc", jinit.he_uniform()),
        ("mlp/c_proj", jinit.torch.kaiming_uniform()),
        ("bias", jinit.keras.random_normal(mean=0.1, stddev=0.02)),
        ("gate", jinit.orthogonal()),
    ]
    return abstract, rules


def digests() -> dict[str, str]:
    key = jax.random.key(2026)
    abstract, rules = tree()
    out: dict[str, str] = {}
    for mode in ("portable", "jax"):
        params = jinit.init_tree(key, abstract, rules, portable=mode == "portable")
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
            out[f"{mode} {jax.tree_util.keystr(path)}"] = _h(leaf)
    words = tuple(int(w) for w in jax.random.key_data(key))
    draws = {
        "normal": (_portable.normal_kernel(key, shape=SHAPE), ref.normal(words, SHAPE)),
        "truncated_normal(-2, 2)": (
            _portable.truncated_normal_kernel(key, -2.0, 2.0, shape=SHAPE),
            ref.truncated_normal(words, SHAPE, -2.0, 2.0),
        ),
        "uniform(-1, 1)": (
            _portable.uniform_kernel(key, -1.0, 1.0, shape=SHAPE),
            ref.uniform(words, (64, 64), -1.0, 1.0),  # the Fraction reference is slow: 4096
        ),
        "orthogonal(300, 200)": (
            jinit.portable(jinit.orthogonal())(key, (300, 200)),
            ref.orthogonal(words, 300, 200),
        ),
    }
    for name, (got, want) in draws.items():
        got = np.asarray(got)
        out[f"portable draw {name}"] = _h(got)
        out[f"numpy reference {name}"] = _h(want)
        ok = np.array_equal(got.ravel()[: want.size], want.ravel())
        out[f"portable draw {name} == numpy reference"] = str(ok)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench digest", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--json", help="write the digests to this file")
    parser.add_argument("--compare", help="a recorded run: report each differing portable row")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    print(f"# {device.platform} ({device.device_kind}), jax {jax.__version__}")
    out = digests()
    width = max(map(len, out))
    for name, value in out.items():
        print(f"{name:<{width}}  {value}")
    if args.json:
        meta = {"platform": device.platform, "device": device.device_kind, "jax": jax.__version__}
        pathlib.Path(args.json).write_text(json.dumps({"meta": meta, "digests": out}, indent=1))
    bad = [k for k, v in out.items() if k.endswith("numpy reference") and v != "True"]
    if args.compare:
        recorded = json.loads(pathlib.Path(args.compare).read_text())
        theirs = recorded["digests"]
        print(f"# compared with {recorded['meta']}")
        for name, value in out.items():
            if name in theirs and theirs[name] != value:
                print(f"differs: {name}  ({theirs[name]} there, {value} here)")
                if name.startswith("portable"):
                    bad.append(name)
    if bad:
        print(f"FAIL: {len(bad)} portable rows differ: {bad}")
        return 1
    print("OK: every portable row agrees")
    return 0
