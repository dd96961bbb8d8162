"""The tree builder as the TPU compiler sees it: structural checks, no timings.

libtpu (the ``aot`` extra) compiles for a TPU topology without a TPU, so the program a TPU
would run is checked here on any machine: the schedule jinit picks for TPU devices, each leaf
written once by a sampler kernel shared with other leaves of its shape (no stream loops, no
cuts), and XLA's cost model reading and writing little more than the parameters' bytes, at
12 and at 48 layers. The figures (compile
seconds, cost-model run time) are in bench/RESULTS.md, from ``python -m bench --aot``.
"""

import functools

import jax
import numpy as np
import pytest
from jax.experimental import topologies
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jinit
from bench import aot, presets
from jinit import _tree
from jinit._tree import build as _build

TOPOLOGY = "v5e:2x2"  # (v5e:1x1 is refused: one chip of a 2x2)


@functools.cache
def tpu_mesh() -> Mesh:
    devices = topologies.get_topology_desc(topology_name=TOPOLOGY, platform="tpu").devices
    return Mesh(np.array(devices[:1]), ("model",))


def random_leaves(preset: presets.Preset) -> int:
    """The preset's leaves that Flax's default rules draw at random (kernels, embeddings)."""
    return sum(p.endswith(("kernel", "embedding")) for p in preset.leaves())


def test_the_schedule_follows_the_platform():
    abstract = {"w": jax.ShapeDtypeStruct((8, 4), np.float32)}
    rules = [(r"w$", jinit.lecun_normal())]
    on_tpu, _ = _tree.plan(abstract, rules, None, NamedSharding(tpu_mesh(), PartitionSpec()), None)
    on_cpu, _ = _tree.plan(abstract, rules, None, None, None)
    assert _build.platform_of(on_tpu) == "tpu" and not _build.default_group(on_tpu)
    assert _build.platform_of(on_cpu) == "cpu" and _build.default_group(on_cpu)


@functools.cache
def compiled_gpt2(layers: int, peer: str = "jinit") -> dict:
    return aot.worker(peer, TOPOLOGY, "gpt2-small", "float32", None, layers)


@pytest.mark.parametrize("layers", [12, 48])
def test_gpt2_on_one_tpu_chip(layers):
    preset = presets.PRESETS["gpt2-small"].with_layers(layers)
    row = compiled_gpt2(layers)
    params = preset.num_params() * 4
    assert params <= row["output_bytes"] <= 1.01 * params  # (small leaves padded to TPU tiles)
    # Each leaf written once, where it lives: little more than the parameters' bytes moved.
    assert row["bytes_accessed"] <= 1.2 * params
    # The key table's loop (two trips) and nothing else: no loop runs a step per block.
    assert row["loops"] <= 1
    # The draws of one shape share their counters, and XLA fuses several into one kernel (as it
    # does jax.random's): fewer sampler kernels than a third of the random leaves.
    assert 3 * row["samplers"] < random_leaves(preset)


def test_streams_pass_over_the_bytes_several_times():
    """The control: the CPU's schedule, forced on TPU, is what the default avoids there."""
    row = compiled_gpt2(12, "jinit-streams")
    params = presets.PRESETS["gpt2-small"].num_params() * 4
    assert row["bytes_accessed"] > 2 * params
    assert row["loops"] > 1
