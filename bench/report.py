"""Every table and plot the benchmarks print: the main job's, the depth sweep's, the TPU
compiler's (``--aot``), the sampling kernels' and orthogonal's; JSON and RESULTS.md sections.

``python -m bench report RESULT.json [...] [-o FILE]`` renders saved main-job runs again.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
from typing import Any


def _fmt(x: Any, spec: str, none: str = "-", suffix: str = "") -> str:
    return none if x is None else format(x, spec) + suffix


def _gb(b: Any) -> str:
    return "-" if b is None else f"{b / 1e9:.2f}"


def render(head: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """Aligned columns (the first left-aligned, the last left ragged), or a markdown table."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head[:-1])]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head[:-1]) + "  " + head[-1]]
    lines += [fmt.format(*row[:-1]) + "  " + row[-1] for row in rows]
    return "\n".join(lines)


def count(n: float) -> str:
    """A parameter count a person reads at a glance: 512, 12.3K, 163.0M, 6.74B."""
    for div, unit, spec in ((1e9, "B", ".2f"), (1e6, "M", ".1f"), (1e3, "K", ".1f")):
        if n >= div:
            return f"{n / div:{spec}}{unit}"
    return f"{n:.0f}"


# The compact table's columns (indices into the wide table's): about 105 characters wide.
COMPACT = (0, 1, 2, 3, 4, 9, 12, 14)
CHECK_WIDTH = 24


def table(result: dict[str, Any], markdown: bool = False, wide: bool = False) -> str:
    """One row per peer: fresh-process cold first, then warm, throughput, ratios, memory,
    correctness. Compact by default: fresh-process cold, its compile, cold with a warm persistent
    cache, warm, warm time over jinit's, peak RSS over the parameter bytes, check (cut short);
    ``wide`` (and markdown) adds throughput, CPUs, in-process cold and XLA's memory figures."""
    head = [
        "peer",
        "cold s",
        "of which compile s",
        "cold+cache s",
        "warm s",
        "in-proc cold s",
        "Mparam/s",
        "GB/s",
        "of fill",
        "x jinit",
        "CPUs",
        "peak RSS GB",
        "RSS/bytes",
        "XLA out+temp GB",
        "check",
    ]
    rows = []
    for r in result["peers"]:
        ma = r.get("memory_analysis") or {}
        xla = (ma["output_size_in_bytes"] + ma["temp_size_in_bytes"]) if ma else None
        check = r.get("check") or r.get("note") or r.get("status", "")
        if r.get("status") in ("skipped", "error", "abstract") and r.get("note"):
            check = f"{r['status']}: {r['note']}"
        if r.get("fresh_error"):
            check += f"; fresh-process cold failed: {r['fresh_error']}"
        rows.append(
            [
                r["label"],
                _fmt(r.get("fresh_cold_s"), ".2f"),
                _fmt(r.get("fresh_compile_s"), ".2f"),
                _fmt(r.get("fresh_cached_cold_s"), ".2f"),
                _fmt(r.get("warm_s"), ".3f"),
                _fmt(r.get("cold_s"), ".2f"),
                _fmt(r.get("params_per_s") and r["params_per_s"] / 1e6, ".0f"),
                _fmt(r.get("gb_per_s"), ".2f"),
                _fmt(r.get("fill_fraction"), ".0%"),
                _fmt(r.get("x_slower_than_jinit"), ".2f"),
                _fmt(r.get("cpu_util"), ".1f"),
                _gb(r.get("peak_rss_bytes")),
                _fmt(r.get("peak_rss_over_param_bytes"), ".2f"),
                _gb(xla),
                check,
            ]
        )
    if not (wide or markdown):
        short = lambda c: c if len(c) <= CHECK_WIDTH else c[: CHECK_WIDTH - 3] + "..."
        head = ["peer", "cold s", "compile s", "cached s", "warm s", "warm x", "RSS/B", "check"]
        rows = [[row[i] for i in COMPACT[:-1]] + [short(row[-1])] for row in rows]
    return render(head, rows, markdown)


PHASES = ("startup", "import", "backend", "build", "trace", "lower", "compile", "run")


