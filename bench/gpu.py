"""The GPU compiler without a GPU: XLA:GPU targets for ``python -m bench --aot cuda:h100``.

With ``jax-cuda12-plugin`` and ``jax-cuda12-pjrt`` at jax's version and ``nvidia-cuda-nvcc-cu12``
(ptxas), all in the ``aot`` extra, and ``JAX_PLATFORMS=cpu``, jax compiles for an NVIDIA GPU on
a machine without one, from XLA's description of the GPU (``targets/h100_sxm.txtpb``, from
openxla/xla ``xla/backends/gpu/target_config/specs/``, less the fields this jaxlib does not
know: ``name``, ``driver_version``, ``runtime_version``, ``compile_time_toolkit_version``,
``dnn_version``, ``cub_version``, ``collective_memory_granularity``). :data:`TARGETS` names the
GPUs: h100 (SXM), h100-pcie, h200, a100 (SXM 40 GB), a100-80 (SXM 80 GB) and b200 (sm_100a,
which ptxas 12.9 compiles). The executable holds real cubins; only GEMM autotuning is skipped
(init has no GEMMs).

XLA:GPU gives no cost model, so :func:`structure` reads from the compiled program what sets its
run time, and :func:`estimate` turns it into seconds with published XLA:GPU and H100 figures:

* every kernel launch and every while-loop trip costs about ``LAUNCH_S`` (XLA:GPU runs a loop's
  condition on the host: a device-to-host copy and a launch per trip);
* every byte written and read crosses HBM once at the target's ``memory_bandwidth`` (the
  output's bytes once, and the temporaries' twice: written, then read back).

A loop's trip count is data-dependent in jinit's programs (read at indices XLA cannot see), so
the caller passes the trips it knows (:func:`jinit_trips`); Flax and jax.random programs have
no loops on GPU.
"""

from __future__ import annotations

import functools
import math
import os
import re
from typing import Any

import numpy as np

TARGETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets")
TARGETS = {
    "h100": "h100_sxm.txtpb",
    "h100-pcie": "h100_pcie.txtpb",
    "h200": "h200.txtpb",
    "a100": "a100_sxm_40.txtpb",
    "a100-80": "a100_sxm_80.txtpb",
    "b200": "b200.txtpb",
}
LAUNCH_S = 5e-6  # one kernel launch or one loop trip on XLA:GPU (CUDA launch + host sync)


def parse_target(text: str) -> tuple[str, str]:
    """'cuda:h100' -> (target description path, '1x1x1'); 'cuda:h100:1x1x8' -> 8 GPUs; a
    path to a ``.txtpb`` target description may stand for the name."""
    platform, _, rest = text.partition(":")
    name, _, topology = rest.partition(":")
    path = os.path.join(TARGETS_DIR, TARGETS[name]) if name in TARGETS else name
    ok = platform == "cuda" and (name in TARGETS or name.endswith(".txtpb"))
    if not ok or (topology and not re.fullmatch(r"\d+x\d+x\d+", topology)):
        raise ValueError(
            f"`--aot` for a GPU must look like 'cuda:h100', 'cuda:h100:1x1x8' or "
            f"'cuda:PATH.txtpb' (known GPUs: {', '.join(TARGETS)}); got {text!r}."
        )
    if not os.path.exists(path):
        raise ValueError(f"`--aot {text}`: no target description at {path!r}.")
    return path, topology or "1x1x1"


def plugin_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("jax_plugins.xla_cuda12") is None:
        return 'the CUDA plugin is not installed: pip install -e ".[aot]"'
    return None


@functools.cache
def devices(path: str, topology: str) -> list[Any]:
    """The GPUs of ``topology`` ("PARTITIONS x HOSTS x DEVICES"), deviceless."""
    from jax.experimental import topologies

    with open(path) as f:
        config = f.read()
    desc = topologies.get_topology_desc(platform="cuda", topology=topology, target_config=config)
    return list(desc.devices)


