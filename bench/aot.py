"""python -m bench --aot tpu:v5e:2x2: each peer compiled for a TPU topology, without a TPU.

libtpu compiles for any topology it knows (``v5e:2x2``, ``v5e:4x4``, ``v5e:16x16``, ``v5p:2x2x1``,
``v6e:2x2``, ...) on a machine without one ("deviceless AOT", as MaxText's ``train_compile.py``),
so the TPU compiler's time, each chip's memory and XLA's cost model of the run are real TPU
figures, measured here. Each peer runs in a fresh process with ``JAX_PLATFORMS=cpu`` (so an
installed libtpu neither slows nor clutters any other run): it traces and lowers the peer's body
under ``jax.jit(out_shardings=...)`` for the topology's devices, compiles it, and reports trace +
lower and compile seconds, per-chip output and temporary bytes, the cost model's run time and
bytes accessed, and the program's kernels (fusions), sampler kernels (those that hash: threefry
or a hardware RNG) and while loops. Without ``--mesh`` the tree is built on one chip; with
``--mesh 4x4`` on 16 chips of the topology, big kernels sharded as in the other runs
(:func:`bench.trees.leaf_sharding`). ``--scan`` compiles the scanned gpt2/llama trees (the blocks
under one ``nn.scan``, as pods run them). Needs libtpu: ``pip install -e ".[aot]"``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

# Peers: name -> what it compiles.
AOT_PEERS = {
    "fill": "jnp.full(0.5) under one jit (the limit: writing the same bytes)",
    "jinit": "jinit.init_tree, the platform's schedule (group=None)",
    "jinit-streams": "jinit.init_tree(group=True): the CPU's streams",
    "jinit-per-leaf": "jinit.init_tree(group=False): one kernel per leaf",
    "jax-jit": "jax.nn.initializers by hand (tree_map_with_path), one jit",
    "flax": "jax.jit(model.init), threefry keys",
    "flax-rbg": "jax.jit(model.init), rbg keys",
    "flax-unsafe-rbg": "jax.jit(model.init), unsafe_rbg keys (MaxText's TPU default)",
    "flax-gpu-kernel": "jax.jit(model.init), threefry with jax's CUDA hash kernel (GPU only)",
}
DEFAULT_GPU_PEERS = ("fill", "jinit", "jinit-per-leaf", "flax", "flax-gpu-kernel")
DEFAULT_AOT_PEERS = ("fill", "jinit", "jinit-streams", "jax-jit", "flax", "flax-unsafe-rbg")


def parse_target(text: str) -> str:
    """'tpu:v5e:2x2' -> 'v5e:2x2' (the topology libtpu is asked for); a GPU target
    ('cuda:h100', 'cuda:h100:1x1x8', :func:`bench.gpu.parse_target`) is returned whole."""
    from bench import gpu

    if text.startswith("cuda:"):
        gpu.parse_target(text)
        return text
    platform, _, topology = text.partition(":")
    if platform != "tpu" or not re.fullmatch(r"v\w+:\d+(x\d+)+", topology):
        raise ValueError(
            f"`--aot` must look like 'tpu:v5e:2x2', 'tpu:v5p:2x2x1', 'cuda:h100' or "
            f"'cuda:h100:1x1x8' (GPUs: {', '.join(gpu.TARGETS)}); got {text!r}."
        )
    return topology


def libtpu_missing(target: str = "tpu") -> str | None:
    """Why the compiler for ``target`` cannot run here (None: it can)."""
    import importlib.util

    from bench import gpu

    if target.startswith("cuda:"):
        return gpu.plugin_missing()
    if importlib.util.find_spec("libtpu") is None:
        return 'libtpu is not installed: pip install -e ".[aot]" (jax[tpu] for this jax)'
    return None


def hlo_counts(text: str) -> dict[str, int]:
    """Kernels, sampler kernels and while loops of a compiled program's HLO text.

    A sampler kernel is a fused computation that hashes: threefry2x32 is 20 rounds, each with
    an ``xor``, so a computation with 20 or more is one; a hardware-RNG draw is an
    ``rng-bit-generator``."""
    blocks = text.split("\n\n")
    samplers = sum(1 for b in blocks if b.count(" xor(") >= 20)
    samplers += len(re.findall(r" rng-bit-generator\(", text))
    return {
        "kernels": len(re.findall(r" fusion\(", text)),
        "samplers": samplers,
        "loops": len(re.findall(r" while\(", text)),
    }


def _body(peer: str, preset: Any, dtype: Any, abstract: Any, shardings: Any):
    """(function of a key, the key's implementation) for ``peer`` (on `preset`'s layout,
    scanned or not)."""
    import jax
    import jax.numpy as jnp

    from bench import bodies, models
    from bench.cold import JINIT_GROUP

    if peer == "fill":
        return bodies.fill_body(abstract), "threefry2x32"
    if peer.startswith("jinit"):
        body = bodies.jinit_body(abstract, shardings, JINIT_GROUP[peer], preset.scope)
        return body, "threefry2x32"
    if peer == "jax-jit":
        return bodies.jax_nn_body(abstract, preset.scope), "threefry2x32"
    model, sds = models.flax_model(preset, dtype)
    x = jax.ShapeDtypeStruct(sds.shape, sds.dtype)
    impl = {"flax-rbg": "rbg", "flax-unsafe-rbg": "unsafe_rbg"}.get(peer, "threefry2x32")
    if peer == "flax-gpu-kernel":  # jax's cu_threefry2x32 custom call instead of unrolled rounds
        jax.config.update("jax_threefry_gpu_kernel_lowering", True)
    return (lambda key: model.init(key, jnp.zeros(x.shape, x.dtype))), impl


def worker(
    peer: str,
    topology: str,
    preset_name: str,
    dtype_name: str,
    mesh_text: str | None,
    layers: int | None = None,
    scan: bool = False,
) -> dict[str, Any]:
    """One peer, compiled for ``topology``, in this (JAX_PLATFORMS=cpu) process."""
    import jax
    import numpy as np
    from jax.experimental import topologies
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from bench import gpu, trees
    from bench.presets import PRESETS, flatten, parse_mesh

    preset = PRESETS[preset_name].with_layers(layers).with_scan(scan)
    dtype = trees.np_dtype(dtype_name)
    on_gpu = topology.startswith("cuda:")
    if on_gpu:
        target_path, gpu_topology = gpu.parse_target(topology)
        devices = gpu.devices(target_path, gpu_topology)
    else:
        devices = topologies.get_topology_desc(topology_name=topology, platform="tpu").devices
    dims, names = parse_mesh(mesh_text) if mesh_text else ((1,), ("model",))
    n = int(np.prod(dims))
    if n > len(devices):
        raise ValueError(f"`--mesh {mesh_text}` needs {n} chips; {topology} has {len(devices)}.")
    mesh = Mesh(np.array(devices[:n]).reshape(dims), names)
    shapes = preset.leaves()
    abstract = trees.abstract_tree(shapes, dtype)
    shardings = trees.shardings_tree(shapes, mesh, preset.stack_axes)
    body, impl = _body(peer, preset, dtype, abstract, shardings)
    replicated = NamedSharding(mesh, PartitionSpec())
    key = jax.ShapeDtypeStruct((), jax.random.key(0, impl=impl).dtype, sharding=replicated)
    t0 = time.perf_counter()
    lowered = jax.jit(body, out_shardings=shardings).lower(key)
    t1, c1 = time.perf_counter(), time.process_time()
    compiled = lowered.compile()
    t2, c2 = time.perf_counter(), time.process_time()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    memory = compiled.memory_analysis()
    by_path = flatten(shardings)
    shard_bytes = sum(
        int(np.prod(by_path[path].shard_shape(shape))) * np.dtype(dtype).itemsize
        for path, shape in shapes.items()
    )
    if on_gpu:  # no cost model on GPU: the run estimated from the program's structure
        from bench.cold import JINIT_GROUP
        from bench.presets import rules

        counts = gpu.structure(compiled.as_text())
        out_b, temp_b = int(memory.output_size_in_bytes), int(memory.temp_size_in_bytes)
        trips = 0
        if peer.startswith("jinit"):
            tree_rules = rules(jinit_module(), preset.scope)
            trips = gpu.jinit_trips(abstract, shardings, JINIT_GROUP[peer], tree_rules)
        cost = {
            "optimal_seconds": gpu.estimate(counts, trips, out_b, temp_b, target_path),
            "bytes accessed": float(out_b + 2 * temp_b),
        }
        extra: dict[str, Any] = {**counts, "trips": trips}
    else:
        extra = hlo_counts(compiled.as_text())
    return {
        "peer": peer,
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "compile_cpu_s": c2 - c1,  # all threads: steadier than seconds on a busy machine
        "output_bytes": int(memory.output_size_in_bytes),
        "temp_bytes": int(memory.temp_size_in_bytes),
        "shard_bytes": shard_bytes,
        "run_s": float(cost.get("optimal_seconds", float("nan"))),
        "bytes_accessed": float(cost.get("bytes accessed", float("nan"))),
        **extra,
    }


def jinit_module() -> Any:
    import jinit

    return jinit


def measure(
    peer: str,
    topology: str,
    preset: str,
    dtype: str,
    mesh: str | None,
    layers: int | None,
    scan: bool = False,
) -> dict[str, Any]:
    """:func:`worker` for ``peer`` in a fresh process with ``JAX_PLATFORMS=cpu``."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "ALLOW_MULTIPLE_LIBTPU_LOAD": "1"}
    env.pop("XLA_FLAGS", None)  # (host device counts are irrelevant here)
    args = [sys.executable, "-m", "bench.aot", peer, topology, preset, dtype, mesh or ""]
    args += [str(layers or ""), "scan" if scan else ""]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        return {"peer": peer, "error": " | ".join(tail) or f"exit {p.returncode}"}
    return {**json.loads(lines[-1]), "process_s": time.perf_counter() - t0}