def cold_table(result: dict[str, Any], markdown: bool = False) -> str:
    """Where each peer's fresh-process cold start goes, phase by phase (seconds)."""
    rows = []
    for r in result["peers"]:
        ph = r.get("fresh_phases")
        if not ph:
            continue
        rows.append(
            [r["label"]]
            + [_fmt(ph.get(p), ".2f") for p in PHASES]
            + [
                _fmt(r["fresh_cold_s"], ".2f"),
                _fmt(r.get("fresh_cache_fill_s"), ".2f"),
                _fmt(r.get("fresh_cached_compile_s"), ".2f"),
                _fmt(r.get("fresh_cached_cold_s"), ".2f"),
                f"on {r.get('fresh_device')}"
                + (f"; {r['fresh_note']}" if r.get("fresh_note") else ""),
            ]
        )
    if not rows:
        return ""
    head = [
        "fresh process",
        *PHASES,
        "total",
        "cache fill",
        "cached compile",
        "cached total",
        "note",
    ]
    return render(head, rows, markdown)


LEGEND = (
    "cold = a fresh process, from spawn to parameters on the device (jax's persistent cache off); "
    "cold+cache = a second fresh process sharing a warm persistent compilation cache; in-proc "
    "cold = jit, compile and first run after jax.clear_caches() in one process"
)


def header(result: dict[str, Any]) -> str:
    m = result["machine"]
    n_cold = result.get("cold_repeats")
    cold = f", fresh-process cold = median of {n_cold}" if n_cold else ""
    return (
        f"{result['preset']} ({result['description']}), {result['dtype']}: "
        f"{count(result['num_params'])} params in {result['num_leaves']} leaves, "
        f"{result['param_bytes'] / 1e9:.3f} GB; mesh {result['mesh'] or 'none'}"
        f"{' (XLA memory figures are per device)' if result['mesh'] else ''}; "
        f"{result['mode']}; warm = median of {result['repeats']}{cold}"
        f"\nmachine: {m['cpu']}, {m['cpu_affinity']} cores, "
        f"{m['ram_gib']} GiB RAM, {m['backend']} x{m['device_count']}; jax {m['jax']}, "
        f"flax {m.get('flax')}, torch {m.get('torch')}, numpy {m['numpy']}"
    )


NAMES = {"flax": "Flax", "flax-threefry": "Flax-threefry", "jax-jit": "jax.nn", "torch": "PyTorch"}


def summary(result: dict[str, Any]) -> str:
    """One line of ratios, each worded so that it reads true: "jinit cold = 0.62x Flax's,
    0.80x PyTorch's cold", "jinit warm 3.10x faster than flax", "jinit warm 1.90x slower than
    torch" (never "0.53x faster")."""
    s = result.get("summary") or {}
    kind = "" if s.get("cold_kind") == "fresh process" else " (in-process)"
    cold = [
        f"{s[f'cold_jinit_over_{k}']:.2f}x {name}'s"
        for k, name in NAMES.items()
        if s.get(f"cold_jinit_over_{k}")
    ]
    parts = [f"jinit cold{kind} = {', '.join(cold)} cold"] if cold else []
    for k, v in s.items():
        if k.startswith("warm_speedup_vs_") and v:
            other = k.removeprefix("warm_speedup_vs_")
            word = f"{v:.2f}x faster" if v >= 1 else f"{1 / v:.2f}x slower"
            parts.append(f"jinit warm {word} than {other}")
    if s.get("jinit_peak_rss_over_param_bytes") is not None:
        parts.append(f"jinit peak RSS = {s['jinit_peak_rss_over_param_bytes']:.2f}x param bytes")
    return "; ".join(parts)


# --- the depth sweep (``python -m bench depth``) ---------------------------------------------


def depth_header(result: dict[str, Any]) -> str:
    rows = [r for r in result["rows"] if r.get("device")]
    device = rows[0]["device"] if rows else "?"
    return (
        f"depth sweep of {result['preset']} {result['dtype']}: a fresh process per point, jax's "
        f"persistent cache off, median of {result['repeats']}; seconds from spawn to params "
        f"on {device} (cold) and XLA compile within it"
    )


def depth_table(result: dict[str, Any], markdown: bool = False) -> str:
    """Depth down the side, each peer's cold and compile seconds across, the ratio last."""
    peers, depths = result["peers"], result["depths"]
    kinds = ("cold", "compile")
    head = ["depth", "params", "leaves", *(f"{p} {w} s" for p in peers for w in kinds)]
    by = {(r["depth"], r["peer"]): r for r in result["rows"]}
    rows = []
    for d in depths:
        first = by[d, peers[0]]
        cells = [str(d), count(first["num_params"]), str(first["num_leaves"])]
        rows.append(cells + [_fmt(by[d, p].get(f"{w}_s"), ".2f") for p in peers for w in kinds])
    if len(depths) > 1:
        rat = result["ratios"]
        cells = [f"{depths[-1]}/{depths[0]}", "", ""]
        rows.append(cells + [_fmt(rat[p][w], ".2f", suffix="x") for p in peers for w in kinds])
    errors = [
        f"{r['peer']} at depth {r['depth']}: {r['error']}" for r in result["rows"] if r["error"]
    ]
    return "\n".join([render(head, rows, markdown), *errors])