def bandwidth(path: str) -> float:
    """The target's HBM bandwidth in bytes per second (from its description)."""
    with open(path) as f:
        found = re.search(r"memory_bandwidth:\s*(\d+)", f.read())
    if not found:
        raise ValueError(f"the target description {path!r} has no memory_bandwidth.")
    return float(found.group(1))


def computations(text: str) -> dict[str, str]:
    """The computations of an HLO text, by name."""
    comps = {}
    for block in text.split("\n\n"):
        block = block.strip("\n")  # (a computation after two blank lines: its header is line 0)
        head = re.match(r"\s*(?:ENTRY\s+)?%?([\w.\-]+)\s", block)
        if head:
            comps[head.group(1)] = block
    return comps


FUSION = re.compile(r"%([\w.\-]+) = (.*?) fusion\((.*?)\), kind=(\w+), calls=%?([\w.\-]+)")


def kernel(comps: dict[str, str], fusion: re.Match) -> tuple[str, str, str]:
    """A fusion (a :data:`FUSION` match) as XLA:GPU compiles it: its output, kind and body
    (names and metadata left out). Equal tuples are one kernel."""
    body = re.sub(r", metadata=\{[^}]*\}", "", comps.get(fusion.group(5), ""))
    body = re.sub(r"%[\w.\-]+", "%", "\n".join(body.splitlines()[1:]))
    return fusion.group(2), fusion.group(4), body


def kernels(text: str) -> set[tuple[str, str, str]]:
    """The distinct kernels of a compiled XLA:GPU program (its fusions, :func:`kernel`)."""
    comps = computations(text)
    return {kernel(comps, m) for m in FUSION.finditer(text)}


