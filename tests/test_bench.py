"""Smoke and correctness tests of the benchmark harness (bench/) on tiny presets; no timings."""

import json
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from bench import __main__ as cli
from bench import cold, depth, models, peers, presets, report, run, torch_models

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
    module = torch_models.torch_model(preset, torch.float32)
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
    # a scanned leaf: the layer axis replicated, each layer sharded as its unrolled twin
    stacked = peers.leaf_sharding((4, 64, 128), mesh, min_size=1, stack=1).spec
    assert tuple(stacked) == (None, "data", "model")


def test_run_tiny_all_peers():
    names = ["jinit", "flax", "flax-threefry", "jax-jit", "jax-eager", "torch", "numpy", "fill"]
    result = run.run("gpt2-tiny", "float32", names, repeats=1, quiet=True, fresh_cold=False)
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
    assert by["flax-threefry"]["stats_ok"], by["flax-threefry"]["check"]
    assert by["flax-threefry"]["label"].endswith("(no-op on cpu)")
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
    result = run.run(
        "mlp-tiny", "float32", ["jinit", "shifted"], repeats=1, quiet=True, fresh_cold=False
    )
    r = result["peers"][1]
    assert r["bit_identical"] is False
    assert sorted(r["leaves_differ"]) == ["params/Dense_0/kernel", "params/Dense_1/kernel"]
    assert r["check"].startswith("NOT bit-identical: 2/4 leaves differ")


def test_run_bfloat16_and_mesh(devices):
    result = run.run(
        "llama-tiny",
        "bfloat16",
        ["jinit", "jax-jit", "fill"],
        repeats=1,
        mesh="2x4",
        quiet=True,
        fresh_cold=False,
    )
    by = {r["peer"]: r for r in result["peers"]}
    assert all(r["status"] == "ok" and r["sharded"] for r in by.values())
    assert result["param_bytes"] == 2 * presets.PRESETS["llama-tiny"].num_params()
    assert by["jax-jit"]["bit_identical"] in (True, False)  # bf16: jinit samples in float32


def test_abstract_run_compiles_only():
    result = run.run(
        "gpt2-tiny",
        "bfloat16",
        ["jinit", "flax", "numpy"],
        abstract=True,
        quiet=True,
        fresh_cold=False,
    )
    assert result["mode"] == "abstract"
    by = {r["peer"]: r for r in result["peers"]}
    assert by["jinit"]["status"] == "abstract" and by["jinit"]["compile_s"] > 0
    out_bytes = by["jinit"]["memory_analysis"]["output_size_in_bytes"]
    assert result["param_bytes"] <= out_bytes <= result["param_bytes"] + 64 * result["num_leaves"]
    assert "not run" in by["numpy"]["note"]


def test_mesh_needs_matching_devices():
    with pytest.raises(ValueError, match=r"`--mesh 4` needs 4 devices; found 8"):
        run.run("mlp-tiny", "float32", ["jinit"], mesh="4", quiet=True, fresh_cold=False)


def test_cli_leads_with_fresh_cold_and_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["-p", "mlp-tiny", "--peers", "jinit,fill", "-r", "1", "-q", "--cache", "none"]
    cli.main([*argv, "--json", str(out), "--plot", str(tmp_path / "r.png")])
    printed = capsys.readouterr().out
    assert "jinit.init_tree (one jit)" in printed and "jnp.full" in printed
    head = next(line for line in printed.splitlines() if line.startswith("peer "))
    assert head.split()[1:5] == ["cold", "s", "compile", "s"]
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python -m bench -p mlp-tiny")
    jin, fill = saved["peers"]
    assert jin["fresh_cold_s"] > jin["fresh_compile_s"] > 0 and "fresh_cached_cold_s" not in jin
    assert "fresh_cold_s" not in fill  # not a cold peer: in-process figures only
    assert saved["summary"]["cold_kind"] == "fresh process"
    assert (tmp_path / "r.png").stat().st_size > 0