def depth_plot(result: dict[str, Any], path: str) -> None:
    """Compile seconds (left) and cold seconds (right) against depth, one line per peer."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, what in zip(axes, ("compile", "cold"), strict=True):
        for p in result["peers"]:
            pts = [
                (r["depth"], r[f"{what}_s"])
                for r in result["rows"]
                if r["peer"] == p and r[f"{what}_s"] is not None
            ]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=p)
        ax.set_xticks(result["depths"])
        ax.set_xlabel("layers")
        ax.set_ylabel(f"{what} seconds" + (" (fresh process)" if what == "cold" else ""))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(depth_header(result), fontsize=8)
    _save(fig, path)


# --- the TPU compiler, deviceless (``python -m bench --aot tpu:TOPOLOGY``) --------------------


def aot_header(result: dict[str, Any]) -> str:
    mesh = f", mesh {result['mesh']}" if result["mesh"] else ", one chip"
    return (
        f"{result['preset']} {result['dtype']} compiled for {result['target']}{mesh} "
        f"(deviceless; {result['params_bytes'] / 2**20:.0f} MiB of parameters); "
        f"{result.get('command', '')}"
    )


AOT_HEAD = (
    "layers", "peer", "trace+lower s", "compile s", "compile CPU s", "compile / fill",
    "compile / Flax", "run ms", "run / fill", "bytes accessed / shard", "output / shard",
    "temp / shard", "kernels", "distinct kernels", "samplers", "loops",
)  # fmt: skip


def aot_table(result: dict[str, Any], markdown: bool = True) -> str:
    """One row per (depth, peer), ratios against the fill (and Flax) of that depth."""
    rows = []
    for row in result["rows"]:
        if "error" in row:
            rows.append(
                [str(row["layers"]), row["peer"], f"error: {row['error']}"]
                + [""] * (len(AOT_HEAD) - 3)
            )
            continue
        same = [r for r in result["rows"] if r["layers"] == row["layers"] and "error" not in r]
        fill = next((r for r in same if r["peer"] == "fill"), None)
        # on GPU the Flax to beat is Flax with jax's CUDA hash kernel
        flax = next((r for r in same if r["peer"] == "flax-gpu-kernel"), None) or next(
            (r for r in same if r["peer"] == "flax"), None
        )
        ratio = lambda a, b: f"{a / b:.2f}x" if b and a > 0 and b > 0 else "-"
        shard = row["shard_bytes"]
        rows.append(
            [
                str(row["layers"]),
                row["peer"],
                f"{row['lower_s']:.2f}",
                f"{row['compile_s']:.2f}",
                f"{row['compile_cpu_s']:.2f}",
                ratio(row["compile_s"], fill and fill["compile_s"]),
                ratio(row["compile_s"], flax and flax["compile_s"]),
                # (a hardware RNG's run time is not in the cost model, which then reports < 0)
                f"{row['run_s'] * 1e3:.2f}" if row["run_s"] > 0 else "n/a",
                ratio(row["run_s"], fill and fill["run_s"]),
                f"{row['bytes_accessed'] / shard:.2f}x",
                f"{row['output_bytes'] / shard:.2f}x",
                f"{row['temp_bytes'] / shard:.3f}x",
                str(row["kernels"]),
                str(row.get("distinct_kernels", "-")),  # (GPU: each one LLVM and ptxas run)
                str(row["samplers"]),
                str(row["loops"]),
            ]
        )
    return render(list(AOT_HEAD), rows, markdown)


# --- sampling kernels and orthogonal (``python -m bench kernels``, ``... orthogonal``) -------


def kernels_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """One row per (distribution, dtype, shape): jinit, jax.random and the fill of the same bytes,
    then portable mode, then each one's compile + first run."""
    head = [
        "dist", "dtype", "shape", "jinit ms", "jax ms", "fill ms", "jinit GB/s", "x jax",
        "of fill", "portable ms", "portable x jax", "cold s: jax", "jinit", "portable",
    ]  # fmt: skip
    cells = [
        [
            r["dist"],
            r["dtype"],
            "x".join(map(str, r["shape"])),
            *(_fmt(r[k], ".1f") for k in ("jinit_ms", "jax_ms", "fill_ms")),
            _fmt(r["jinit_GBps"], ".2f"),
            _fmt(r["speedup_vs_jax"], ".2f"),
            _fmt(r["fraction_of_fill"], ".0%"),
            _fmt(r["portable_ms"], ".1f"),
            _fmt(r["portable_speedup_vs_jax"], ".2f"),
            *(_fmt(r[k], ".3f") for k in ("jax_cold_s", "jinit_cold_s", "portable_cold_s")),
        ]
        for r in rows
    ]
    return render(head, cells, markdown)


