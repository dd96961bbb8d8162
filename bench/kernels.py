"""Sampling-kernel benchmark: jinit's kernels vs ``jax.random`` vs ``jnp.full`` of the same bytes.

Run ``python -m bench.kernels [--shapes 1024x1024,4096x4096] [--repeats 5] [--json out.json]``.
Every case is compiled once (its compile + first run is reported as ``cold``), then the cases of
one (shape, dtype) are timed round-robin ``--repeats`` times with ``block_until_ready()`` and the
minimum is kept, so machine noise hits all peers alike. Figures are reported as ratios: jinit's
speed-up over ``jax.random`` and the fraction of ``jnp.full``'s bandwidth (the machine's write
limit) that jinit reaches.

The GPT-2-small tree case (:func:`gpt2_tree_times`) initialises ~150 leaves / 163M parameters in
one ``jit`` and runs each library in a fresh process, so neither benefits from the other's caches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jinit
from jinit import _random

DISTRIBUTIONS = ("bits", "uniform", "normal", "truncated_normal")
DTYPES = ("float32", "bfloat16")


def _jinit_fn(dist: str, shape: tuple[int, ...], dtype: Any) -> Callable:
    if dist == "bits":
        return lambda k: _random.bits(k, shape)
    if dist == "uniform":
        return lambda k: _random.uniform(k, shape, dtype).astype(dtype)
    if dist == "normal":
        return lambda k: _random.normal(k, shape, dtype).astype(dtype)
    return lambda k: _random.truncated_normal(k, -2.0, 2.0, shape, dtype).astype(dtype)


def _jax_fn(dist: str, shape: tuple[int, ...], dtype: Any) -> Callable:
    if dist == "bits":
        return lambda k: jax.random.bits(k, shape, jnp.uint32)
    if dist == "uniform":
        return lambda k: jax.random.uniform(k, shape, dtype)
    if dist == "normal":
        return lambda k: jax.random.normal(k, shape, dtype)
    return lambda k: jax.random.truncated_normal(k, -2.0, 2.0, shape, dtype)


def _cold(f: Callable, key: jax.Array) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(f(key))
    return time.perf_counter() - t0


def bench_case(shape: tuple[int, ...], dtype_name: str, repeats: int) -> list[dict]:
    """All distributions for one (shape, dtype): jinit, jax and fill timed round-robin."""
    key = jax.random.key(0)
    dtype = jnp.dtype(dtype_name)
    dists = [d for d in DISTRIBUTIONS if d != "bits" or dtype_name == "float32"]
    fns: dict[tuple[str, str], Callable] = {}
    for d in dists:
        fns[(d, "jinit")] = jax.jit(_jinit_fn(d, shape, dtype))
        fns[(d, "jax")] = jax.jit(_jax_fn(d, shape, dtype))
    fns[("fill", "uint32")] = jax.jit(lambda k: jnp.full(shape, 1, jnp.uint32))
    fns[("fill", dtype_name)] = jax.jit(lambda k: jnp.full(shape, 1, dtype))
    cold = {name: _cold(f, key) for name, f in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(key))
            best[name] = min(best[name], time.perf_counter() - t0)
    rows = []
    for d in dists:
        out_dtype = jnp.dtype(jnp.uint32) if d == "bits" else dtype
        nbytes = int(np.prod(shape)) * out_dtype.itemsize
        fill = best[("fill", "uint32" if d == "bits" else dtype_name)]
        jin, jx = best[(d, "jinit")], best[(d, "jax")]
        rows.append(
            {
                "dist": d,
                "shape": list(shape),
                "dtype": str(out_dtype),
                "jinit_ms": jin * 1e3,
                "jax_ms": jx * 1e3,
                "fill_ms": fill * 1e3,
                "jinit_GBps": nbytes / jin / 1e9,
                "jax_GBps": nbytes / jx / 1e9,
                "fill_GBps": nbytes / fill / 1e9,
                "speedup_vs_jax": jx / jin,
                "fraction_of_fill": fill / jin,
                "jinit_cold_s": cold[(d, "jinit")],
                "jax_cold_s": cold[(d, "jax")],
            }
        )
    return rows


def gpt2_specs() -> dict[str, tuple[tuple[int, ...], str]]:
    """GPT-2 small (163M parameters, untied head): path -> (shape, kind)."""
    d, vocab, ctx = 768, 50257, 1024
    specs: dict[str, tuple[tuple[int, ...], str]] = {
        "wte": ((vocab, d), "normal"),
        "wpe": ((ctx, d), "normal"),
    }
    for i in range(12):
        for ln in ("ln_1", "ln_2"):
            specs[f"h{i}.{ln}.scale"] = ((d,), "ones")
            specs[f"h{i}.{ln}.bias"] = ((d,), "zeros")
        for name, (n_in, n_out) in {
            "attn.c_attn": (d, 3 * d),
            "attn.c_proj": (d, d),
            "mlp.c_fc": (d, 4 * d),
            "mlp.c_proj": (4 * d, d),
        }.items():
            specs[f"h{i}.{name}.kernel"] = ((n_in, n_out), "lecun_normal")
            specs[f"h{i}.{name}.bias"] = ((n_out,), "zeros")
    specs["ln_f.scale"] = ((d,), "ones")
    specs["ln_f.bias"] = ((d,), "zeros")
    specs["lm_head.kernel"] = ((d, vocab), "lecun_normal")
    return specs


def gpt2_init_fn(lib: Any) -> Callable:
    """One jitted function initialising the whole GPT-2 tree with ``lib``'s initializers."""
    specs = gpt2_specs()
    inits = {
        "normal": lib.normal(0.02),
        "lecun_normal": lib.lecun_normal(),
        "zeros": lib.zeros,
        "ones": lib.ones,
    }

    def init(key: jax.Array) -> dict[str, jax.Array]:
        keys = jax.random.split(key, len(specs))
        return {
            p: inits[kind](keys[i], shape, jnp.float32)
            for i, (p, (shape, kind)) in enumerate(specs.items())
        }

    return jax.jit(init)