def test_hand_written_peer_is_keyed_like_jinit():
    """The jax.nn peer (tree_map_with_path, first re.search match, path keys), given jinit's
    initializers, gives jinit.init_tree's bits: the peers differ by library, not by keys."""
    import jinit
    from bench import bodies

    ctx = peers.Context(presets.PRESETS["mlp-tiny"], np.dtype(np.float32))
    rules = ctx.rules(jinit)
    a = jax.jit(bodies.hand_written_body(rules, ctx.abstract))(ctx.key())
    b = jinit.init_tree(ctx.key(), ctx.abstract, rules)
    for (pa, x), (pb, y) in zip(
        presets.flatten(a).items(), presets.flatten(b).items(), strict=True
    ):
        assert pa == pb and np.array_equal(np.asarray(x), np.asarray(y)), pa


def test_fresh_process_cold_phases_and_persistent_cache(tmp_path):
    """A fresh process per run: every phase is timed, they add up to no more than the total,
    and the two cache runs share one folder that the first fills."""
    m = cold.measure("jinit", preset="mlp-tiny", cache=str(tmp_path))
    r = m["fresh"]
    assert list(r["phases"]) == list(report.PHASES)
    assert all(t > 0 for t in r["phases"].values()), r["phases"]
    assert r["total_s"] >= sum(r["phases"].values()) - 1e-6  # float rounding of the laps
    assert r["backend"] == "cpu" and r["cache_dir"] is None
    fill, warm = m["cached"]
    assert fill["cache_dir"] == warm["cache_dir"] == str(tmp_path / "jinit")
    assert warm["cache_files"] >= 1


def test_fresh_process_flax_threefry_and_torch():
    r = cold.spawn("flax-threefry", "mlp-tiny")
    assert r["note"] == "jax_threefry_gpu_kernel_lowering has no effect on cpu"
    assert r["phases"]["compile"] > 0
    pytest.importorskip("torch")
    t = cold.spawn("torch", "mlp-tiny")
    assert t["device"] == "cpu" and "compile" not in t["phases"]
    assert t["phases"]["import"] > 0 and t["phases"]["run"] > 0


def test_fresh_process_errors_are_clear():
    with pytest.raises(ValueError, match=r"must be one of .*'torch'\); got 'numpy'"):
        cold.spawn("numpy", "mlp-tiny")
    with pytest.raises(RuntimeError, match=r"(?s)failed \(exit 1\).*`--mesh 3` needs 3 devices"):
        cold.spawn("jinit", "mlp-tiny", mesh="3")


def test_depth_subcommand_tiny(tmp_path, capsys):
    """``python -m bench depth``: the sweep, its table (report.depth_table) and plot."""
    argv = ["depth", "-p", "gpt2-tiny", "--depths", "1,2", "--peers", "jinit,flax", "-q"]
    result = cli.main([*argv, "--json", str(tmp_path / "d.json")])
    got = [(r["depth"], r["peer"]) for r in result["rows"]]
    assert got == [(1, "jinit"), (1, "flax"), (2, "jinit"), (2, "flax")]
    for r in result["rows"]:
        assert r["error"] is None and r["cold_s"] > r["compile_s"] > 0, r
    assert [r["num_leaves"] for r in result["rows"]] == [17, 17, 29, 29]
    assert set(result["ratios"]) == {"jinit", "flax"}
    assert result["command"].startswith("python -m bench " + " ".join(argv) + " --json ")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("depth sweep of gpt2-tiny float32")
    assert lines[1].split()[:3] == ["depth", "params", "leaves"] and lines[-1].startswith("2/1")
    assert (tmp_path / "d.png").stat().st_size > 0
    assert report.depth_table(result, markdown=True).startswith("| depth | params | leaves |")


def test_depth_and_layers_options():
    assert presets.PRESETS["gpt2-small"].with_layers(48).config["layers"] == 48
    assert presets.PRESETS["gpt2-small"].with_layers(48).name == "gpt2-small-L48"
    with pytest.raises(ValueError, match=r"`--layers 4` applies to the gpt2 and llama presets"):
        presets.PRESETS["mlp"].with_layers(4)
    assert depth.parse_depths("12,24,48") == [12, 24, 48]
    with pytest.raises(ValueError, match=r"`--depths` must be increasing .*; got '24,12'"):
        depth.parse_depths("24,12")
    with pytest.raises(ValueError, match=r"`--peers` must be among .*; got \['numpy'\]"):
        depth.sweep("gpt2-tiny", "float32", ["numpy"], [1])
    args = cli.parse(["--depths", "12,24"])
    assert args.depths == [12, 24] and args.peers == list(depth.DEFAULT_PEERS)
    assert cli.parse([]).peers == list(cli.PEER_NAMES)
    assert cli.parse([], sweep=True).depths == [12, 24, 48]  # python -m bench depth
    assert cli.parse([]).depths is None


