"""Runs the peers on one tree: fresh-process cold (bench.fresh), then in-process cold, warm,
memory and correctness; or abstractly when the tree is too large to materialise."""

from __future__ import annotations

import gc
import statistics
import sys
import traceback
from typing import Any

import jax
import numpy as np
import psutil

from bench import checks, fresh, measure, trees
from bench.cold import JINIT_GROUP
from bench.peers import PEERS, Compiled, Context
from bench.presets import PRESETS

# Materialise only when ~2x the tree's bytes (one tree plus float32 temporaries) fits in this
# fraction of the currently available RAM; otherwise run abstractly.
RAM_FRACTION = 0.7
# Keep jinit's arrays (to measure how far a non-identical peer is) for trees up to this size.
KEEP_REFERENCE_BYTES = 2 << 30


def _memory_analysis(thunk: Any) -> dict[str, int] | None:
    if not isinstance(thunk, Compiled):
        return None
    try:
        ma = thunk.compiled.memory_analysis()
    except Exception:  # not every backend implements it
        return None
    if ma is None:
        return None
    fields = (
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "temp_size_in_bytes",
        "alias_size_in_bytes",
        "generated_code_size_in_bytes",
    )
    return {f: int(getattr(ma, f)) for f in fields if hasattr(ma, f)}


def run_peer(
    name: str, ctx: Context, repeats: int, ref: dict[str, Any], nbytes: int, progress: Any
) -> dict[str, Any]:
    peer = PEERS[name]
    res: dict[str, Any] = {"peer": name, "label": peer.label, "keys": peer.keys}
    reason = peer.missing()
    if reason:
        res |= {"status": "skipped", "note": reason}
        progress.update(repeats + 2)
        return res
    case = peer.build(ctx)
    res |= {"notes": case.notes, "sharded": case.sharded, "label": case.label or peer.label}
    progress.set_postfix_str(f"{name}: cold")
    if peer.jax_based:
        jax.clear_caches()
    gc.collect()
    cold, (thunk, out) = measure.timed(lambda: (t := case.make(), t()), lambda r: case.block(r[1]))
    res["cold_s"] = cold
    res["compile_s"] = getattr(thunk, "compile_s", None)
    res["memory_analysis"] = _memory_analysis(thunk)
    progress.update(1)

    progress.set_postfix_str(f"{name}: checks")
    flat = case.flat(out)
    if peer.keys != "own" or name == "numpy":
        res["tree_error"] = checks.tree_error(flat, ctx)
    res["out_bytes"] = int(sum(np.asarray(a).nbytes for a in flat.values()))
    if name == "torch":  # torch's tree: its own names, and bfloat16 came back as float32
        res["out_bytes"] = int(sum(np.asarray(a).size for a in flat.values()) * ctx.dtype.itemsize)
    if name == "jinit":
        ref["digests"] = {p: measure.digest(a) for p, a in flat.items()}
        if nbytes <= KEEP_REFERENCE_BYTES:
            ref["arrays"] = {p: np.asarray(a) for p, a in flat.items()}
        ref["stats"] = {p: measure.leaf_stats(a) for p, a in flat.items()}
        res["bit_identical"], res["check"] = True, "reference"
    elif peer.keys == "path" and "digests" in ref:
        differ = [p for p, a in flat.items() if measure.digest(a) != ref["digests"].get(p)]
        res["bit_identical"] = not differ
        res["leaves_differ"] = differ
        res["check"] = "bit-identical"
        if differ:
            res["check"] = f"NOT bit-identical: {len(differ)}/{len(flat)} leaves differ"
            if "arrays" in ref:
                ulp = max(measure.max_ulp_diff(flat[p], ref["arrays"][p]) for p in differ)
                res["max_ulp_diff"] = ulp
                res["check"] += f" by <= {ulp} ulp" if ulp <= 16 else " (different draws)"
            res["check"] += f", e.g. {differ[0]}"
    elif peer.keys == "own" and "stats" in ref and not res.get("tree_error") and name != "torch":
        worst, ok, where = checks.compare_stats(
            {p: measure.leaf_stats(a) for p, a in flat.items()}, ref["stats"]
        )
        res["bit_identical"] = None
        res["stats_max_rel_std_diff"] = worst
        res["stats_ok"] = ok
        res["check"] = (
            f"n/a (own keys); per-leaf std matches jinit's, worst {worst:.2%} ({where})"
            if ok
            else f"n/a (own keys); STATS DIFFER: |std/jinit-1| = {worst:.2%} at {where}"
        )
    else:
        res["bit_identical"] = None
        res["check"] = "n/a (own scheme and names)" if peer.keys == "own" else "n/a"
    del flat, out
    gc.collect()

    times = []
    cpu0 = sum(psutil.Process().cpu_times()[:4])
    for i in range(repeats):
        progress.set_postfix_str(f"{name}: warm {i + 1}/{repeats}")
        t, out = measure.timed(thunk, case.block)
        del out
        times.append(t)
        progress.update(1)
    res["cpu_util"] = (sum(psutil.Process().cpu_times()[:4]) - cpu0) / sum(times)
    res["warm_all_s"] = times
    res["warm_s"] = statistics.median(times)

    progress.set_postfix_str(f"{name}: memory")
    gc.collect()
    with measure.PeakMemory() as pm:
        out = thunk()
        case.block(out)
    del out
    res["peak_rss_bytes"] = pm.rss_delta
    res["peak_rss_over_param_bytes"] = pm.rss_delta / nbytes
    res["device_peak_bytes"] = pm.device_peak
    progress.update(1)
    del thunk
    gc.collect()
    return res


