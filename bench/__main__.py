"""python -m bench: time to a large parameter tree's initial values, jinit against peers.

With no subcommand (the main job): the GPT-2-small tree (163M params, float32) with Flax's default
schemes, on the devices present, every peer. The table leads with the cold start a user waits
for: each of jinit, Flax (also with jax's Threefry GPU kernel), jax.nn.initializers and PyTorch
in a fresh process, from spawn to parameters on the device, and again in a second process that
finds a warm persistent compilation cache; then, in this process, the warm time, memory and
bit-identity. --depths 12,24,48 instead sweeps the depth and plots compile time against it;
--aot tpu:v5e:2x2 compiles each peer for a TPU topology without a TPU. --scan lays a gpt2 or
llama tree out as pods run it (the blocks under one nn.scan, stacked on a leading layer axis),
with or without --depths/--aot; its outputs are named <preset>-scan.

Subcommands (each takes --help):
  depth       the depth sweep: python -m bench --depths 12,24,48, the main job's options
  kernels     the sampling kernels against jax.random and the fill of the same bytes
  orthogonal  orthogonal's methods as a ratio to one matmul of the same size
  digest      digests of a reference tree and of raw draws, to compare backends
  surgery     keep= (a new head and LoRA adapters on a trained tree) against a from-scratch init
  report      render saved JSON runs as RESULTS.md sections

Outputs (JSON, PNG) go to the git-ignored bench/out/ unless --json/--plot name a path;
--record writes them to bench/results/ and the run's section into bench/RESULTS.md instead.
Current figures, with their commands and commits: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Callable

from bench import depth
from bench.aot import (
    AOT_PEERS,
    DEFAULT_AOT_PEERS,
    DEFAULT_GPU_PEERS,
    libtpu_missing,
    parse_target,
)
from bench.cold import COLD_PEERS
from bench.depth import DEFAULT_PEERS
from bench.presets import PRESETS, parse_mesh

PEER_NAMES = (
    "jinit",
    "jinit-per-leaf",
    "flax",
    "flax-threefry",
    "jax-jit",
    "jax-eager",
    "torch",
    "numpy",
    "fill",
)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "out")  # git-ignored: the default
RESULTS_DIR = os.path.join(HERE, "results")  # tracked: --record
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
# Subcommands with their own options: name -> the module whose main(argv) runs it.
SUBCOMMANDS = {
    "kernels": "bench.kernels",
    "orthogonal": "bench.orthogonal",
    "digest": "bench.digest",
    "surgery": "bench.surgery",
    "report": "bench.report",
}
DEPTHS = "12,24,48"  # `python -m bench depth`'s default sweep


def parse(argv: list[str] | None, sweep: bool = False) -> argparse.Namespace:
    """The main job's options; ``sweep``: those of ``python -m bench depth`` (the same, with
    ``--depths`` set by default)."""
    ap = argparse.ArgumentParser(
        prog="python -m bench depth" if sweep else "python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--preset",
        "-p",
        default="gpt2-small",
        choices=sorted(PRESETS),
        help="the parameter tree (default gpt2-small)",
    )
    ap.add_argument(
        "--layers", type=int, default=None, help="override a gpt2/llama preset's layer count"
    )
    ap.add_argument(
        "--scan",
        action="store_true",
        help="a gpt2/llama preset's blocks under one nn.scan (params/h/..., params/layers/... "
        "with a leading layer axis), each layer drawn with one layer's fans; outputs "
        "<preset>-scan",
    )
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--repeats", "-r", type=int, default=3, help="warm repeats (median)")
    ap.add_argument(
        "--peers",
        default=None,
        help=f"comma-separated peers (default {','.join(PEER_NAMES)}; also "
        "jinit-api: init_tree called directly, per-call planning included; jinit-streams: "
        "group=True on any platform; with --depths "
        f"default {','.join(DEFAULT_PEERS)}, any of {','.join(COLD_PEERS)})",
    )
    ap.add_argument(
        "--depths",
        default=DEPTHS if sweep else None,
        help="sweep the depth instead, e.g. '12,24,48': fresh-process cold and compile time "
        "per peer at each layer count (a gpt2/llama preset), a table and a plot"
        + (f" (default {DEPTHS})" if sweep else ""),
    )
    ap.add_argument(
        "--cold-repeats", type=int, default=1, help="fresh processes per cold figure (median)"
    )
    ap.add_argument(
        "--cache",
        default="auto",
        help="the persistent-cache runs (two more fresh processes per jax peer): 'auto' (a "
        "fresh temporary folder, removed after), 'none' (skip), or a folder (DIR/<peer>)",
    )
    ap.add_argument(
        "--no-fresh",
        action="store_true",
        help="skip the fresh-process cold runs (in-process figures only)",
    )
    ap.add_argument(
        "--devices",
        type=int,
        default=None,
        help="simulate N host devices (sets XLA_FLAGS before jax is imported)",
    )
    ap.add_argument(
        "--mesh",
        default=None,
        help="'8' (axis model) or '2x4' (data x model): shard big kernels; on CPU "
        "implies --devices to match",
    )
    ap.add_argument(
        "--abstract",
        action="store_true",
        help="compile and report memory_analysis without materialising",
    )
    ap.add_argument(
        "--aot",
        default=None,
        metavar="tpu:TOPOLOGY",
        help="compile each peer for a TPU topology or a GPU without one (e.g. tpu:v5e:2x2, "
        "tpu:v5e:4x4 with --mesh 4x4, cuda:h100, cuda:h100:1x1x8; GPUs: h100, h100-pcie, h200, "
        "a100 (40 GB), a100-80, b200; needs the 'aot' extra): "
        "compile time, per-chip memory, "
        f"XLA's cost model; peers (default {','.join(DEFAULT_AOT_PEERS)}) among "
        f"{','.join(AOT_PEERS)}",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--json",
        default=None,
        help="result JSON (default bench/out/<preset>-<dtype>[-mesh].json, or "
        "bench/out/depth-<preset>-<dtype>.json; 'none' to skip)",
    )
    ap.add_argument("--plot", default=None, help="plot PNG (default next to the JSON; 'none')")
    ap.add_argument(
        "--record",
        action="store_true",
        help="record the run: JSON and PNG into bench/results/, its section into "
        "bench/RESULTS.md (replacing the same preset's previous section)",
    )
    ap.add_argument("--wide", action="store_true", help="every column of the table")
    ap.add_argument("--list", action="store_true", help="list the presets and exit")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1; got {args.repeats}")
    if args.cold_repeats < 1:
        ap.error(f"--cold-repeats must be >= 1; got {args.cold_repeats}")
    try:
        args.depths = depth.parse_depths(args.depths) if args.depths else None
        PRESETS[args.preset].with_layers(args.layers).with_scan(args.scan)
    except ValueError as e:
        ap.error(str(e))
    if args.depths and args.layers:
        ap.error("--layers and --depths both set the depth; give one.")
    if args.depths and "layers" not in PRESETS[args.preset].config:
        ap.error(f"--depths needs a gpt2 or llama preset; got {args.preset!r}.")
    if args.aot:
        try:
            parse_target(args.aot)
        except ValueError as e:
            ap.error(str(e))
        if missing := libtpu_missing(args.aot):
            ap.error(f"--aot: {missing}.")
    default = DEFAULT_PEERS if args.depths else PEER_NAMES
    if args.aot:
        default = DEFAULT_GPU_PEERS if args.aot.startswith("cuda:") else DEFAULT_AOT_PEERS
    args.peers = [p.strip() for p in (args.peers or ",".join(default)).split(",") if p.strip()]
    known: tuple[str, ...] = (
        COLD_PEERS if args.depths else (*PEER_NAMES, "jinit-api", "jinit-streams")
    )
    known = tuple(AOT_PEERS) if args.aot else known
    if not args.peers or any(p not in known for p in args.peers):
        what = "with --depths (fresh processes) " if args.depths else ""
        ap.error(f"--peers {what}must be among {','.join(known)}; got {','.join(args.peers)}.")
    if args.record and (args.json or args.plot):
        ap.error("--record chooses the output paths; give it or --json/--plot, not both.")
    args.cache = None if args.cache == "none" else args.cache
    return args


def _skip_absent_tpu() -> None:
    """With libtpu or the CUDA plugin installed (the 'aot' extra: the compilers, used without a
    device) on a machine without a TPU or a GPU, jax would probe for one at start-up (seconds,
    and errors printed): list the platforms present instead, unless the user chose them
    (``JAX_PLATFORMS``)."""
    import glob
    import importlib.util

    if os.environ.get("JAX_PLATFORMS") or importlib.util.find_spec("libtpu") is None:
        return
    if glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):  # a TPU VM's chips
        return
    plugin = any(importlib.util.find_spec(f"jax_cuda{v}_plugin") for v in (12, 13))
    cuda = plugin and bool(glob.glob("/dev/nvidia[0-9]*"))  # a GPU, not only its compiler
    os.environ["JAX_PLATFORMS"] = "cuda,cpu" if cuda else "cpu"


def _set_devices(args: argparse.Namespace) -> None:
    n = args.devices
    if n is None and args.mesh:
        dims, _ = parse_mesh(args.mesh)
        n = 1
        for d in dims:
            n *= d
    if n:
        flags = os.environ.get("XLA_FLAGS", "")
        flags = " ".join(
            f for f in flags.split() if not f.startswith("--xla_force_host_platform_device_count")
        )
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def _outputs(args: argparse.Namespace, stem: str) -> tuple[str | None, str | None]:
    """The JSON and PNG paths: --json/--plot, else bench/out/<stem>.* (bench/results/<stem>.*
    with --record); None for 'none'."""
    folder = RESULTS_DIR if args.record else OUT_DIR
    json_path = args.json or os.path.join(folder, stem + ".json")
    plot_path = args.plot or os.path.join(folder, stem + ".png")
    if args.json and not args.plot and json_path != "none":
        plot_path = os.path.splitext(json_path)[0] + ".png"
    return (None if json_path == "none" else json_path), (
        None if plot_path == "none" else plot_path
    )


def _command(argv: list[str]) -> str:
    return "python -m bench" + (" " + shlex.join(argv)).rstrip()


def main(argv: list[str] | None = None) -> dict | int | None:
    """``python -m bench [SUBCOMMAND] [options]``: a subcommand's result, else the main job's."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    args = parse(argv[1:], sweep=True) if argv[:1] == ["depth"] else parse(argv)
    from bench import report

    if args.list:
        for name, p in PRESETS.items():
            print(f"{name:12s} {report.count(p.num_params()):>8s} params  {p.description}")
        return {}
    if args.aot:
        return _aot(args, argv)
    _skip_absent_tpu()
    _set_devices(args)
    if args.depths:
        kw = {"repeats": args.cold_repeats, "seed": args.seed, "mesh": args.mesh}
        kw |= {"quiet": args.quiet, "scan": args.scan}
        result = depth.sweep(args.preset, args.dtype, args.peers, args.depths, **kw)
        result["command"] = _command(argv)
        print(report.depth_header(result))
        print(report.depth_table(result))
        json_path, plot_path = _outputs(args, f"depth-{result['preset']}-{args.dtype}")
        _write(result, json_path, plot_path, report.depth_plot)
        return result

    from bench import run  # imports jax, after XLA_FLAGS is final

    result = run.run(
        args.preset,
        args.dtype,
        args.peers,
        args.repeats,
        args.mesh,
        args.seed,
        args.abstract,
        args.quiet,
        layers=args.layers,
        scan=args.scan,
        fresh_cold=not args.no_fresh,
        cold_repeats=args.cold_repeats,
        cache=args.cache,
    )
    result["command"] = _command(argv)
    print(report.header(result))
    print(report.table(result, wide=args.wide))
    print(report.LEGEND + ".")
    if cold_table := report.cold_table(result):
        print(cold_table)
    print(report.summary(result))
    stem = f"{result['preset']}-{args.dtype}" + (f"-mesh{args.mesh}" if args.mesh else "")
    json_path, plot_path = _outputs(args, stem)
    _write(result, json_path, plot_path if result["mode"] == "measured" else None, report.plot)
    if args.record:
        report.record_section(RESULTS_MD, stem, report.markdown_section(result))
        print(f"[bench] recorded {stem} in {os.path.relpath(RESULTS_MD)}", file=sys.stderr)
    return result


