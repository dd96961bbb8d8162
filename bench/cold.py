"""Fresh-process cold start: what a user waits for, from ``python`` to parameters on the device.

``python -m bench.cold --peer jinit -p gpt2-small`` builds one peer's tree in a brand-new
interpreter and prints one JSON line on stdout; :func:`spawn` runs it from the benchmark and
:func:`measure` adds repeats and the warm-persistent-cache runs. Phases, each the wall time since
the previous one ended, so that they add up to ``total_s``:

- ``startup``: spawn, interpreter start, site imports and this module; from ``--t0``, the
  parent's clock just before it spawned this process (else the OS's process start time);
- ``import``: jax and the peer's library (jinit; flax and the model file; torch);
- ``backend``: the first device query (jax's client, CUDA context);
- ``build``: the abstract tree and rules, or the Flax module and its input, and the key;
- ``trace``, ``lower``, ``compile``: ``jax.jit(f).trace(key).lower().compile()``;
- ``run``: the first call until ``block_until_ready`` (torch: building the module, synchronised).

jax's persistent compilation cache is off unless ``--cache DIR`` turns it on with that folder.
This module imports only the standard library and :mod:`bench.presets` before its clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.presets import PRESETS

COLD_PEERS = (
    "jinit",
    "jinit-per-leaf",
    "jinit-streams",
    "flax",
    "flax-threefry",
    "jax-jit",
    "torch",
)
# jinit's schedules: the platform's (None), one kernel per leaf, streams (init_tree's `group`).
JINIT_GROUP = {"jinit": None, "jinit-per-leaf": False, "jinit-streams": True}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Clock:
    """Laps of wall time (``time.time``, comparable across processes) from `t0`."""

    def __init__(self, t0: float):
        self.t0 = self.last = t0
        self.phases: dict[str, float] = {}

    def lap(self, phase: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.phases[phase] = now - self.last
        self.last = now


def _jax_peer(args: argparse.Namespace, clock: _Clock, out: dict[str, Any]) -> None:
    import jax

    jax.config.update("jax_enable_compilation_cache", bool(args.cache))
    if args.cache:
        jax.config.update("jax_compilation_cache_dir", args.cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if args.peer == "flax-threefry":
        try:
            jax.config.update("jax_threefry_gpu_kernel_lowering", True)
        except AttributeError as e:
            raise ValueError(
                f"peer 'flax-threefry' needs the config flag `jax_threefry_gpu_kernel_lowering`; "
                f"jax {jax.__version__} has none."
            ) from e
    from bench import trees

    if args.peer in (*JINIT_GROUP, "jax-jit"):
        from bench import bodies
    else:
        from bench import models
    clock.lap("import")
    out["backend"], out["device"] = jax.default_backend(), str(jax.devices()[0])
    clock.lap("backend")

    preset = PRESETS[args.preset].with_layers(args.layers).with_scan(args.scan)
    shapes, dtype = preset.leaves(), trees.np_dtype(args.dtype)
    shardings = trees.shardings_tree(shapes, trees.make_mesh(args.mesh), preset.stack_axes)
    key = jax.random.key(args.seed)
    fn: Any
    call: tuple[Any, ...]
    if args.peer in JINIT_GROUP:
        group = JINIT_GROUP[args.peer]
        fn = bodies.jinit_body(trees.abstract_tree(shapes, dtype), shardings, group, preset.scope)
        call = (key,)
    elif args.peer == "jax-jit":
        fn, call = bodies.jax_nn_body(trees.abstract_tree(shapes, dtype), preset.scope), (key,)
    else:
        model, x = models.flax_model(preset, dtype)
        fn, call = model.init, (key, jax.numpy.zeros(x.shape, x.dtype))
    jitted = jax.jit(fn, out_shardings=shardings)
    clock.lap("build")
    traced = jitted.trace(*call)
    clock.lap("trace")
    lowered = traced.lower()
    clock.lap("lower")
    compiled = lowered.compile()
    clock.lap("compile")
    if not args.compile_only:
        jax.block_until_ready(compiled(*call))
        clock.lap("run")
    out["jax"] = jax.__version__
    if args.peer == "flax-threefry" and out["backend"] != "gpu":
        out["note"] = f"jax_threefry_gpu_kernel_lowering has no effect on {out['backend']}"


def _torch_peer(args: argparse.Namespace, clock: _Clock, out: dict[str, Any]) -> None:
    import torch

    clock.lap("import")
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"`--device cuda`: torch {torch.__version__} sees no CUDA device.")
        torch.zeros(1, device="cuda")  # creates the CUDA context
        torch.cuda.synchronize()
    out["backend"], out["device"] = device, device
    clock.lap("backend")
    from bench.torch_models import torch_model

    preset = PRESETS[args.preset].with_layers(args.layers)  # unrolled: torch has no scan
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    clock.lap("build")
    if not args.compile_only:
        torch_model(preset, tdtype, device)
        if device == "cuda":
            torch.cuda.synchronize()
        clock.lap("run")
    out["torch"], out["torch_threads"] = torch.__version__, torch.get_num_threads()


def _process_start() -> float:
    """This process's start on the ``time.time`` clock, to 10 ms (Linux's clock ticks)."""
    with open("/proc/self/stat") as f:  # field 22 (after the ')' ending the name): start ticks
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.cold", description=__doc__.split("\n")[0])
    ap.add_argument("--peer", required=True, choices=COLD_PEERS)
    ap.add_argument("--preset", "-p", default="gpt2-small", choices=sorted(PRESETS))
    ap.add_argument("--layers", type=int, default=None, help="override a gpt2/llama depth")
    ap.add_argument("--scan", action="store_true", help="the gpt2/llama blocks under nn.scan")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mesh", default=None, help="'8' or '2x4', as for python -m bench")
    ap.add_argument("--cache", default=None, help="turn jax's persistent cache on, in this DIR")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch")
    ap.add_argument("--compile-only", action="store_true", help="stop before the first run")
    ap.add_argument(
        "--t0", type=float, default=None, help="time.time() at spawn (else the process start)"
    )
    args = ap.parse_args(argv)
    try:
        PRESETS[args.preset].with_layers(args.layers).with_scan(args.scan)
    except ValueError as e:
        ap.error(str(e))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    t_main = time.time()
    args = _parse(argv)
    if args.t0 is None:
        args.t0 = _process_start()
    clock = _Clock(args.t0)
    clock.lap("startup", t_main)
    out: dict[str, Any] = {"peer": args.peer, "preset": args.preset, "layers": args.layers}
    out["scan"] = args.scan
    (_torch_peer if args.peer == "torch" else _jax_peer)(args, clock, out)
    preset = PRESETS[args.preset].with_layers(args.layers).with_scan(args.scan)
    out |= {
        "dtype": args.dtype,
        "num_params": preset.num_params(),
        "num_leaves": len(preset.leaves()),
        "phases": clock.phases,
        "total_s": clock.last - clock.t0,
        "compile_only": args.compile_only,
        "cache_dir": args.cache,
        "cache_files": len(os.listdir(args.cache)) if args.cache else None,
    }
    print(json.dumps(out))
    return out


def spawn(peer: str, preset: str = "gpt2-small", dtype: str = "float32", **kw: Any) -> dict:
    """Run ``python -m bench.cold`` for `peer` in a fresh process; its JSON result as a dict.

    Keyword arguments are its options (``layers``, ``scan``, ``seed``, ``mesh``, ``cache``,
    ``device``, ``compile_only``), and ``timeout`` in seconds (default 1800).
    """
    if peer not in COLD_PEERS:
        raise ValueError(f"`bench.cold.spawn(peer=...)` must be one of {COLD_PEERS}; got {peer!r}.")
    timeout = kw.pop("timeout", 1800)
    cmd = [sys.executable, "-m", "bench.cold", "--peer", peer, "-p", preset, "--dtype", dtype]
    for name, value in kw.items():
        if value is True:
            cmd.append(f"--{name.replace('_', '-')}")
        elif value is not None and value is not False:
            cmd += [f"--{name.replace('_', '-')}", str(value)]
    path = [ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    t0 = time.time()
    proc = subprocess.run(
        [*cmd, "--t0", repr(t0)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise RuntimeError(
            f"fresh-process cold run `{' '.join(cmd[1:])}` failed (exit {proc.returncode}):\n{tail}"
        )
    return json.loads(lines[-1])


def measure(peer: str, *, repeats: int = 1, cache: str | None = "auto", **kw: Any) -> dict:
    """`repeats` fresh processes with the cache off (the median by total is reported), then, for
    a jax peer when `cache` is set, two more sharing one cache folder: a fresh temporary one
    ('auto', removed afterwards) or ``cache/<peer>``. Keyword arguments go to :func:`spawn`."""
    runs = sorted((spawn(peer, **kw) for _ in range(repeats)), key=lambda r: r["total_s"])
    res: dict[str, Any] = {"fresh": runs[(len(runs) - 1) // 2]}
    res["fresh_all_s"] = [r["total_s"] for r in runs]
    if cache and peer != "torch":
        if cache == "auto":
            folder = tempfile.mkdtemp(prefix=f"bench-cache-{peer}-")
        else:
            folder = os.path.join(cache, peer)
            os.makedirs(folder, exist_ok=True)
        try:
            res["cached"] = [spawn(peer, cache=folder, **kw) for _ in range(2)]
        finally:
            if cache == "auto":
                shutil.rmtree(folder, ignore_errors=True)
    return res


if __name__ == "__main__":
    main()