def run_abstract(name: str, ctx: Context, need: int, avail: int) -> dict[str, Any]:
    """Compile without executing (jit peers), or report what a run would need."""
    peer = PEERS[name]
    res: dict[str, Any] = {"peer": name, "label": peer.label, "keys": peer.keys}
    if name not in (*JINIT_GROUP, "flax", "flax-threefry", "jax-jit", "fill"):  # the jit peers
        res |= {
            "status": "abstract",
            "note": f"not run: would need ~{need / 1e9:.1f} GB of "
            f"host RAM, {avail / 1e9:.1f} GB available",
        }
        return res
    case = PEERS[name].build(ctx)
    res["label"] = case.label or peer.label
    jax.clear_caches()
    thunk = case.make()
    if not isinstance(thunk, Compiled):
        raise TypeError(f"abstract run of {name!r}: expected a compiled jit peer.")
    res |= {
        "status": "abstract",
        "compile_s": thunk.compile_s,
        "sharded": case.sharded,
        "memory_analysis": _memory_analysis(thunk),
        "notes": case.notes,
        "note": "compiled, not executed (tree too large for this machine)",
    }
    return res


def run(
    preset: str,
    dtype: str,
    peers: list[str],
    repeats: int = 3,
    mesh: str | None = None,
    seed: int = 0,
    abstract: bool = False,
    quiet: bool = False,
    *,
    layers: int | None = None,
    scan: bool = False,
    fresh_cold: bool = True,
    cold_repeats: int = 1,
    cache: str | None = "auto",
) -> dict[str, Any]:
    """Every peer on `preset` (`layers` deep; `scan`: its blocks under one ``nn.scan``, see
    :meth:`bench.presets.Preset.with_scan`): first cold in fresh processes (see
    :mod:`bench.fresh`; skipped when `fresh_cold` is False), then in this process: cold after
    ``jax.clear_caches()``, warm, memory and correctness."""
    from tqdm import tqdm

    jax.config.update("jax_enable_compilation_cache", False)
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"`--peers`: unknown {unknown}; choose from {list(PEERS)}.")
    spec = PRESETS[preset].with_layers(layers).with_scan(scan)
    np_dtype = trees.np_dtype(dtype)
    n = spec.num_params()
    nbytes = n * np_dtype.itemsize
    need, avail = 2 * nbytes, measure.available_bytes()
    too_big = need > RAM_FRACTION * avail
    mode = "abstract" if (abstract or too_big) else "measured"
    if too_big and not abstract:
        print(
            f"[bench] {spec.name} {dtype}: {nbytes / 1e9:.1f} GB of parameters; a run needs "
            f"~{need / 1e9:.1f} GB and {avail / 1e9:.1f} GB is available: running abstractly "
            f"(compile + memory_analysis only, nothing materialised).",
            file=sys.stderr,
        )
    cold_by_peer = {}
    if fresh_cold:  # before this process initialises a backend (see bench.fresh)
        cold_by_peer = fresh.run_fresh(
            [p for p in peers if not PEERS[p].missing()],
            preset,
            dtype,
            layers=layers,
            scan=scan,
            mesh=mesh,
            seed=seed,
            repeats=cold_repeats,
            cache=cache,
            compile_only=mode == "abstract",
            quiet=quiet,
        )
    ctx = Context(spec, np_dtype, seed, trees.make_mesh(mesh))
    result: dict[str, Any] = {
        "preset": spec.name,
        "description": spec.description,
        "dtype": dtype,
        "num_params": n,
        "param_bytes": nbytes,
        "num_leaves": len(ctx.shapes),
        "scan": scan,
        "repeats": repeats,
        "cold_repeats": cold_repeats if fresh_cold else 0,
        "persistent_cache_runs": bool(fresh_cold and cache),
        "mesh": mesh,
        "seed": seed,
        "machine": measure.machine(),
        "available_ram_bytes": avail,
        "mode": mode,
        "peers": [],
    }
    order = ["jinit"] + [p for p in peers if p != "jinit"] if "jinit" in peers else list(peers)
    ref: dict[str, Any] = {}
    with tqdm(
        total=len(order) * (repeats + 2),
        desc=f"{spec.name} {dtype}",
        file=sys.stderr,
        disable=quiet or result["mode"] == "abstract",
    ) as progress:
        for name in order:
            try:
                if result["mode"] == "abstract":
                    res = run_abstract(name, ctx, need, avail)
                else:
                    res = run_peer(name, ctx, repeats, ref, nbytes, progress)
                    res.setdefault("status", "ok")
            except Exception as e:  # one failing peer must not lose the others' numbers
                traceback.print_exc(file=sys.stderr)
                res = {
                    "peer": name,
                    "label": PEERS[name].label,
                    "status": "error",
                    "note": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}",
                }
            if res.get("status") in ("skipped", "error"):
                print(f"[bench] {name}: {res['status']}: {res['note']}", file=sys.stderr)
            result["peers"].append(res | cold_by_peer.get(name, {}))
    ref.clear()
    _derive(result)
    return result