def _aot(args: argparse.Namespace, argv: list[str]) -> dict:
    """``--aot``: every peer compiled for a TPU topology, each in a fresh process."""
    from bench import aot, report

    layers: list[int | None] = list(args.depths) if args.depths else [args.layers]
    result = aot.sweep(
        args.aot, args.preset, args.dtype, args.peers, args.mesh, layers, args.quiet, args.scan
    )
    result["command"] = _command(argv)
    print(report.aot_header(result))
    print(report.aot_table(result))
    target = args.aot.replace(":", "-")
    stem = f"aot-{target}-{result['preset']}-{args.dtype}"  # '<preset>-scan' when scanned
    stem += f"-mesh{args.mesh}" if args.mesh else ""
    json_path, _ = _outputs(args, stem)
    _write(result, json_path, None, lambda r, p: None)
    return result


def _write(
    result: dict, json_path: str | None, plot_path: str | None, plot: Callable[[dict, str], None]
) -> None:
    from bench import report

    if json_path:
        report.save_json(result, json_path)
        print(f"[bench] wrote {os.path.relpath(json_path)}", file=sys.stderr)
    if plot_path:
        plot(result, plot_path)
        print(f"[bench] wrote {os.path.relpath(plot_path)}", file=sys.stderr)


if __name__ == "__main__":
    result = main()
    sys.exit(result if isinstance(result, int) else 0)  # digest: 1 where a portable row differs