def test_summary_wording():
    def peer(name, warm, cold_s):
        return {"peer": name, "warm_s": warm, "fresh_cold_s": cold_s, "cold_s": 9.0}

    result = {
        "num_params": 10,
        "param_bytes": 40,
        "peers": [peer("jinit", 1.0, 0.62), peer("flax", 3.1, 1.0), peer("torch", 1 / 1.9, 2.0)],
    }
    run._derive(result)
    text = report.summary(result)
    assert "jinit cold = 0.62x Flax's, 0.31x PyTorch's cold" in text
    assert "jinit warm 3.10x faster than flax" in text
    assert "jinit warm 1.90x slower than torch" in text
    assert all(float(x) >= 1 for x in re.findall(r"([\d.]+)x (?:faster|slower)", text)), text
    for r in result["peers"]:
        del r["fresh_cold_s"]
    run._derive(result)
    assert report.summary(result).startswith("jinit cold (in-process) = 1.00x Flax's")


def test_default_outputs_are_git_ignored():
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    for argv, stem in (([], "gpt2-small-float32"), (["--depths", "1,2"], "depth-gpt2-small")):
        paths = cli._outputs(cli.parse(argv), stem)
        for path in paths:
            assert path is not None and pathlib.Path(path).parent == ROOT / "bench" / "out"
            check = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path])
            assert check.returncode == 0, f"{path} is not git-ignored"


def test_counts_read_at_a_glance():
    assert [report.count(n) for n in (808, 32_100, 163.0e6, 6.7384e9)] == [
        "808",
        "32.1K",
        "163.0M",
        "6.74B",
    ]
    listed = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "0.0M" not in listed and "mlp-tiny" in listed


def _fake_result():
    peer = {"label": "jinit.init_tree (one jit)", "peer": "jinit", "warm_s": 0.5}
    peer |= {"fresh_cold_s": 2.0, "fresh_compile_s": 1.0, "check": "reference " + "x" * 80}
    return {"peers": [peer, {**peer, "label": "jax.jit(flax model.init)", "peer": "flax"}]}


def test_table_is_compact_unless_wide():
    compact = report.table(_fake_result())
    wide = report.table(_fake_result(), wide=True)
    assert max(map(len, compact.splitlines())) <= 110, compact
    assert (
        len(wide.splitlines()[0].split("  ")) >= 15
        and "GB/s" in wide
        and "GB/s" not in compact
        and "warm x" in compact
    )
    assert "..." in compact and "x" * 80 in wide  # a long check is cut, not wrapped
    markdown = report.table(_fake_result(), markdown=True).splitlines()[0]
    assert markdown.count("|") == 16 and "GB/s" in markdown  # RESULTS.md keeps every column


def test_help_is_plain_text_and_lists_the_subcommands():
    text = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "``" not in text and "--record" in text and "--wide" in text
    listed = re.findall(r"^  (\w+) ", text.split("Subcommands", 1)[1], re.MULTILINE)
    assert listed == ["depth", *cli.SUBCOMMANDS], listed


@pytest.mark.parametrize("name", ["depth", *cli.SUBCOMMANDS])
def test_each_subcommand_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m bench {name} ")