def _derive(result: dict[str, Any]) -> None:
    """Throughputs and ratios against jinit and the fill limit, all from this run."""
    by = {r["peer"]: r for r in result["peers"]}
    fill = by.get("fill", {}).get("warm_s")
    jin = by.get("jinit", {}).get("warm_s")
    for r in result["peers"]:
        w = r.get("warm_s")
        if not w:
            continue
        r["params_per_s"] = result["num_params"] / w
        r["gb_per_s"] = result["param_bytes"] / w / 1e9
        r["fill_fraction"] = fill / w if fill else None
        r["x_slower_than_jinit"] = w / jin if jin else None
    summary: dict[str, Any] = {}
    if jin:
        for other in ("flax", "flax-threefry", "torch", "jax-jit", "jax-eager", "numpy"):
            if by.get(other, {}).get("warm_s"):
                summary[f"warm_speedup_vs_{other}"] = by[other]["warm_s"] / jin
    # Cold: the fresh-process figure where jinit has one, else the in-process one.
    cold = "fresh_cold_s" if by.get("jinit", {}).get("fresh_cold_s") else "cold_s"
    if by.get("jinit", {}).get(cold):
        summary["cold_kind"] = "fresh process" if cold == "fresh_cold_s" else "in-process"
        for other in ("flax", "flax-threefry", "jax-jit", "torch"):
            if by.get(other, {}).get(cold):
                summary[f"cold_jinit_over_{other}"] = by["jinit"][cold] / by[other][cold]
    if by.get("jinit", {}).get("peak_rss_over_param_bytes") is not None:
        summary["jinit_peak_rss_over_param_bytes"] = by["jinit"]["peak_rss_over_param_bytes"]
    result["summary"] = summary
