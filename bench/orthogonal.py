"""Orthogonal-initializer benchmark: each method's time as a ratio to one matmul of the same size.

Run ``python -m bench orthogonal [--sizes 1024,2048,4096] [--repeats 3] [--json out.json]``.
For each ``n``, four cases are compiled once (compile + first run reported as ``cold``), then
timed round-robin ``--repeats`` times with ``block_until_ready()``, keeping the minimum, so
machine noise hits all cases alike:

* ``matmul``: one ``n x n @ n x n`` float32 matmul, the machine's own yardstick;
* ``jinit qr``: ``jinit.orthogonal()`` (jax's QR algorithm and bits);
* ``jinit householder``: ``jinit.orthogonal(method="householder")``;
* ``jinit portable``: ``jinit.portable(jinit.orthogonal())`` (exact products, the same bits on
  every machine);
* ``jax``: ``jax.nn.initializers.orthogonal()``.

Each row also reports ``max |Q^T Q - I|`` of the two jinit methods (float64 check on the host).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jinit
from bench import report


def _cases(n: int) -> dict[str, Callable[[], Any]]:
    key = jax.random.key(0)
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    qr, hh = jinit.orthogonal(), jinit.orthogonal(method="householder")
    pt = jinit.portable(jinit.orthogonal())
    jax_init = jax.jit(jax.nn.initializers.orthogonal(), static_argnums=(1,))
    return {
        "matmul": lambda: matmul(a, b),
        "jinit qr": lambda: qr(key, (n, n)),
        "jinit householder": lambda: hh(key, (n, n)),
        "jinit portable": lambda: pt(key, (n, n)),
        "jax": lambda: jax_init(key, (n, n)),
    }


def _orthogonality(q: Any) -> float:
    q = np.asarray(q, np.float64)
    return float(np.abs(q.T @ q - np.eye(q.shape[1])).max())


def run(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        cases = _cases(n)
        cold, best = {}, {}
        for name, f in cases.items():
            t0 = time.perf_counter()
            out = jax.block_until_ready(f())
            cold[name] = time.perf_counter() - t0
            best[name] = float("inf")
            if name.startswith("jinit"):
                cold[name + " orth"] = _orthogonality(out)
            del out
        for _ in range(repeats):
            for name, f in cases.items():
                t0 = time.perf_counter()
                jax.block_until_ready(f())
                best[name] = min(best[name], time.perf_counter() - t0)
        mm = best["matmul"]
        row = {
            "n": n,
            "seconds": best,
            "cold_seconds": {k: v for k, v in cold.items() if not k.endswith("orth")},
            "ratio_to_matmul": {k: v / mm for k, v in best.items()},
            "max_abs_QtQ_minus_I": {
                k[: -len(" orth")]: v for k, v in cold.items() if k.endswith("orth")
            },
        }
        rows.append(row)
        print(f"[bench orthogonal] n={n} done", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench orthogonal", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--sizes", default="1024,2048,4096", help="comma-separated n")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, {platform.processor() or platform.machine()}"
    )
    rows = run(sizes, args.repeats)
    print(report.orthogonal_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "python -m bench orthogonal", "rows": rows}, f, indent=1)