def structure(text: str) -> dict[str, int]:
    """Of a compiled XLA:GPU program (its HLO text): kernels launched outside loops and per
    loop trip (a loop body's, on average), distinct kernels (fused computations that differ in
    shape or body: XLA:GPU runs LLVM and ptxas once for each, most of its compile time),
    custom calls, while loops, the kernels that hash (threefry2x32 is 20 rounds, each an
    ``xor``; jax's GPU hash kernel is a custom call), and the distinct kernels that read that
    custom call's words (each a draw's transform, the costliest kernels to compile) and those
    that make its operands (keys, counters)."""
    comps = computations(text)
    entry = next((b for b in text.split("\n\n") if b.lstrip().startswith("ENTRY")), text)
    bodies = set(re.findall(r"body=%?([\w.\-]+)", text))

    def launches(block: str) -> int:
        ops = re.findall(r"\s(fusion|custom-call|copy|dynamic-update-slice)\(", block)
        return len(ops)

    hashes = set(re.findall(r"%([\w.\-]+) = [^\n]*custom-call\([^\n]*threefry", text))
    # each get-tuple-element: the tuple it is a part of
    part_of = dict(re.findall(r"%([\w.\-]+) = [^\n]*get-tuple-element\(%([\w.\-]+)\)", text))
    hashed = {name for name, whole in part_of.items() if whole in hashes}
    # the values the hash kernels read, and the instructions whose parts those are
    operands = {
        name
        for m in re.finditer(r"custom-call\(([^)]*)\)[^\n]*threefry", text)
        for name in re.findall(r"%([\w.\-]+)", m.group(1))
    }
    operands |= {part_of[name] for name in operands if name in part_of}
    fused = set()  # (shape, kind, body): XLA:GPU compiles one kernel per distinct fusion
    transforms = set()  # those that read a hash kernel's words: a draw's transform
    makers = set()  # those that make a hash kernel's operands
    for m in FUSION.finditer(text):
        k = kernel(comps, m)
        fused.add(k)
        if hashed & set(re.findall(r"%([\w.\-]+)", m.group(3))):
            transforms.add(k)
        if m.group(1) in operands:
            makers.add(k)
    per_body = [launches(comps.get(b, "")) for b in bodies]
    in_loops = -(-sum(per_body) // max(1, len(per_body)))  # a trip runs one loop's body
    targets = re.findall(r'custom_call_target="([^"]*)"', text)
    return {
        "kernels": launches(entry),
        "kernels_per_trip": in_loops,
        "distinct_kernels": len(fused),
        "transform_kernels": len(transforms),
        "hash_operand_kernels": len(makers),
        "custom_calls": len(targets),
        "hash_custom_calls": sum("threefry" in t for t in targets),
        "loops": len(re.findall(r" while\(", text)),
        "samplers": sum(1 for b in comps.values() if b.count(" xor(") >= 20),
    }


def estimate(
    counts: dict[str, int], trips: int, output_bytes: int, temp_bytes: int, path: str
) -> float:
    """Seconds the program takes on the target GPU, from its structure (see the module)."""
    launches = counts["kernels"] + trips * max(1, counts["kernels_per_trip"])
    moved = output_bytes + 2 * temp_bytes
    return launches * LAUNCH_S + moved / bandwidth(path)


def jinit_trips(abstract: Any, shardings: Any, group: bool | None, rules: Any) -> int:
    """The loop trips of jinit's program for ``abstract``, from the plan, as the builder lays it
    out: the key table's two; a stream's, one per step of rows per chunk; a sharded group's,
    one per leaf of each chunk of more than one; a large leaf's on GPU, one per block (a split
    leaf's, one per block of a device's shard)."""
    from jinit import _tree
    from jinit._rng import draws as _draws
    from jinit._tree import build as _build
    from jinit._tree import sharding as _sharding
    from jinit._tree import shards as _shards
    from jinit._tree import stream as _stream

    leaves, _ = _tree.plan(abstract, rules, None, shardings, None)
    trips = 2  # the key table's loop
    if group is None:
        group = _build.default_group(leaves)
    if not group:
        return trips
    budget = _build.chunk_budget(leaves)
    streams: dict[Any, list[Any]] = {}
    groups: dict[Any, list[Any]] = {}
    for i, leaf in enumerate(leaves):
        s = _draws.sampling_of(leaf.init, leaf.shape, leaf.dtype)
        if s is None or 0 in leaf.shape:
            continue
        if _stream.streamable(s.draw, leaf, budget):
            streams.setdefault(s.draw, []).append((i, s))
        else:
            groups.setdefault((s.draw, leaf.shape, leaf.sharding), []).append((i, s))
    block = _build.block_size(leaves)
    on_gpu = _build.platform_of(leaves) in _build.GPU_PLATFORMS
    for (draw, shape, sharding), members in groups.items():
        finished = _build._finished_in_batch(leaves, (draw, shape, sharding), members)
        itemsize = np.dtype(finished or draw.dtype).itemsize
        local = math.prod(_build.shape_of_shard(leaves[members[0][0]]))
        by_device = _shards.local(draw, shape, sharding)  # each device its shard, in blocks
        split = _sharding.is_split(sharding) and by_device
        in_blocks = -(-local // block) if local > block else 0  # a shard's blocks
        for chunk in _build._chunks(members, local * itemsize, budget):
            n = len(chunk)
            if n == 1 and _build._in_blocks(draw, leaves[chunk[0][0]]):  # a large leaf
                trips += -(-math.prod(shape) // block)
            elif n == 1 and split:  # a split leaf alone
                trips += in_blocks
            elif n > 1:  # a batch's loop, each trip a shard's blocks where drawn by device
                trips += n + 1 + (n * in_blocks if by_device else 0)
    dtype = _build.finished_in_step(leaves, streams) if on_gpu else None
    budget_rows = max(1, budget // (np.dtype(dtype or np.float32).itemsize * _stream.ROW))
    for members in streams.values():
        rows = [-(-math.prod(leaves[i].shape) // _stream.ROW) for i, _ in members]
        step = block // _stream.ROW if on_gpu else _stream.step_size(sum(rows), _stream.STEP_ROWS)
        for lo, hi in _stream._row_chunks(rows, budget_rows):
            trips += -(-sum(rows[lo:hi]) // step) + 1  # (+1: the pipeline's drain)
    return trips