def test_kernels_subcommand_tiny(tmp_path, capsys):
    out = tmp_path / "k.json"
    argv = ["--shapes", "8x16", "--dtypes", "float32,bfloat16", "--repeats", "1"]
    cli.main(["kernels", *argv, "--json", str(out)])
    rows = json.loads(out.read_text())["kernels"]
    got = [(r["dist"], r["dtype"]) for r in rows]
    assert got[0] == ("bits", "uint32") and ("normal", "bfloat16") in got and len(got) == 7
    assert all(r["jinit_ms"] > 0 and r["jax_ms"] > 0 and r["shape"] == [8, 16] for r in rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["dist", "dtype", "shape", "jinit"] and len(lines) == 2 + 7
    assert lines[2].split()[:3] == ["bits", "uint32", "8x16"]


def test_orthogonal_subcommand_tiny(tmp_path, capsys):
    out = tmp_path / "o.json"
    cli.main(["orthogonal", "--sizes", "8,16", "--repeats", "1", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["n"] for r in rows] == [8, 16]
    assert all(max(r["max_abs_QtQ_minus_I"].values()) < 1e-5 for r in rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].split()[:3] == ["n", "matmul", "s"] and lines[-1].startswith("16 ")


def test_report_subcommand_renders_a_saved_run(tmp_path, capsys):
    saved = ROOT / "bench" / "results" / "gpt2-small-float32.json"
    cli.main(["report", str(saved)])
    text = capsys.readouterr().out
    assert text.startswith("### gpt2-small float32") and "| peer | cold s |" in text


def test_record_goes_to_tracked_results_and_replaces_its_section(tmp_path):
    json_path, plot_path = cli._outputs(cli.parse(["--record"]), "mlp-float32")
    assert pathlib.Path(json_path).parent == ROOT / "bench" / "results"
    assert pathlib.Path(plot_path).parent == ROOT / "bench" / "results"
    with pytest.raises(SystemExit):
        cli.parse(["--record", "--json", "x.json"])
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\nhand-written text\n")
    report.record_section(str(md), "mlp-float32", "### mlp float32\nfirst\n")
    report.record_section(str(md), "gpt2-small-float32", "### gpt2\nother\n")
    report.record_section(str(md), "mlp-float32", "### mlp float32\nsecond\n")
    text = md.read_text()
    assert text.startswith("# Results\n\nhand-written text\n")
    assert "second" in text and "first" not in text and "other" in text
    assert text.index("second") < text.index("other")  # replaced in place


def test_portable_digests_match_the_recorded_cpu_run(capsys):
    """The portable values are pinned: bench/results/digest-cpu.json is the CPU run that a GPU
    run of ``python -m bench digest --compare`` is checked against."""
    assert cli.main(["digest", "--compare", "bench/results/digest-cpu.json"]) == 0
    out = capsys.readouterr().out
    assert "OK: every portable row agrees" in out
    assert len(re.findall(r"== numpy reference +True", out)) == 4


def test_digest_subcommand_exits_1_where_a_portable_row_differs(tmp_path):
    recorded = json.loads((ROOT / "bench" / "results" / "digest-cpu.json").read_text())
    name = next(k for k in recorded["digests"] if k.startswith("portable draw normal"))
    recorded["digests"][name] = "0" * 16
    (tmp_path / "other.json").write_text(json.dumps(recorded))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "digest", "--compare", str(tmp_path / "other.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    assert f"differs: {name}" in done.stdout and "FAIL: 1 portable rows differ" in done.stdout


# --- --scan: the gpt2/llama blocks under one nn.scan, stacked on a leading layer axis ---


def _scanned(name: str, layers: int | None = None) -> presets.Preset:
    return presets.PRESETS[name].with_layers(layers).with_scan()


def _peer_tree(peer: str, ctx: peers.Context) -> dict:
    case = peers.PEERS[peer].build(ctx)
    return {p: np.asarray(a) for p, a in case.flat(case.make()()).items()}


@pytest.mark.parametrize("name", ["gpt2-tiny", "llama-tiny"])
def test_scanned_flax_model_matches_the_scanned_preset(name):
    preset = _scanned(name, 3)
    assert preset.name == f"{name}-L3-scan" and preset.scope == presets.SCAN_SCOPE[preset.kind]
    model, x = models.flax_model(preset, np.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    got = {p: tuple(s.shape) for p, s in presets.flatten(variables).items()}
    assert got == preset.leaves()
    stacked = [p for p in got if preset.stack_axes(p)]
    assert stacked and all(p.startswith(f"params/{preset.scope}/") for p in stacked)
    assert all(got[p][0] == 3 for p in stacked)
    assert preset.num_params() == presets.PRESETS[name].with_layers(3).num_params()


@pytest.mark.parametrize("peer", ["jinit", "flax", "jax-jit", "numpy"])
def test_scanned_peers_draw_each_layer_with_one_layers_fans(peer):
    """Each layer of a stacked kernel has lecun_normal's std for one layer's fan_in (counting
    the 4 layers would halve it), and the layers are different draws."""
    ctx = peers.Context(_scanned("gpt2-tiny", 4), np.dtype(np.float32))
    flat = _peer_tree(peer, ctx)
    kernels = {p: a for p, a in flat.items() if ctx.preset.stack_axes(p) and p.endswith("kernel")}
    assert len(kernels) == 4
    for path, a in kernels.items():
        layers, fan_in, _ = a.shape
        tol = 5 / np.sqrt(2 * a[0].size) + 0.01  # 5 standard errors of a std, and 1%
        for i in range(layers):
            assert abs(a[i].std() * np.sqrt(fan_in) - 1) < tol, (path, i, a[i].std())
        assert not np.array_equal(a[0], a[1]), path


def test_scanned_jinit_peer_is_init_linen_of_the_scanned_model():
    """The raw-tree peer (``jinit.stacked`` rules) gives the bits ``init_linen`` gives the
    scanned Flax model with the plain rules; layer ``i`` is its unrolled twin's draw."""
    import jax.numpy as jnp

    import jinit
    import jinit.flax

    ctx = peers.Context(_scanned("llama-tiny"), np.dtype(np.float32))
    ours = _peer_tree("jinit", ctx)
    model, x = models.flax_model(ctx.preset, np.float32)
    zeros = jnp.zeros(x.shape, x.dtype)
    linen = presets.flatten(jinit.flax.init_linen(model, ctx.key(), presets.rules(jinit), zeros))
    assert linen.keys() == ours.keys()
    for path, value in ours.items():
        np.testing.assert_array_equal(value, linen[path], err_msg=path)
    twin_key = jinit.key_for_path(ctx.key(), "params/layers/1/mlp/up_proj/kernel")
    twin = jinit.lecun_normal()(twin_key, (32, 48))
    np.testing.assert_array_equal(ours["params/layers/mlp/up_proj/kernel"][1], twin)
    with pytest.raises(ValueError, match=r"`rules\(module, scope='h'\)` needs jinit's `stacked`"):
        presets.rules(jax.nn.initializers, "h")


def test_run_tiny_scanned(devices):
    names = ["jinit", "flax", "jax-jit", "numpy", "fill"]
    result = run.run(
        "gpt2-tiny",
        "float32",
        names,
        repeats=1,
        mesh="2x4",
        quiet=True,
        fresh_cold=False,
        scan=True,
    )
    assert result["preset"] == "gpt2-tiny-scan" and result["scan"] is True
    assert result["num_leaves"] == len(_scanned("gpt2-tiny").leaves()) == 17
    by = {r["peer"]: r for r in result["peers"]}
    for r in by.values():
        assert r["status"] == "ok" and r.get("tree_error") is None, r
        assert r["sharded"] == (r["peer"] != "numpy"), r
    assert by["jax-jit"]["bit_identical"] is True  # vmap over the layers' path keys
    assert by["flax"]["stats_ok"] and by["numpy"]["stats_ok"], (by["flax"], by["numpy"])
    assert "nn.scan" in by["flax"]["notes"] and "jinit.stacked" in by["jinit"]["notes"]


def test_scan_option_and_its_errors(capsys):
    assert cli.parse(["--scan", "-p", "llama-tiny"]).scan and not cli.parse([]).scan
    for argv in (
        ["--scan", "-p", "mlp-tiny"],
        ["--scan", "-p", "resnet50", "--aot", "tpu:v5e:2x2"],
    ):
        with pytest.raises(SystemExit):
            cli.parse(argv)
        err = capsys.readouterr().err
        assert "`--scan` applies to the gpt2 and llama presets" in err, err
        assert f"got {argv[2]!r} (kind" in err, err
    with pytest.raises(ValueError, match=r"`--scan` applies to .*; got 'mlp' \(kind 'mlp'\)\."):
        presets.PRESETS["mlp"].with_scan()
    with pytest.raises(SystemExit):
        cold._parse(["--peer", "jinit", "-p", "mlp-tiny", "--scan"])
    assert "`--scan` applies to the gpt2 and llama presets" in capsys.readouterr().err
    assert presets.PRESETS["mlp"].with_scan(False) is presets.PRESETS["mlp"]


def test_scanned_cli_run_is_named_apart_and_cold_runs_scanned(tmp_path, monkeypatch, capsys):
    """A scanned run's outputs are ``<preset>-scan``, beside (not over) the unscanned ones,
    and its fresh processes build the scanned tree."""
    monkeypatch.setattr(cli, "OUT_DIR", str(tmp_path))
    argv = ["-p", "gpt2-tiny", "--scan", "--peers", "jinit,flax", "-r", "1", "-q"]
    result = cli.main([*argv, "--cache", "none"])
    assert result["preset"] == "gpt2-tiny-scan"
    assert capsys.readouterr().out.startswith("gpt2-tiny-scan (")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gpt2-tiny-scan-float32.json",
        "gpt2-tiny-scan-float32.png",
    ]
    for r in result["peers"]:
        fresh = r["fresh_runs"]["fresh"]
        assert fresh["scan"] is True and fresh["num_leaves"] == 17, fresh
        assert r["fresh_cold_s"] > r["fresh_compile_s"] > 0


def test_scanned_depth_sweep_keeps_the_tree_flat(tmp_path):
    """Scanned, the leaves do not grow with the depth (the unscanned sweep: 17, 29)."""
    argv = ["depth", "-p", "gpt2-tiny", "--depths", "1,2", "--peers", "jinit", "--scan", "-q"]
    result = cli.main([*argv, "--json", str(tmp_path / "d.json"), "--plot", "none"])
    assert result["preset"] == "gpt2-tiny-scan" and result["scan"] is True
    assert [r["num_leaves"] for r in result["rows"]] == [17, 17]
    assert all(r["error"] is None for r in result["rows"]), result["rows"]


def test_scanned_aot_compiles_each_peer_for_a_tpu():
    from bench import aot

    if missing := aot.libtpu_missing():
        pytest.skip(missing)
    params = _scanned("gpt2-tiny", 4).num_params() * 4
    for peer in ("jinit", "jax-jit", "flax"):
        row = aot.worker(peer, "v5e:2x2", "gpt2-tiny", "float32", None, 4, scan=True)
        assert params <= row["output_bytes"] and row["compile_s"] > 0, (peer, row)


# --- bench.kernels.bits: the raw hash the kernel benchmark times (jinit draws no bare bits) ---


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 1, 3, 1, 5), (64, 129)], ids=str)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("legacy", [False, True], ids=["typed", "legacy"])
def test_bits_are_jax_random_bits(shape, jit, legacy):
    from bench.kernels import bits

    key = jax.random.PRNGKey(7) if legacy else jax.random.key(7)
    f = jax.jit(bits, static_argnums=1) if jit else bits
    got, want = np.asarray(f(key, shape)), np.asarray(jax.random.bits(key, shape, np.uint32))
    assert got.dtype == np.uint32 and got.shape == shape
    np.testing.assert_array_equal(got, want)


