"""Sampling-kernel benchmark: jinit's kernels vs ``jax.random`` vs ``jnp.full`` of the same bytes.

Run ``python -m bench kernels [--shapes 1024x1024,4096x4096] [--repeats 5] [--json out.json]``.
Every case is compiled once (its compile + first run is reported as ``cold``), then the cases of
one (shape, dtype) are timed round-robin ``--repeats`` times with ``block_until_ready()`` and the
minimum is kept, so machine noise hits all peers alike. Figures are reported as ratios: jinit's
speed-up over ``jax.random`` and the fraction of ``jnp.full``'s bandwidth (the machine's write
limit) that jinit reaches. ``portable`` is jinit's portable mode (:func:`jinit.portable`: integer
samplers, the same bits on every backend), timed in the same round-robin. ``bits`` is the raw
hash (:func:`bits`, here: no initializer needs it), the floor under every distribution.

Whole trees (cold in fresh processes, warm, memory, peers) are ``python -m bench``'s job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bench import measure, report
from jinit._rng import distributions as _distributions
from jinit._rng import portable as _portable
from jinit._rng import threefry as _threefry

DISTRIBUTIONS = ("bits", "uniform", "normal", "truncated_normal")
DTYPES = ("float32", "bfloat16")


@partial(jax.jit, static_argnames="shape")
def _bits_kernel(key: jax.Array, *, shape: tuple[int, ...]) -> jax.Array:
    return _threefry.random_bits32(*_threefry.key_words(key), shape)


def bits(key: jax.Array, shape: tuple[int, ...], out_sharding: Any = None) -> jax.Array:
    """uint32 bits equal to ``jax.random.bits(key, shape, jnp.uint32)``, by jinit's threefry kernel
    where :func:`jinit._rng.distributions.use_kernels` allows it, else by jax."""
    shape = tuple(shape)
    if not _distributions.use_kernels(key, np.float32, shape):
        return jax.random.bits(key, shape, jnp.uint32, out_sharding=out_sharding)
    return _distributions.run_kernel("bits", _bits_kernel, shape, out_sharding, key)


def _jinit_fn(dist: str, shape: tuple[int, ...], dtype: Any) -> Callable:
    if dist == "bits":
        return lambda k: bits(k, shape)
    if dist == "uniform":
        return lambda k: _distributions.uniform(k, shape, dtype).astype(dtype)
    if dist == "normal":
        return lambda k: _distributions.normal(k, shape, dtype).astype(dtype)
    return lambda k: _distributions.truncated_normal(k, -2.0, 2.0, shape, dtype).astype(dtype)


def _jax_fn(dist: str, shape: tuple[int, ...], dtype: Any) -> Callable:
    if dist == "bits":
        return lambda k: jax.random.bits(k, shape, jnp.uint32)
    if dist == "uniform":
        return lambda k: jax.random.uniform(k, shape, dtype)
    if dist == "normal":
        return lambda k: jax.random.normal(k, shape, dtype)
    return lambda k: jax.random.truncated_normal(k, -2.0, 2.0, shape, dtype)


def _portable_fn(dist: str, shape: tuple[int, ...], dtype: Any) -> Callable | None:
    """The portable sampler of ``dist`` (``None`` for ``bits``: integers are portable as is)."""
    if dist == "bits":
        return None

    def f(k: jax.Array) -> jax.Array:
        with _portable.mode(True):
            return _jinit_fn(dist, shape, dtype)(k)

    return f


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
        portable = _portable_fn(d, shape, dtype)
        if portable is not None:
            fns[(d, "portable")] = jax.jit(portable)
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
        port = best.get((d, "portable"), float("nan"))
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
                "portable_ms": port * 1e3,
                "portable_speedup_vs_jax": jx / port,
                "portable_cold_s": cold.get((d, "portable"), float("nan")),
                "jinit_cold_s": cold[(d, "jinit")],
                "jax_cold_s": cold[(d, "jax")],
            }
        )
    return rows


def machine() -> str:
    """The machine line, from the one probe the benchmarks share (:func:`bench.measure.machine`)."""
    m = measure.machine()
    return f"{m['cpu']}, {m['cpu_affinity']} cores, {m['backend']}, jax {m['jax']}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench kernels", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--shapes", default="1024x1024,4096x4096,8192x8192")
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    print(f"# {machine()}; min of {args.repeats} round-robin repeats")
    rows = []
    for s in args.shapes.split(","):
        shape = tuple(int(n) for n in s.split("x"))
        for dt in args.dtypes.split(","):
            rows += bench_case(shape, dt, args.repeats)
            print(f"[bench kernels] {s} {dt} done", file=sys.stderr, flush=True)
    print(report.kernels_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "argv": sys.argv, "kernels": rows}, f, indent=1)
