"""Depth sweep: fresh-process cold and compile time against the model's depth, one curve per peer.

``python -m bench depth`` (the same as ``python -m bench --depths 12,24,48``) rebuilds the preset
(GPT-2 small by default) at each depth and times each peer (jinit, Flax and ``jax.nn.initializers``
by default) in a fresh process with jax's persistent cache off: a table with the
deepest/shallowest ratio, JSON, and a plot of compile time against depth (both drawn by
:mod:`bench.report`). Depth is the axis that grows in real use, and compile time is the
cold-start cost that grows with it.
"""

from __future__ import annotations

from typing import Any

from bench import cold, fresh, measure
from bench.presets import PRESETS

DEFAULT_PEERS = ("jinit", "jinit-per-leaf", "flax", "jax-jit")


def parse_depths(text: str) -> list[int]:
    """'12,24,48' -> [12, 24, 48]: at least one depth, each >= 1, in increasing order."""
    try:
        depths = [int(d) for d in text.split(",") if d.strip()]
    except ValueError:
        depths = []
    if not depths or min(depths) < 1 or depths != sorted(set(depths)):
        raise ValueError(
            f"`--depths` must be increasing layer counts >= 1 like '12,24,48'; got {text!r}."
        )
    return depths


def sweep(
    preset: str,
    dtype: str,
    peers: list[str],
    depths: list[int],
    *,
    repeats: int = 1,
    seed: int = 0,
    mesh: str | None = None,
    quiet: bool = False,
    scan: bool = False,
) -> dict[str, Any]:
    """One row per (depth, peer): the fresh-process cold and compile seconds (median of
    `repeats` processes) and the phases of that run; `scan`: the blocks under one ``nn.scan``."""
    bad = [p for p in peers if p not in cold.COLD_PEERS]
    if bad or not peers:
        raise ValueError(
            f"`--depths` times fresh processes, so `--peers` must be among "
            f"{list(cold.COLD_PEERS)}; got {peers}."
        )
    specs = {d: PRESETS[preset].with_layers(d).with_scan(scan) for d in depths}  # mlp: raises
    name = PRESETS[preset].with_scan(scan).name  # '<preset>-scan' when scanned
    rows = []
    for d, spec in specs.items():
        got = fresh.run_fresh(
            peers,
            preset,
            dtype,
            layers=d,
            scan=scan,
            mesh=mesh,
            seed=seed,
            repeats=repeats,
            cache=None,
            quiet=quiet,
            desc=f"{name} depth {d}",
        )
        for p in peers:
            r = got[p]
            rows.append(
                {
                    "depth": d,
                    "peer": p,
                    "num_params": spec.num_params(),
                    "num_leaves": len(spec.leaves()),
                    "cold_s": r.get("fresh_cold_s"),
                    "compile_s": r.get("fresh_compile_s"),
                    "cold_all_s": r.get("fresh_all_s"),
                    "phases": r.get("fresh_phases"),
                    "device": r.get("fresh_device"),
                    "error": r.get("fresh_error"),
                }
            )
    result = {
        "kind": "depth-sweep",
        "preset": name,
        "scan": scan,
        "dtype": dtype,
        "depths": depths,
        "peers": peers,
        "repeats": repeats,
        "mesh": mesh,
        "rows": rows,
    }
    result["ratios"] = ratios(result)
    result["machine"] = measure.machine()  # after the sweep: it starts a jax backend here
    return result


def ratios(result: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """peer -> {"cold": deepest/shallowest, "compile": ...}: how a peer's cost grows."""
    lo, hi = result["depths"][0], result["depths"][-1]
    out: dict[str, dict[str, float | None]] = {}
    for p in result["peers"]:
        at = {r["depth"]: r for r in result["rows"] if r["peer"] == p}
        out[p] = {}
        for what in ("cold", "compile"):
            a, b = at[lo].get(f"{what}_s"), at[hi].get(f"{what}_s")
            out[p][what] = b / a if a and b else None
    return out