def test_bits_fall_back_to_jax(key):
    from bench.kernels import bits

    with jax.threefry_partitionable(False):
        want = jax.random.bits(key, (5, 33), np.uint32)
        np.testing.assert_array_equal(bits(key, (5, 33)), want)
    rbg = jax.random.key(3, impl="rbg")
    np.testing.assert_array_equal(bits(rbg, (4, 9)), jax.random.bits(rbg, (4, 9), np.uint32))


def test_bits_sharded_are_each_devices_shard(devices, key):
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    from bench.kernels import bits

    mesh = jax.make_mesh((2, 4), ("x", "y"), axis_types=(AxisType.Explicit,) * 2)
    shape = (1024, 2048)
    with jax.set_mesh(mesh):
        sharding = NamedSharding(mesh, P("x", "y"))
        out = bits(key, shape, out_sharding=sharding)
        compiled = jax.jit(lambda k: bits(k, shape, out_sharding=sharding)).lower(key).compile()
    assert out.sharding.spec == P("x", "y")
    np.testing.assert_array_equal(out, bits(key, shape))
    assert compiled.memory_analysis().output_size_in_bytes == 1024 * 2048 * 4 // 8
    assert "[1024,2048]" not in compiled.as_text().split("ENTRY", 1)[1]


def test_surgery_subcommand_measures_both_cases():
    """`python -m bench surgery`: each case in its own process; the surgery output has the
    target's leaves (the trained tree's, a new head, an adapter pair per block)."""
    result = cli.main(["surgery", "-p", "gpt2-tiny", "--rank", "4"])
    rows = result["rows"]
    assert set(rows) == {"surgery", "scratch"}
    assert rows["surgery"]["leaves"] == rows["scratch"]["leaves"]
    assert rows["surgery"]["trained_bytes"] > 0 and result["surgery_peak_over_trained"] >= 1
