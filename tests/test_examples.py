"""The examples compute what they claim: each runs small, and its summary's physics is checked."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import jax
import numpy as np
import pytest

import jinit

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str):
    if str(ROOT / "examples") not in sys.path:  # the examples' shared module (_common)
        sys.path.insert(0, str(ROOT / "examples"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png(path: pathlib.Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_signal_propagation_physics(tmp_path):
    sp = _load("signal_propagation")
    key, depth, width = jax.random.key(0), 24, 256
    he = sp.activation_rms(jinit.he_normal(), jax.nn.relu, depth, width, key)
    lecun = sp.activation_rms(jinit.lecun_normal(), jax.nn.relu, depth, width, key)
    # He keeps the ReLU activations' second moment (within a factor 2 over 24 layers) ...
    assert 0.5 < he[-1] / he[0] < 2.0, he
    # ... while LeCun halves it at every layer: RMS ratio 2^(-(depth-1)/2) ~ 2.5e-4.
    assert lecun[-1] / lecun[0] == pytest.approx(2 ** (-(depth - 1) / 2), rel=0.5)
    results = sp.run(depth=4, width=32)
    sp.plot(results, str(tmp_path / "sp.png"))
    assert (tmp_path / "sp.png").stat().st_size > 10_000


def test_signal_propagation_activations_and_gradients(tmp_path):
    sp = _load("signal_propagation")
    depth, width = 20, 64
    results = sp.main(
        ["--depth", str(depth), "--width", str(width), "--out", str(tmp_path / "a.png")]
    )
    assert _png(tmp_path / "a.png")
    relu, tanh = results["relu"], results["tanh"]
    he, small = relu["He (normal)"], relu["N(0,1)*0.01"]
    # He keeps ReLU activations and gradients O(1) through depth, both ways (up to the
    # finite-width drift of a product of 20 random 64x64 layers) ...
    for quantity in ("activation", "gradient"):
        ratio = he[quantity][-1] / he[quantity][0]
        assert 1 / 5 < ratio < 5, (quantity, he[quantity])
    # ... while LeCun (half He's variance) halves the second moment at every layer.
    lecun_relu = relu["LeCun (normal)"]["activation"]
    assert np.log2(he["activation"][-1] / lecun_relu[-1]) == pytest.approx((depth - 1) / 2, abs=2)
    # N(0, 0.01) multiplies the ReLU signal's scale by 0.01 * sqrt(width / 2) per layer, forwards
    # and backwards; float64 keeps even ~1e-24 exact (nothing is clipped to a floor).
    per_layer = 0.01 * np.sqrt(width / 2)
    for quantity, (first, last) in (("activation", (0, -1)), ("gradient", (-1, 0))):
        values = small[quantity]
        assert np.all(np.isfinite(values)) and np.all(values > 0)
        measured = np.log10(values[last] / values[first])
        assert measured == pytest.approx((depth - 1) * np.log10(per_layer), abs=1.0)
    # tanh: Glorot holds the activations' scale within an order of magnitude; the small Gaussian
    # and torch's U(+-1/sqrt(n)) (Glorot & Bengio's "standard" init) make them vanish.
    glorot = tanh["Glorot (uniform)"]["activation"]
    assert glorot[-1] > 0.1 * glorot[0]
    assert tanh["N(0,1)*0.01"]["activation"][-1] < 1e-10
    assert tanh["U(±1/√n) (G&B 'standard', torch)"]["activation"][-1] < 1e-2 * glorot[-1]
    # Glorot and LeCun have the same variance for square layers: the curves coincide.
    lecun = tanh["LeCun (normal)"]["activation"]
    assert np.allclose(np.log(glorot), np.log(lecun), atol=0.2)


def test_seed_study_physics(tmp_path):
    ss = _load("seed_study")
    out = ss.main([
        "--seeds", "12", "--steps", "150", "--schemes", "zeros", "he", "glorot", "U[0,1]",
        "--compare", "he", "zeros", "--reference", "glorot", "--replay", "he", "5",
        "--out", str(tmp_path / "ss.png"),
    ])  # fmt: skip
    result, stats = out["result"], out["stats"]
    assert _png(tmp_path / "ss.png")
    acc = dict(zip(result["schemes"], result["accuracy"], strict=True))
    loss = dict(zip(result["schemes"], result["loss"], strict=True))
    # zeros: every seed is the same network (nothing random), stuck at chance and at ln 2.
    assert np.all(acc["zeros"] == 0.5)
    np.testing.assert_allclose(loss["zeros"], np.log(2), rtol=1e-6)
    # He trains: every seed beats chance, and the seeds differ.
    assert acc["he"].min() > 0.6 and acc["he"].std() > 0
    # one replica rerun alone from its path key: the same initial bits and the same curve
    assert stats["replay_same_init"]
    assert stats["replay_max_diff"] < 1e-3
    # bootstrap CIs bracket the mean, and he vs zeros is told apart from the smallest n
    for s in result["schemes"]:
        lo, hi = stats["ci"][s]
        assert lo <= acc[s].mean() <= hi
    assert stats["power"][0] == 1.0 and stats["seeds_needed"] == stats["ns"][0]
    assert stats["pitfall"] is not None and len(stats["pitfall"]["diffs"]) > 0


def test_seed_study_statistics():
    ss = _load("seed_study")
    rng = np.random.default_rng(0)
    same = rng.normal(size=64)
    # two groups of one distribution: the t-test's false positives stay near its 5% level
    assert 0.02 < ss.five_vs_five(same, rng)["false_positive_rate"] < 0.09
    assert ss.five_vs_five(np.ones(20), rng)["false_positive_rate"] == 0.0
    # power: separated distributions are told apart at n = 5; identical ones rarely
    far = rng.normal(size=64) + 3.0
    assert ss.power(far, same, 5, rng, studies=50)[0] == 1.0
    assert ss.power(rng.normal(size=64), same, 5, rng, studies=50)[0] < 0.3


def test_convex_vs_nonconvex_physics(tmp_path):
    cv = _load("convex_vs_nonconvex")
    result = cv.main(["--inits", "6", "--steps", "1000", "--out", str(tmp_path / "c.png")])
    assert _png(tmp_path / "c.png")
    convex, nonconvex = result["models"].values()
    # convex: every start reaches the same minimum, the same weights and a zero gradient
    assert np.ptp(convex["final_loss"]) < 1e-5
    assert convex["weight_spread"] < 1e-3
    assert convex["grad_norm"].max() < 1e-4
    # non-convex: the starts end in minima of clearly different loss
    assert np.ptp(nonconvex["final_loss"]) > 0.05
    assert nonconvex["weight_spread"] > 1.0


def test_symmetry_physics(tmp_path):
    sy = _load("symmetry")
    result = sy.main(["--steps", "300", "--out", str(tmp_path / "s.png")])
    assert _png(tmp_path / "s.png")
    zeros, ones, random = (result["schemes"][k] for k in ("zeros", "ones", "glorot (random)"))
    # zeros: no gradient reaches a kernel; ones: the units move, but together (rank 1)
    assert np.all(zeros["kernels"] == 0)
    assert ones["spread"] == 0.0 and ones["rank"] == 1
    assert np.ptp(ones["kernels"][:, 0, 0]) > 0.1  # the tied units did move
    assert random["spread"] > 0.1 and random["rank"] == 2
    assert random["accuracy"] > ones["accuracy"] + 0.1  # measured: 0.988 vs 0.727


def test_lottery_ticket_physics(tmp_path):
    lt = _load("lottery_ticket")
    r = lt.main(["--seeds", "3", "--steps", "1000", "--rates", "0.8",
                 "--out", str(tmp_path / "l.png")])  # fmt: skip
    assert _png(tmp_path / "l.png")
    assert r["rewind_exact"]  # init_tree(seed) recomputes the initial weights bit for bit
    assert r["pruned_stay_zero"]
    assert r["kept"][0] == pytest.approx(0.2, abs=0.01)
    # the rewound ticket beats the random reinit with the same mask (measured: 0.935 vs 0.889);
    # a rewind that drew fresh weights would be just another reinit and fail this
    assert r["rewound_acc"][0].mean() > r["reinit_acc"][0].mean() + 0.02
    assert r["rewound_acc"][0].mean() > 0.7


def test_init_as_hyperparameter_physics(tmp_path):
    ih = _load("init_as_hyperparameter")
    result = ih.run(2, 150, lrs=(1e-3, 1e-2, 3e-2, 0.1, 0.3),
                    schemes=["N(0,1)*0.01", "he", "U[-1,1]"])  # fmt: skip
    ih.plot(result, str(tmp_path / "h.png"))
    assert _png(tmp_path / "h.png")
    best = ih.best_lrs(result)
    # a vanishing init trains at no learning rate; a large one wants a smaller step than He's
    assert best["N(0,1)*0.01"] is None
    assert best["U[-1,1]"] is not None and best["he"] is not None
    assert best["U[-1,1]"] < best["he"]
    median = np.median(result["loss"], axis=1)
    assert median[1].min() < 0.3


def test_sharded_init_bytes_and_values(tmp_path, devices):
    sh = _load("sharded_init")
    r = sh.main(["--layers", "2", "--d-model", "64", "--vocab", "512", "--mesh", "2x4",
                 "--out", str(tmp_path / "sh.png")])  # fmt: skip
    assert _png(tmp_path / "sh.png")
    # each device holds exactly its shards: a leaf's bytes over the mesh axes its spec names
    tree = sh.gpt2_tree(2, 64, 512)
    sizes = {"data": 2, "model": 4}
    expected = sum(
        leaf.size * 4 // int(np.prod([sizes[a] for a in spec if a is not None]))
        for leaf, spec in zip(
            jax.tree.leaves(tree), jax.tree.leaves(sh.specs(tree, r["mesh_obj"])), strict=True
        )
    )
    assert len(r["per_device"]) == 8
    assert set(r["per_device"].values()) == {expected}
    assert expected < r["total_bytes"] / 7
    assert r["same_as_unsharded"]
    whole = jinit.init_tree(0, sh.gpt2_tree(2, 64, 512), sh.rules(2))
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(r["params"]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_equinox_transformer_rules_shards_and_trains(devices):
    et = _load("equinox_transformer")
    r = et.main(["--steps", "12"])
    # every parameter of the model is in explain's table, the blocks' weights in their layout
    table = r["table"]
    for path in ("embed/weight", "blocks/attn/query_proj/weight", "blocks/mlp/layers/1/weight"):
        assert path in table
    assert "stacked(lecun_normal[in=-1,out=-2])" in table
    row = next(line for line in table.splitlines() if line.startswith("blocks/attn/query_proj"))
    assert "P(None, 'model', None)" in row  # explain shows the sharding init_eqx gives
    # sharded over the 2x4 mesh, with the unsharded build's bits
    assert r["same_as_unsharded"]
    q = r["sharded"].blocks.attn.query_proj.weight
    want = jax.sharding.NamedSharding(r["mesh"], jax.sharding.PartitionSpec(None, "model", None))
    assert q.sharding.is_equivalent_to(want, q.ndim)
    assert q.addressable_shards[0].data.shape == (q.shape[0], q.shape[1] // 4, q.shape[2])
    # each stacked layer is its unrolled twin, with He's std over equinox's (out, in) fan-in
    w = np.asarray(r["initial"].blocks.mlp.layers[0].weight)  # (layers, 4d, d)
    he = jinit.he_normal(in_axis=-1, out_axis=-2)
    twin = he(jinit.key_for_path(0, "blocks/1/mlp/layers/0/weight"), w.shape[1:])
    np.testing.assert_array_equal(w[1], np.asarray(twin))
    assert w.std() == pytest.approx(np.sqrt(2 / w.shape[2]), rel=0.05)
    # the zero head makes the first loss ln(vocab); a few Adam steps lower it
    assert r["losses"][0] == pytest.approx(np.log(128), abs=1e-4)
    assert r["losses"][-1] < 0.7 * r["losses"][0]


def test_finetune_surgery_keeps_the_body_and_fine_tunes(tmp_path):
    fs = _load("finetune_surgery")
    out = fs.main(["--seeds", "3", "--pretrain-steps", "300", "--steps", "80",
                   "--out", str(tmp_path / "fs.png")])  # fmt: skip
    assert _png(tmp_path / "fs.png")
    assert out["kept"]  # the kept layers are the pretrained ones, bit for bit
    assert out["pretrain_accuracy"] > 0.95
    acc = out["accuracy"]
    assert acc.shape == (4, 3)
    # every arm learns the new classes from a few shots (chance is 0.2)
    assert acc.min() > 0.6
    # the re-initialised arms differ by seed; k = 0 (only a new head) differs by seed too
    assert (acc.std(axis=1) > 0).all()
