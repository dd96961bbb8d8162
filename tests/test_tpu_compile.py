"""The tree builder as the TPU compiler sees it: structural checks, no timings.

libtpu (the ``aot`` extra) compiles for a TPU topology without a TPU, so the program a TPU
would run is checked here on any machine: the schedule jinit picks for TPU devices (the streams
on one chip, a leaf split over chips drawn alone), its temporaries within 10% of the
parameters, fewer hash kernels than one kernel per leaf, and XLA's cost model moving a few
times the parameters' bytes, at 12 and at 48 layers. The figures (compile seconds, cost-model
run time: compile + run is what the schedule is chosen by) are in bench/RESULTS.md, from
``python -m bench --aot``.
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
    assert _build.platform_of(on_tpu) == "tpu" and _build.default_group(on_tpu)
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
    # The streams' chunks bound the temporaries (the issue's bound: 10% of a chip's shard) ...
    assert row["temp_bytes"] <= 0.1 * params
    # ... and cost a few passes over the bytes (a chunk is drawn, then its leaves laid out),
    # milliseconds of run against the seconds of compile they save.
    assert row["bytes_accessed"] <= 8 * params
    # A loop per chunk (and the key table's), each with one hash kernel: far fewer sampler
    # kernels than random leaves.
    assert 5 * row["samplers"] < random_leaves(preset)
    assert row["samplers"] <= row["loops"] + 3


def test_one_kernel_per_leaf_holds_more_hash_kernels():
    """The control: one kernel per leaf (``group=False``) holds more copies of the hash, which
    XLA:TPU compiles one by one (seconds, bench/RESULTS.md), and writes each leaf once."""
    streams, per_leaf = compiled_gpt2(12), compiled_gpt2(12, "jinit-per-leaf")
    params = presets.PRESETS["gpt2-small"].num_params() * 4
    assert per_leaf["samplers"] > streams["samplers"]
    assert per_leaf["loops"] <= 1 < streams["loops"]
    assert per_leaf["bytes_accessed"] <= 1.2 * params < streams["bytes_accessed"]


def split_tree() -> tuple[dict, dict]:
    """Three kernels of one shape split over 4 chips, one replicated, and two small leaves."""
    abstract = {
        **{f"k{j}": jax.ShapeDtypeStruct((512, 256), np.float32) for j in range(3)},
        "r": jax.ShapeDtypeStruct((64, 32), np.float32),
        "b": jax.ShapeDtypeStruct((256,), np.float32),
    }
    specs = {
        **{f"k{j}": PartitionSpec("data", "model") for j in range(3)},
        "r": PartitionSpec(),
        "b": PartitionSpec(),
    }
    return abstract, specs


def test_split_leaves_are_drawn_alone_on_tpu():
    """On TPU a leaf split over chips is drawn by its own kernel (each chip writing its shard in
    place), not in a batched loop with the other leaves of its shape."""
    abstract, specs = split_tree()
    devices = topologies.get_topology_desc(topology_name=TOPOLOGY, platform="tpu").devices
    mesh = Mesh(np.array(devices[:4]).reshape(2, 2), ("data", "model"))
    shardings = {p: NamedSharding(mesh, s) for p, s in specs.items()}
    rules = [(r"b$", jinit.normal(0.1)), (r".", jinit.lecun_normal())]
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=shardings["r"])
    text = (
        jax.jit(lambda k: jinit.init_tree(k, abstract, rules, shardings=shardings))
        .lower(key)
        .compile()
        .as_text()
    )
    counts = aot.hlo_counts(text)
    grouped, _ = _tree.plan(abstract, rules, None, shardings, None)
    assert _build.default_group(grouped)
    # The key table's loop alone (the small leaves, of two shapes, are drawn alone too);
    # without the rule, a batched loop over the three split kernels as well.
    assert counts["loops"] == 1
    assert counts["samplers"] >= 2  # (the split kernels' draw is there)


def test_split_leaves_drawn_alone_give_the_same_bits(monkeypatch, key, devices):
    """The TPU's rule forced on 8 CPU devices: the split leaves go through the per-leaf path
    (``build_one``), the others through the streams, and every leaf has its unsharded bits."""
    abstract, specs = split_tree()
    mesh = Mesh(np.array(devices).reshape(2, 4), ("data", "model"))
    shardings = {p: NamedSharding(mesh, s) for p, s in specs.items()}
    rules = [(r"k0|b$", jinit.normal(0.5)), (r".", jinit.lecun_normal())]
    whole = jinit.init_tree(key, abstract, rules)
    monkeypatch.setattr(_build, "SPLIT_ALONE_PLATFORMS", frozenset({"cpu"}))
    alone: list[str] = []
    real = _build.build_one
    monkeypatch.setattr(
        _build,
        "build_one",
        lambda keys, leaf, where: alone.append(leaf.path) or real(keys, leaf, where),
    )
    _tree.compiled_builder.cache_clear()
    try:
        split = jinit.init_tree(key, abstract, rules, shardings=shardings)
    finally:
        _tree.compiled_builder.cache_clear()
    assert sorted(alone) == ["k0", "k1", "k2"]
    for p in abstract:
        assert split[p].sharding.is_equivalent_to(shardings[p], split[p].ndim)
        np.testing.assert_array_equal(np.asarray(split[p]), np.asarray(whole[p]))
