"""The fresh-process stage of a benchmark run: each cold-capable peer timed in new processes.

Per peer: ``repeats`` processes with jax's persistent compilation cache off (the headline cold
time, the median reported) and, for a jax peer when ``cache`` is set, two more that share one
fresh cache folder: the first fills it, the second shows the cold start with a warm persistent
cache. A peer that fails is recorded with its error, so the other peers' numbers survive.
Runs in the parent before it initialises a jax backend of its own (on a GPU that would take
most of the device's memory from the children).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from bench import cold


def fields(m: dict[str, Any]) -> dict[str, Any]:
    """The per-peer result fields of one :func:`bench.cold.measure` result."""
    first = m["fresh"]
    out: dict[str, Any] = {
        "fresh_cold_s": first["total_s"],
        "fresh_compile_s": first["phases"].get("compile"),
        "fresh_phases": first["phases"],
        "fresh_all_s": m["fresh_all_s"],
        "fresh_device": first.get("device"),
        "fresh_note": first.get("note"),
        "fresh_runs": m,
    }
    if m.get("cached"):
        fill, warm = m["cached"]
        out |= {
            "fresh_cache_fill_s": fill["total_s"],
            "fresh_cached_cold_s": warm["total_s"],
            "fresh_cached_compile_s": warm["phases"].get("compile"),
        }
    return out


def run_fresh(
    peers: list[str],
    preset: str,
    dtype: str,
    *,
    layers: int | None = None,
    scan: bool = False,
    mesh: str | None = None,
    seed: int = 0,
    repeats: int = 1,
    cache: str | None = "auto",
    compile_only: bool = False,
    quiet: bool = False,
    desc: str = "fresh processes",
) -> dict[str, dict[str, Any]]:
    """peer -> :func:`fields` (or ``{"fresh_error": ...}``) for the peers in `peers` that
    :data:`bench.cold.COLD_PEERS` lists; torch is left out of compile-only (abstract) runs."""
    from tqdm import tqdm

    if repeats < 1:
        raise ValueError(f"`--cold-repeats` must be >= 1; got {repeats}.")
    todo = [p for p in peers if p in cold.COLD_PEERS and not (compile_only and p == "torch")]
    count = {p: repeats + (2 if cache and p != "torch" else 0) for p in todo}
    out: dict[str, dict[str, Any]] = {}
    with tqdm(total=sum(count.values()), desc=desc, file=sys.stderr, disable=quiet) as bar:
        for peer in todo:
            bar.set_postfix_str(peer)
            try:
                m = cold.measure(
                    peer,
                    repeats=repeats,
                    cache=cache,
                    preset=preset,
                    dtype=dtype,
                    layers=layers,
                    scan=scan,
                    mesh=mesh,
                    seed=seed,
                    compile_only=compile_only,
                )
                out[peer] = fields(m)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                lines = str(e).strip().splitlines()
                note = lines[0][:160] + (f" ... {lines[-1][:200]}" if len(lines) > 1 else "")
                out[peer] = {"fresh_error": note}
                print(f"[bench] {peer}: fresh-process run failed: {e}", file=sys.stderr)
            bar.update(count[peer])
    return out
