"""Smoke and correctness tests of the benchmark harness (bench/) on tiny presets; no timings."""

import json

import jax
import numpy as np
import pytest

from bench import __main__ as cli
from bench import models, peers, presets, run


@pytest.mark.parametrize("name", ["gpt2-tiny", "llama-tiny", "mlp-tiny", "resnet-tiny"])
def test_flax_model_matches_preset(name):
    preset = presets.PRESETS[name]
    model, x = models.flax_model(preset, np.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    got = {p: tuple(s.shape) for p, s in presets.flatten(variables).items()}
    assert got == preset.leaves()


@pytest.mark.parametrize("name", ["gpt2-tiny", "llama-tiny", "mlp-tiny", "resnet-tiny"])
def test_torch_model_matches_preset_size(name):
    torch = pytest.importorskip("torch")
    preset = presets.PRESETS[name]
    module = models.torch_model(preset, torch.float32)
    n = sum(p.numel() for p in module.parameters())
    n += sum(b.numel() for b in module.buffers() if b.is_floating_point())
    assert n == preset.num_params()


def test_presets_sizes():
    assert round(presets.PRESETS["gpt2-small"].num_params() / 1e6) == 163
    assert round(presets.PRESETS["llama-7b"].num_params() / 1e9, 1) == 6.7


def test_parse_mesh():
    assert presets.parse_mesh("8") == ((8,), ("model",))
    assert presets.parse_mesh("2x4") == ((2, 4), ("data", "model"))
    with pytest.raises(ValueError, match=r"`--mesh` must look like '8' or '2x4'; got '2x'"):
        presets.parse_mesh("2x")


def test_leaf_sharding_shards_big_kernels(devices):
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    spec = peers.leaf_sharding((64, 128), mesh, min_size=1).spec
    assert tuple(spec) == ("data", "model")
    assert tuple(peers.leaf_sharding((3, 6), mesh, min_size=1).spec) == (None, None)
    assert tuple(peers.leaf_sharding((128,), mesh, min_size=1).spec) == (None,)


def test_run_tiny_all_peers():
    names = ["jinit", "flax", "jax-jit", "jax-eager", "torch", "numpy", "fill"]
    result = run.run("gpt2-tiny", "float32", names, repeats=1, quiet=True)
    by = {r["peer"]: r for r in result["peers"]}
    assert list(by) == names
    for name, r in by.items():
        if name == "torch" and r["status"] == "skipped":
            continue
        assert r["status"] == "ok", r
        assert r["warm_s"] > 0 and r["cold_s"] > 0 and r["gb_per_s"] > 0
        assert r.get("tree_error") is None, r
    assert by["jinit"]["check"] == "reference"
    # Same path keys, same schemes, one jit: the same bits as jinit.
    assert by["jax-jit"]["bit_identical"] is True
    # Eager jax.nn differs from jit jax.nn by at most rounding (jax itself is not jit==eager).
    assert by["jax-eager"]["bit_identical"] or by["jax-eager"]["max_ulp_diff"] <= 2
    assert by["flax"]["bit_identical"] is None and by["flax"]["stats_ok"], by["flax"]["check"]
    assert by["flax"]["check"].startswith("n/a (own keys)")
    assert by["fill"]["fill_fraction"] == pytest.approx(1.0)
    out_bytes = by["jinit"]["memory_analysis"]["output_size_in_bytes"]  # + per-buffer padding
    assert result["param_bytes"] <= out_bytes <= result["param_bytes"] + 64 * result["num_leaves"]


def test_bit_identity_flag_detects_other_keys(monkeypatch):
    """A peer keyed from a different seed must be flagged: random leaves differ, constants not."""

    def other_seed(ctx):
        shifted = peers.Context(ctx.preset, ctx.dtype, ctx.seed + 1, ctx.mesh)
        return peers.jax_jit_case(shifted)

    monkeypatch.setitem(
        peers.PEERS, "shifted", peers.Peer("shifted", "jax.nn, other seed", other_seed, "path")
    )
    result = run.run("mlp-tiny", "float32", ["jinit", "shifted"], repeats=1, quiet=True)
    r = result["peers"][1]
    assert r["bit_identical"] is False
    assert sorted(r["leaves_differ"]) == ["params/Dense_0/kernel", "params/Dense_1/kernel"]
    assert r["check"].startswith("NOT bit-identical: 2/4 leaves differ")


def test_run_bfloat16_and_mesh(devices):
    result = run.run(
        "llama-tiny", "bfloat16", ["jinit", "jax-jit", "fill"], repeats=1, mesh="2x4", quiet=True
    )
    by = {r["peer"]: r for r in result["peers"]}
    assert all(r["status"] == "ok" and r["sharded"] for r in by.values())
    assert result["param_bytes"] == 2 * presets.PRESETS["llama-tiny"].num_params()
    assert by["jax-jit"]["bit_identical"] in (True, False)  # bf16: jinit samples in float32


def test_abstract_run_compiles_only():
    result = run.run("gpt2-tiny", "bfloat16", ["jinit", "flax", "numpy"], abstract=True, quiet=True)
    assert result["mode"] == "abstract"
    by = {r["peer"]: r for r in result["peers"]}
    assert by["jinit"]["status"] == "abstract" and by["jinit"]["compile_s"] > 0
    out_bytes = by["jinit"]["memory_analysis"]["output_size_in_bytes"]
    assert result["param_bytes"] <= out_bytes <= result["param_bytes"] + 64 * result["num_leaves"]
    assert "not run" in by["numpy"]["note"]


def test_mesh_needs_matching_devices():
    with pytest.raises(ValueError, match=r"`--mesh 4` needs 4 devices; found 8"):
        run.run("mlp-tiny", "float32", ["jinit"], mesh="4", quiet=True)


def test_cli_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "r.json"
    cli.main(
        [
            "-p",
            "mlp-tiny",
            "--peers",
            "jinit,fill",
            "-r",
            "1",
            "-q",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "r.png"),
        ]
    )
    printed = capsys.readouterr().out
    assert "jinit.init_tree (one jit)" in printed and "jnp.full" in printed
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python -m bench -p mlp-tiny")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_fallback_init_tree_matches_jinit():
    """The stand-in used before jinit.init_tree existed gives jinit's bits (same key digest)."""
    import jinit
    from bench import treeinit

    if not hasattr(jinit, "init_tree"):
        pytest.skip("jinit.init_tree not available")
    ctx = peers.Context(presets.PRESETS["mlp-tiny"], np.dtype(np.float32))
    rules = ctx.rules(jinit)
    a = treeinit._fallback_init_tree(ctx.key(), ctx.abstract, rules)
    b = jinit.init_tree(ctx.key(), ctx.abstract, rules)
    for (pa, x), (pb, y) in zip(
        presets.flatten(a).items(), presets.flatten(b).items(), strict=True
    ):
        assert pa == pb and np.array_equal(np.asarray(x), np.asarray(y)), pa
