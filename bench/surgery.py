"""Fine-tuning surgery's cost: ``python -m bench surgery [-p gpt2-small] [--rank 8]``.

A trained tree (the preset, with Flax's default schemes) gets a new 10-way head and LoRA
adapters on every attention projection (A ``(d, r)`` Kaiming-uniform with a = sqrt(5), B zeros,
as peft does). Each case runs in a fresh process (import, trace, compile, run, as a user waits)
with the trained tree already on the device:

* ``surgery``: ``jinit.init_tree(key, target, rules, keep=trained)``: only the head and the
  adapters are built;
* ``scratch``: ``jinit.init_tree(key, target, rules)``, the whole new tree from scratch.

Reported: seconds from the call to the result (trace, compile, run), the ratio surgery /
scratch, and the memory the call added at its peak (resident set, over the trained tree's
bytes; the trained tree plus that is the target's "peak memory").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any


def _target(preset: str, rank: int) -> tuple[dict, dict, list]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jinit
    from bench import trees
    from bench.presets import PRESETS, rules

    shapes = PRESETS[preset].leaves()
    base = trees.abstract_tree(shapes, np.float32)
    target = dict(base)
    params = dict(target["params"])
    params["new_head"] = {"kernel": jax.ShapeDtypeStruct((shapes_width(shapes), 10), jnp.float32)}
    for path, shape in shapes.items():
        if path.endswith("attn/c_attn/kernel"):
            block = path.split("/")[1]
            d_in, d_out = shape
            params[f"lora_{block}"] = {
                "lora_a": jax.ShapeDtypeStruct((d_in, rank), jnp.float32),
                "lora_b": jax.ShapeDtypeStruct((rank, d_out), jnp.float32),
            }
    target["params"] = params
    surgery_rules = [
        (r"lora_a$", jinit.torch.kaiming_uniform(a=float(np.sqrt(5)))),
        (r"lora_b$", jinit.zeros),
        *rules(jinit),
    ]
    return base, target, surgery_rules


def shapes_width(shapes: dict[str, tuple[int, ...]]) -> int:
    """The model width: the embedding's last axis."""
    return next(s[-1] for p, s in shapes.items() if p.endswith("embedding"))


def worker(case: str, preset: str, rank: int) -> dict[str, Any]:
    """One case in this fresh process."""
    import jax
    import psutil

    import jinit
    from bench.presets import rules

    base, target, surgery_rules = _target(preset, rank)
    trained = jax.block_until_ready(jinit.init_tree(0, base, rules(jinit)))
    trained_bytes = sum(x.nbytes for x in jax.tree.leaves(trained))
    keep = {"keep": trained} if case == "surgery" else {}
    before = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    out = jax.block_until_ready(jinit.init_tree(1, target, surgery_rules, **keep))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "case": case,
        "seconds": seconds,
        "extra_peak_bytes": max(0, peak - before),  # what the call added at its peak
        "trained_bytes": trained_bytes,
        "leaves": len(jax.tree.leaves(out)),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench surgery", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("-p", "--preset", default="gpt2-small", help="a gpt2 or llama preset")
    parser.add_argument("--rank", type=int, default=8, help="the LoRA rank")
    args = parser.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    rows = {}
    for case in ("surgery", "scratch"):
        cmd = [sys.executable, "-m", "bench.surgery", case, args.preset, str(args.rank)]
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"`{' '.join(cmd)}` failed: {done.stderr[-2000:]}")
        rows[case] = json.loads(lines[-1])
    s, f = rows["surgery"], rows["scratch"]
    result = {
        "preset": args.preset,
        "rank": args.rank,
        "rows": rows,
        "surgery_over_scratch": s["seconds"] / f["seconds"],
        # the trained tree plus what the surgery call added at its peak, over the trained tree
        "surgery_peak_over_trained": 1 + s["extra_peak_bytes"] / s["trained_bytes"],
    }
    print(f"{args.preset}, new head + LoRA rank {args.rank} on every attention projection")
    for case, r in rows.items():
        print(
            f"{case:8s} {r['seconds']:7.3f} s   the call's extra peak memory "
            f"{r['extra_peak_bytes'] / 2**20:7.0f} MiB = "
            f"{r['extra_peak_bytes'] / r['trained_bytes']:.3f}x the trained tree"
        )
    print(f"surgery / scratch: {result['surgery_over_scratch']:.3f}x")
    return result


if __name__ == "__main__":  # the worker: python -m bench.surgery CASE PRESET RANK
    print(json.dumps(worker(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