def sweep(
    target: str,
    preset: str,
    dtype: str,
    peers: list[str],
    mesh: str | None,
    layers: list[int | None],
    quiet: bool = False,
    scan: bool = False,
) -> dict[str, Any]:
    """Every peer at every depth (``[None]``: the preset's own), each in its own process;
    `scan`: the blocks under one ``nn.scan`` (gpt2 and llama presets)."""
    from bench.presets import PRESETS

    topology = parse_target(target)
    rows = []
    for n in layers:
        p = PRESETS[preset].with_layers(n).with_scan(scan)
        for peer in peers:
            row = measure(peer, topology, preset, dtype, mesh, n, scan)
            row["layers"] = p.config.get("layers")
            rows.append(row)
            if not quiet:
                print(f"[bench --aot] {p.name} {peer}: {_brief(row)}", file=sys.stderr, flush=True)
    return {
        "target": target,
        "preset": PRESETS[preset].with_scan(scan).name,  # '<preset>-scan' when scanned
        "scan": scan,
        "dtype": dtype,
        "mesh": mesh,
        "params_bytes": _param_bytes(preset, dtype),
        "rows": rows,
    }


def _param_bytes(preset: str, dtype: str) -> int:
    from bench.presets import PRESETS

    return PRESETS[preset].num_params() * (2 if dtype == "bfloat16" else 4)


def _brief(row: dict[str, Any]) -> str:
    if "error" in row:
        return "error: " + row["error"]
    return f"compile {row['compile_s']:.2f} s, run {row['run_s'] * 1e3:.2f} ms"


if (
    __name__ == "__main__"
):  # the worker: python -m bench.aot PEER TOPOLOGY PRESET DTYPE MESH LAYERS SCAN
    peer, topology, preset, dtype, mesh, layers, scan = sys.argv[1:8]
    n = int(layers or 0) or None
    print(json.dumps(worker(peer, topology, preset, dtype, mesh or None, n, scan == "scan")))