ORTHOGONAL_CASES = ("jinit householder", "jinit qr", "jinit portable", "jax")


def orthogonal_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """One row per size: one matmul's seconds, each method as a ratio to it, orthogonality."""
    head = ["n", "matmul s", *(f"{c} x matmul" for c in ORTHOGONAL_CASES)]
    head += ["max|QtQ-I| householder", "max|QtQ-I| qr", "max|QtQ-I| portable"]
    cells = [
        [
            str(r["n"]),
            f"{r['seconds']['matmul']:.3f}",
            *(f"{r['ratio_to_matmul'][c]:.2f}" for c in ORTHOGONAL_CASES),
            *(f"{r['max_abs_QtQ_minus_I'][c]:.1e}" for c in ORTHOGONAL_CASES[:3]),
        ]
        for r in rows
    ]
    return render(head, cells, markdown)


def save_json(result: dict[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=str)


def plot(result: dict[str, Any], path: str) -> None:
    """Warm and cold seconds per peer (log scale) and GB/s against the fill limit."""
    import matplotlib.ticker

    plt = _pyplot()
    rows = [r for r in result["peers"] if r.get("warm_s")]
    if not rows:
        return
    labels = [r["label"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 0.5 * len(rows) + 2))
    y = range(len(rows))
    ax1.barh([i + 0.2 for i in y], [r["warm_s"] for r in rows], 0.4, label="warm (median)")
    ax1.barh(
        [i - 0.2 for i in y],
        [r.get("fresh_cold_s") or r.get("cold_s") or 0 for r in rows],
        0.4,
        label="cold (fresh process where measured, else in-process)",
    )
    ax1.set_yticks(list(y), labels)
    ax1.set_xscale("log")
    ax1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labels collide otherwise
    ax1.set_xlabel("seconds (log)")
    ax1.invert_yaxis()
    ax1.legend(fontsize=8)
    ax2.barh(list(y), [r["gb_per_s"] for r in rows], color="tab:green")
    ax2.set_yticks(list(y), [""] * len(rows))
    ax2.set_xlabel("GB/s written (warm)")
    ax2.invert_yaxis()
    fill = next((r["gb_per_s"] for r in rows if r["peer"] == "fill"), None)
    if fill:
        ax2.axvline(fill, color="k", ls="--", lw=1, label="fill limit")
        ax2.legend(fontsize=8)
    fig.suptitle(
        f"{result['preset']} {result['dtype']}: {count(result['num_params'])} "
        f"params, {result['param_bytes'] / 1e9:.2f} GB; {result['machine']['cpu']}",
        fontsize=9,
    )
    _save(fig, path)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str) -> None:
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def markdown_section(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"### {result['preset']} {result['dtype']}"
            + (f", mesh {result['mesh']}" if result["mesh"] else ""),
            "",
            "```",
            f"$ {result.get('command', 'python -m bench')}",
            header(result),
            "```",
            "",
            table(result, markdown=True),
            "",
            LEGEND + ".",
            "",
            cold_table(result, markdown=True),
            "",
            summary(result),
            "",
        ]
    )


def record_section(path: str, stem: str, section: str) -> None:
    """Put ``section`` into the markdown file ``path`` between ``bench:record`` markers named
    ``stem``: replacing that run's previous section, else appended; the rest is untouched."""
    begin, end = f"<!-- bench:record {stem} -->", f"<!-- /bench:record {stem} -->"
    text = pathlib.Path(path).read_text() if os.path.exists(path) else ""
    block = f"{begin}\n{section.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    pathlib.Path(path).write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench report",
        description="Render saved main-job JSON (bench/out, bench/results) as markdown sections.",
    )
    ap.add_argument("json", nargs="+")
    ap.add_argument("-o", "--out", help="write the markdown sections here (else print)")
    args = ap.parse_args(argv)
    sections = []
    for p in args.json:
        with open(p) as f:
            sections.append(markdown_section(json.load(f)))
    text = "\n".join(sections)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