def _tree_worker(lib_name: str, repeats: int) -> dict:
    lib = {"jinit": jinit, "jax": jax.nn.initializers}[lib_name]
    key = jax.random.key(0)
    f = gpt2_init_fn(lib)
    t0 = time.perf_counter()
    lowered = f.lower(key)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    out = jax.block_until_ready(compiled(key))
    t3 = time.perf_counter()
    warm = float("inf")
    for _ in range(repeats):
        s = time.perf_counter()
        jax.block_until_ready(compiled(key))
        warm = min(warm, time.perf_counter() - s)
    return {
        "lib": lib_name,
        "leaves": len(out),
        "params": sum(x.size for x in out.values()),
        "trace_lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "first_run_s": t3 - t2,
        "cold_s": t3 - t0,
        "warm_s": warm,
    }


def gpt2_tree_times(repeats: int = 3, rounds: int = 2) -> list[dict]:
    """Cold (trace + compile + first run) and warm times of the GPT-2 tree, fresh processes."""
    results = []
    for _ in range(rounds):
        for lib in ("jax", "jinit"):
            cmd = [
                sys.executable,
                "-m",
                "bench.kernels",
                "--tree-worker",
                lib,
                "--repeats",
                str(repeats),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"jax {jax.__version__}, {jax.devices()[0].platform}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="1024x1024,4096x4096,8192x8192")
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--no-tree", action="store_true")
    parser.add_argument("--tree-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tree_worker:
        print(json.dumps(_tree_worker(args.tree_worker, args.repeats)))
        return
    print(f"# {machine()}; min of {args.repeats} round-robin repeats")
    rows = []
    header = (
        f"{'dist':<17}{'dtype':<9}{'shape':<11}{'jinit ms':>9}{'jax ms':>9}{'fill ms':>9}"
        f"{'jinit GB/s':>11}{'x jax':>7}{'of fill':>8}"
    )
    print(header)
    for s in args.shapes.split(","):
        shape = tuple(int(n) for n in s.split("x"))
        for dt in args.dtypes.split(","):
            for r in bench_case(shape, dt, args.repeats):
                rows.append(r)
                print(
                    f"{r['dist']:<17}{r['dtype']:<9}{s:<11}{r['jinit_ms']:>9.1f}"
                    f"{r['jax_ms']:>9.1f}{r['fill_ms']:>9.1f}{r['jinit_GBps']:>11.2f}"
                    f"{r['speedup_vs_jax']:>7.2f}{r['fraction_of_fill']:>8.0%}"
                )
    tree = [] if args.no_tree else gpt2_tree_times(args.repeats)
    for t in tree:
        print(
            f"gpt2 tree {t['lib']:<6} leaves={t['leaves']} params={t['params'] / 1e6:.1f}M "
            f"cold={t['cold_s']:.2f}s (trace+lower {t['trace_lower_s']:.2f}, compile "
            f"{t['compile_s']:.2f}, first run {t['first_run_s']:.2f}) warm={t['warm_s']:.3f}s"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"machine": machine(), "argv": sys.argv, "kernels": rows, "gpt2_tree": tree},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
