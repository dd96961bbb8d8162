"""``python -m bench``: initialisation throughput of a large parameter tree, jinit against peers.

With no arguments: the GPT-2-small tree (163M params, float32) with Flax's default schemes, on
the devices present, every peer; a table on stdout, JSON and a plot in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from bench.presets import PRESETS, parse_mesh

PEER_NAMES = ("jinit", "flax", "jax-jit", "jax-eager", "torch", "numpy", "fill")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
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
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--repeats", "-r", type=int, default=3, help="warm repeats (median)")
    ap.add_argument(
        "--peers",
        default=",".join(PEER_NAMES),
        help=f"comma-separated peers (default {','.join(PEER_NAMES)}; also "
        "jinit-api: init_tree called directly, per-call planning included)",
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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--json",
        default=None,
        help="result JSON (default bench/results/<preset>-<dtype>[-mesh].json; 'none' to skip)",
    )
    ap.add_argument("--plot", default=None, help="plot PNG (default next to the JSON; 'none')")
    ap.add_argument("--list", action="store_true", help="list the presets and exit")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1; got {args.repeats}")
    return args


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


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.list:
        for name, p in PRESETS.items():
            print(f"{name:12s} {p.num_params() / 1e6:9.1f}M params  {p.description}")
        return {}
    _set_devices(args)
    from bench import report, run  # imports jax, after XLA_FLAGS is final

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    result = run.run(
        args.preset,
        args.dtype,
        peers,
        args.repeats,
        args.mesh,
        args.seed,
        args.abstract,
        args.quiet,
    )
    result["command"] = (
        "python -m bench" + (" " + shlex.join(sys.argv[1:] if argv is None else argv)).rstrip()
    )
    print(report.header(result))
    print(report.table(result))
    print(report.summary(result))
    stem = f"{args.preset}-{args.dtype}" + (f"-mesh{args.mesh}" if args.mesh else "")
    json_path = args.json or os.path.join("bench", "results", stem + ".json")
    if json_path != "none":
        report.save_json(result, json_path)
        print(f"[bench] wrote {json_path}", file=sys.stderr)
    plot_path = (
        args.plot
        or os.path.splitext(
            json_path if json_path != "none" else os.path.join("bench", "results", stem)
        )[0]
        + ".png"
    )
    if plot_path != "none" and result["mode"] == "measured":
        report.plot(result, plot_path)
        print(f"[bench] wrote {plot_path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
