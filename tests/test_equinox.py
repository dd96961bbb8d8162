"""jinit.equinox: equinox models initialised by rules, in their own layouts, sharded, stacked, and
equinox's own defaults reproduced layer by layer."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from scipy import stats

import jinit
import jinit.equinox
from jinit import _tree
from jinit._tree import equinox as _eqx_tree

RULES = [(r"weight(_ih|_hh)?$", jinit.he_normal()), (r"bias(_n)?$", jinit.zeros)]


def abstract(cls, *args, **kwargs):
    return eqx.filter_eval_shape(cls, *args, key=jax.random.key(0), **kwargs)


def params(model) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))[0]
    return {jinit.path_str(kp): np.asarray(x) for kp, x in leaves}


def _leaves(model):
    return jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))[0]


def assert_same_params(a, b):
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for path in pa:
        np.testing.assert_array_equal(pa[path], pb[path], err_msg=path)


class Zoo(eqx.Module):
    """One of each of equinox's parametrised layers, non-square where it matters."""

    linear: eqx.nn.Linear
    scalar: eqx.nn.Linear
    conv: eqx.nn.Conv2d
    grouped: eqx.nn.Conv1d
    deconv: eqx.nn.ConvTranspose2d
    embed: eqx.nn.Embedding
    attn: eqx.nn.MultiheadAttention
    ln: eqx.nn.LayerNorm
    rms: eqx.nn.RMSNorm
    gn: eqx.nn.GroupNorm
    mlp: eqx.nn.MLP
    gru: eqx.nn.GRUCell
    lstm: eqx.nn.LSTMCell

    def __init__(self, key):
        k = jax.random.split(key, 11)
        self.linear = eqx.nn.Linear(300, 200, key=k[0])
        self.scalar = eqx.nn.Linear("scalar", 64, key=k[1])
        self.conv = eqx.nn.Conv2d(16, 48, 3, key=k[2])
        self.grouped = eqx.nn.Conv1d(32, 64, 5, groups=4, key=k[3])
        self.deconv = eqx.nn.ConvTranspose2d(24, 8, 4, key=k[4])
        self.embed = eqx.nn.Embedding(1000, 64, key=k[5])
        self.attn = eqx.nn.MultiheadAttention(4, 64, use_query_bias=True, key=k[6])
        self.ln = eqx.nn.LayerNorm(64)
        self.rms = eqx.nn.RMSNorm(64)
        self.gn = eqx.nn.GroupNorm(4, 32)
        self.mlp = eqx.nn.MLP(40, 10, 128, 2, key=k[7])
        self.gru = eqx.nn.GRUCell(48, 96, key=k[8])
        self.lstm = eqx.nn.LSTMCell(48, 80, key=k[9])


ZOO = eqx.filter_eval_shape(Zoo, jax.random.key(0))
ZOO_RULES = [(r"embed/weight$", jinit.normal(0.02)), (r"(ln|rms|gn)/weight$", jinit.ones), *RULES]


def fan_in_of(layer, field) -> int:
    """The fan-in of an equinox layer's weight, from the layer's own attributes."""
    if isinstance(layer, eqx.nn.Linear):
        return 1 if layer.in_features == "scalar" else layer.in_features
    if isinstance(layer, eqx.nn.Conv | eqx.nn.ConvTranspose):
        return layer.in_channels // layer.groups * math.prod(layer.kernel_size)
    if isinstance(layer, eqx.nn.GRUCell | eqx.nn.LSTMCell):
        return layer.input_size if field == "weight_ih" else layer.hidden_size
    raise AssertionError(layer)


def weights(model):
    """(path, layer, field) of every fan-scaled weight in equinox's layers of ``model``."""
    owners = _eqx_tree._owners(model)
    out = []
    for path, owner in owners.items():
        kinds = (eqx.nn.Linear, eqx.nn.Conv, eqx.nn.ConvTranspose, eqx.nn.GRUCell, eqx.nn.LSTMCell)
        if isinstance(owner.layer, kinds) and owner.field.startswith("weight"):
            out.append((path, owner.layer, owner.field))
    return out


# --- 1. init_eqx on abstract and concrete models ------------------------------------------


def test_abstract_and_concrete_models_get_the_same_values(key):
    concrete = Zoo(jax.random.key(1))
    rules = ZOO_RULES
    a = jinit.equinox.init_eqx(ZOO, key, rules)
    c = jinit.equinox.init_eqx(concrete, key, rules)
    assert_same_params(a, c)
    assert type(a) is Zoo and a.linear.weight.shape == (200, 300)
    # the non-array leaves are the model's own: functions, rates, static fields
    assert a.mlp.activation is ZOO.mlp.activation
    assert a.attn.dropout.p == concrete.attn.dropout.p and a.attn.num_heads == 4
    # the model works: equinox's own forward pass on it
    y = jax.vmap(a.mlp)(jnp.ones((3, 40)))
    assert y.shape == (3, 10) and bool(jnp.isfinite(y).all())


def test_paths_are_equinox_attribute_paths(key):
    mlp = abstract(eqx.nn.MLP, 8, 4, 32, 2)
    assert [r.path for r in jinit.explain(mlp, RULES)] == [
        f"layers/{i}/{f}" for i in range(3) for f in ("weight", "bias")
    ]
    model = jinit.equinox.init_eqx(mlp, key, RULES)
    w = jinit.he_normal(in_axis=-1, out_axis=-2)(
        jinit.key_for_path(key, "layers/1/weight"), (32, 32)
    )
    np.testing.assert_array_equal(np.asarray(model.layers[1].weight), np.asarray(w))


def test_init_tree_lays_out_equinox_layers_without_jinit_equinox():
    """``jinit.init_tree`` given an equinox module lays out its weights (and stacks a vmapped
    layer) in a process that never imported ``jinit.equinox``."""
    script = (
        "import sys, equinox as eqx, jax, jinit\n"
        "m = eqx.filter_eval_shape(eqx.nn.Linear, 64, 4096, key=jax.random.key(0))\n"
        "w = jinit.init_tree(0, m, [('weight', jinit.he_normal()), ('bias', jinit.zeros)]).weight\n"
        "assert 'jinit.equinox' not in sys.modules\n"
        "print(w.shape, round(float(w.std() * (64 / 2) ** 0.5), 1))\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["(4096,", "64)", "1.0"]


def test_init_tree_and_group_false_agree(key):
    rules = ZOO_RULES
    a = jinit.equinox.init_eqx(ZOO, key, rules)
    assert_same_params(a, jinit.init_tree(key, ZOO, rules))  # init_tree takes the module too
    assert_same_params(a, jinit.equinox.init_eqx(ZOO, key, rules, group=False))
    jitted = eqx.filter_jit(lambda k: jinit.equinox.init_eqx(ZOO, k, rules))
    assert_same_params(a, jitted(key))


def test_filter_keeps_other_arrays_and_refuses_abstract_ones(key):
    class Counter(eqx.Module):
        linear: eqx.nn.Linear
        steps: jax.Array

    concrete = Counter(eqx.nn.Linear(4, 8, key=key), jnp.array(7))
    out = jinit.equinox.init_eqx(concrete, key, RULES)
    assert out.steps is concrete.steps  # an integer array: not a parameter, kept
    with pytest.raises(ValueError, match=r"'steps' \(int32\[\]\) is abstract but not a parameter"):
        jinit.equinox.init_eqx(eqx.filter_eval_shape(lambda: concrete), key, RULES)
    only_weights = jinit.equinox.init_eqx(
        concrete, key, RULES, filter=lambda x: eqx.is_inexact_array(x) and x.ndim == 2
    )
    assert only_weights.linear.bias is concrete.linear.bias
    with pytest.raises(TypeError, match=r"`init_eqx\(model=...\)` must be an equinox Module"):
        jinit.equinox.init_eqx({"w": jnp.ones(3)}, key, RULES)


# --- 2. layouts ---------------------------------------------------------------------------


def test_he_std_of_every_equinox_weight_is_the_formula(key):
    """The std of every fan-scaled weight of a real model is sqrt(2 / fan_in) of its real axes,
    and its bits are those of he_normal built with its real in and out axes."""
    model = jinit.equinox.init_eqx(ZOO, key, ZOO_RULES)
    got = params(model)
    checked = set()
    for path, layer, field in weights(ZOO):
        w, fan_in = got[path], fan_in_of(layer, field)
        n = w.size
        want = math.sqrt(2 / fan_in)
        # the sample std of n normals is within 5 / sqrt(2n) of the truth (5 sigma)
        assert abs(w.std() / want - 1) < 5 / math.sqrt(2 * n), (path, w.std(), want)
        d = w.ndim - 2 if isinstance(layer, eqx.nn.Conv | eqx.nn.ConvTranspose) else 0
        built = jinit.he_normal(in_axis=1, out_axis=0)(jinit.key_for_path(key, path), w.shape)
        np.testing.assert_array_equal(w, np.asarray(built), err_msg=path)
        checked.add((type(layer).__name__, d))
    assert {k for k, _ in checked} >= {"Linear", "Conv2d", "Conv1d", "ConvTranspose2d", "GRUCell"}
    # explain reports the same target: the formula, from the layout
    for row in jinit.explain(ZOO, ZOO_RULES):
        if row.path in dict((p, f) for p, _, f in weights(ZOO)):
            layer = _eqx_tree._owners(ZOO)[row.path]
            want = math.sqrt(2 / fan_in_of(layer.layer, layer.field))
            assert row.target_std == pytest.approx(want, rel=1e-6), row.path
            assert row.initializer.endswith("]"), row.initializer  # e.g. [in=-1,out=-2]


def test_user_module_states_its_layout_in_the_rule(key):
    class Mine(eqx.Module):
        w: jax.Array  # (out, in), as equinox's own layers

    mine = Mine(jax.ShapeDtypeStruct((64, 4096), jnp.float32))
    stated = [("w", jinit.equinox.layout(jinit.he_normal(), in_axis=-1, out_axis=-2))]
    w = jinit.equinox.init_eqx(mine, key, stated).w
    assert float(w.std()) == pytest.approx(math.sqrt(2 / 4096), rel=0.02)
    # unstated, the initializer reads Flax's layout (in = 64): what a rule without a layout says
    flax_layout = jinit.equinox.init_eqx(mine, key, [("w", jinit.he_normal())]).w
    assert float(flax_layout.std()) == pytest.approx(math.sqrt(2 / 64), rel=0.02)
    # an explicit layout on equinox's own layer is kept: (-2, -1) keeps the initializer's axes
    lin = abstract(eqx.nn.Linear, 16, 512)
    own = jinit.he_normal(in_axis=1, out_axis=0)
    kept = jinit.equinox.init_eqx(lin, key, [("weight", jinit.equinox.layout(own, -2, -1)), *RULES])
    auto = jinit.equinox.init_eqx(lin, key, RULES)
    np.testing.assert_array_equal(np.asarray(kept.weight), np.asarray(auto.weight))


def test_structured_initializers_land_on_the_real_axes(key):
    """orthogonal() is written for (in, out); on an equinox (out, in) weight the orthonormal
    vectors are the rows (in > out) or the columns (out > in), as on the transposed Flax kernel."""
    model = abstract(eqx.nn.MLP, 96, 16, 48, 1)  # weights (48, 96) and (16, 48)
    out = jinit.equinox.init_eqx(model, key, [("weight", jinit.orthogonal()), *RULES])
    for w in (out.layers[0].weight, out.layers[1].weight):
        w = np.asarray(w, np.float64)
        np.testing.assert_allclose(w @ w.T, np.eye(w.shape[0]), atol=1e-5)
    conv = abstract(eqx.nn.Conv2d, 8, 8, 3)
    dirac = jinit.equinox.init_eqx(conv, key, [("weight", jinit.dirac()), *RULES]).weight
    assert dirac.shape == (8, 8, 3, 3)  # (out, in, kh, kw): the identity at the kernel centre
    np.testing.assert_array_equal(np.asarray(dirac[:, :, 1, 1]), np.eye(8))
    assert float(jnp.abs(dirac).sum()) == 8.0


def test_layout_errors(key):
    with pytest.raises(TypeError, match=r"`layout\(init=...\)` must be an initializer"):
        jinit.equinox.layout(3)
    init = jinit.equinox.layout(jinit.he_normal(), in_axis=0, out_axis=0)
    with pytest.raises(ValueError, match=r"names an axis as both input and output"):
        init(key, (4, 4))
    with pytest.raises(ValueError, match=r"out of range"):
        jinit.equinox.layout(jinit.he_normal(), in_axis=3)(key, (4, 4))


# --- 3. equinox's own defaults ------------------------------------------------------------


def equinox_keys(key):
    """The key equinox's Zoo(key) gives each parameter (its constructors' splits)."""
    k = jax.random.split(key, 11)
    w_b = lambda kk: dict(zip(("weight", "bias"), jax.random.split(kk, 2), strict=True))
    out = {}
    for name, i in (("linear", 0), ("scalar", 1), ("conv", 2), ("grouped", 3), ("deconv", 4)):
        out |= {f"{name}/{f}": v for f, v in w_b(k[i]).items()}
    out["embed/weight"] = k[5]
    projs = ("query_proj", "key_proj", "value_proj", "output_proj")
    for proj, kk in zip(projs, jax.random.split(k[6], 4), strict=True):
        out |= {f"attn/{proj}/{f}": v for f, v in w_b(kk).items()}
    for i, kk in enumerate(jax.random.split(k[7], 3)):
        out |= {f"mlp/layers/{i}/{f}": v for f, v in w_b(kk).items()}
    gru = jax.random.split(k[8], 4)
    out |= dict(zip(("gru/weight_ih", "gru/weight_hh", "gru/bias", "gru/bias_n"), gru, strict=True))
    lstm = jax.random.split(k[9], 3)
    out |= dict(zip(("lstm/weight_ih", "lstm/weight_hh", "lstm/bias"), lstm, strict=True))
    return out


def test_defaults_reproduce_equinox_layer_by_layer(key):
    """Every parameter of every layer: equinox's bound exactly, equinox's distribution (two-sample
    KS against equinox's own init), and equinox's bits when given equinox's key."""
    theirs = params(Zoo(key))
    ours = params(jinit.equinox.init_eqx(ZOO, key, jinit.equinox.defaults()))
    assert ours.keys() == theirs.keys()
    rows = {r.path: r for r in jinit.explain(ZOO, jinit.equinox.defaults())}
    eqx_keys = equinox_keys(key)
    for path, w in ours.items():
        ref, row = theirs[path], rows[path]
        if row.initializer in ("ones", "zeros"):  # the norms' weights and biases
            np.testing.assert_array_equal(w, ref, err_msg=path)
            continue
        same_key = np.asarray(row.init(eqx_keys[path], w.shape, w.dtype))
        np.testing.assert_array_equal(same_key, ref, err_msg=path)  # equinox's bits, its key
        assert stats.ks_2samp(w.ravel(), ref.ravel()).pvalue > 1e-4, path
        if "Embedding" in row.rule:
            assert abs(w.std() - 1) < 0.02, path
            continue
        layer = _eqx_tree._owners(ZOO)[path].layer
        if isinstance(layer, eqx.nn.GRUCell | eqx.nn.LSTMCell):
            lim = np.float32(math.sqrt(1 / layer.hidden_size))
        else:
            lim = np.float32(1 / math.sqrt(fan_in_of(layer, "weight")))
        for x in (w, ref):  # U[-lim, lim): inside the bound, and reaching it
            assert -lim <= x.min() and x.max() < lim, path
            assert np.abs(x).max() > lim * (1 - 20 / x.size), path


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
def test_uniform_is_equinox_draw_eager_jitted_and_grouped(dtype, key):
    """``jinit.equinox.uniform(lim)``: ``jax.random.uniform(key, shape, minval=-lim,
    maxval=lim)``'s float32 bits (equinox's ``default_init``), rounded once for bfloat16; the
    same under ``jit``, and in ``init_tree`` grouped (two shapes) or leaf by leaf."""
    lim, shape = 0.125, (16, 24)
    init = jinit.equinox.uniform(lim)
    want = jax.random.uniform(key, shape, jnp.float32, -lim, lim).astype(dtype)
    for got in (init(key, shape, dtype), jax.jit(init, static_argnums=(1, 2))(key, shape, dtype)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    tree = {p: jax.ShapeDtypeStruct(s, dtype) for p, s in (("a", shape), ("b", shape), ("c", (7,)))}
    rules = [(".*", init)]
    grouped = jinit.init_tree(key, tree, rules)
    per_leaf = jinit.init_tree(key, tree, rules, group=False)
    for path, x in grouped.items():
        alone = init(jinit.key_for_path(key, path), x.shape, dtype)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(alone), err_msg=path)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(per_leaf[path]), err_msg=path)
    d = jinit.describe(init, shape)
    assert (d.target_mean, d.target_std) == (0.0, pytest.approx(lim / math.sqrt(3), rel=1e-12))


def test_uniform_takes_a_traced_bound(key):
    """A traced ``lim`` (a sweep under ``jit`` or ``vmap``) gives the number's bits, eagerly and
    in ``init_tree`` (drawn leaf by leaf: the bound is the draw's own argument), and an odd
    bound (not a power of two) is the case that would show a rounding difference."""
    shape, tree = (16, 24), {"w": jax.ShapeDtypeStruct((16, 24), jnp.float32)}
    lims = np.array([0.125, 1 / math.sqrt(3072), 0.3], np.float32)
    swept = jax.vmap(lambda lim: jinit.equinox.uniform(lim)(key, shape))(lims)
    trees = jax.jit(
        jax.vmap(lambda lim: jinit.init_tree(key, tree, [("w", jinit.equinox.uniform(lim))]))
    )(lims)
    for i, lim in enumerate(lims):
        want = jinit.equinox.uniform(float(lim))(key, shape)
        np.testing.assert_array_equal(np.asarray(swept[i]), np.asarray(want))
        np.testing.assert_array_equal(
            np.asarray(jax.random.uniform(key, shape, jnp.float32, -lim, lim)), np.asarray(want)
        )
        tree_want = jinit.init_tree(key, tree, [("w", jinit.equinox.uniform(float(lim)))])
        np.testing.assert_array_equal(np.asarray(trees["w"][i]), np.asarray(tree_want["w"]))
    with pytest.raises(ValueError, match=r"`equinox.uniform\(lim=...\)` must be a scalar"):
        jax.jit(lambda lim: jinit.equinox.uniform(lim)(key, shape))(jnp.ones(3))


def test_defaults_after_rules_and_unknown_parameters(key):
    rules = [(r"mlp/layers/2/weight$", jinit.zeros), jinit.equinox.defaults()]
    model = jinit.equinox.init_eqx(ZOO, key, rules)
    assert float(jnp.abs(model.mlp.layers[2].weight).max()) == 0.0
    assert float(jnp.abs(model.mlp.layers[2].bias).max()) > 0.0  # equinox's bias default

    class Mine(eqx.Module):
        linear: eqx.nn.Linear
        gain: jax.Array

    mine = Mine(abstract(eqx.nn.Linear, 4, 4), jax.ShapeDtypeStruct((4,), jnp.float32))
    with pytest.raises(
        ValueError, match=r"no equinox default for the parameter 'gain'.*Put a rule"
    ):
        jinit.equinox.init_eqx(mine, key, jinit.equinox.defaults())
    out = jinit.equinox.init_eqx(mine, key, [("gain", jinit.ones), jinit.equinox.defaults()])
    assert float(out.gain.sum()) == 4.0
    with pytest.raises(TypeError, match=r"reads equinox's layers; use it on an equinox module"):
        jinit.init_tree(
            key, {"w": jax.ShapeDtypeStruct((4, 4), jnp.float32)}, jinit.equinox.defaults()
        )


# --- 4. scan over layers ------------------------------------------------------------------


class Block(eqx.Module):
    attn: eqx.nn.MultiheadAttention
    norm: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.attn = eqx.nn.MultiheadAttention(4, 32, key=k1)
        self.norm = eqx.nn.LayerNorm(32)
        self.mlp = eqx.nn.MLP(32, 32, 64, 1, key=k2)


class Stacked(eqx.Module):
    blocks: Block  # every array has a leading layer axis


class Unrolled(eqx.Module):
    blocks: list[Block]


def test_scanned_layers_equal_their_unrolled_twin(key):
    depth = 4
    make = lambda k: Block(k)
    stacked = eqx.filter_eval_shape(
        lambda k: Stacked(eqx.filter_vmap(make)(jax.random.split(k, depth))), key
    )
    unrolled = eqx.filter_eval_shape(
        lambda k: Unrolled([make(kk) for kk in jax.random.split(k, depth)]), key
    )
    assert stacked.blocks.attn.query_proj.weight.shape == (depth, 32, 32)
    layer = [
        (r"weight$", jinit.glorot_uniform()),
        (r"norm/weight$", jinit.ones),
        (r"bias$", jinit.normal(0.1)),
    ]
    layer = [layer[1], layer[0], layer[2]]
    scan_rules = [(p, jinit.stacked(init, unroll="blocks")) for p, init in layer]
    s = jinit.equinox.init_eqx(stacked, key, scan_rules)
    u = jinit.equinox.init_eqx(unrolled, key, layer)
    for i in range(depth):
        layer_i = jax.tree.map(lambda x, i=i: x[i], eqx.filter(s.blocks, eqx.is_array))
        for (kp, a), (_, b) in zip(
            jax.tree_util.tree_flatten_with_path(layer_i)[0],
            jax.tree_util.tree_flatten_with_path(eqx.filter(u.blocks[i], eqx.is_array))[0],
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str((i, kp)))
    # the stacked weights' fans exclude the layer axis: glorot on (out, in) = (32, 32) and
    # (64, 32): U(+-sqrt(6 / (fan_in + fan_out)))
    w = s.blocks.mlp.layers[0].weight
    assert float(jnp.abs(w).max()) <= math.sqrt(6 / (32 + 64))
    # the scanned model runs in equinox's scan idiom
    dynamic, static = eqx.partition(s.blocks, eqx.is_array)

    def step(x, p):
        block = eqx.combine(p, static)
        return x + jax.vmap(block.mlp)(jax.vmap(block.norm)(x)), None

    y, _ = jax.lax.scan(step, jnp.ones((5, 32)), dynamic)
    assert y.shape == (5, 32) and bool(jnp.isfinite(y).all())


# --- 5. sharding --------------------------------------------------------------------------


@pytest.fixture
def mesh(devices):
    return jax.make_mesh((2, 4), ("data", "model"), devices=devices)


SPECS = [
    (r"(query|key|value)_proj/weight$", P("model", None)),
    (r"output_proj/weight$", P(None, "model")),
    (r"embed/weight$", P(None, "model")),
    (r"mlp/layers/0/weight$", P("model", "data")),
]


def test_sharded_equals_unsharded(mesh, key):
    rules = ZOO_RULES
    ref = jinit.equinox.init_eqx(ZOO, key, rules)
    out = jinit.equinox.init_eqx(ZOO, key, rules, mesh=mesh, shardings=SPECS)
    assert_same_params(out, ref)
    assert out.attn.query_proj.weight.sharding == NamedSharding(mesh, P("model", None))
    assert out.mlp.layers[0].weight.sharding == NamedSharding(mesh, P("model", "data"))
    assert out.linear.weight.sharding == NamedSharding(mesh, P())  # replicated over the mesh
    # explain reports the same shardings, from the same path rules
    made = {jinit.path_str(kp): x.sharding for kp, x in _leaves(out)}
    for row in jinit.explain(ZOO, rules, mesh=mesh, shardings=SPECS):
        assert row.sharding == made[row.path], row.path
    # each device holds its shard only
    shard = out.mlp.layers[0].weight.addressable_shards[0].data
    assert shard.shape == (128 // 4, 40 // 2)
    with jax.set_mesh(mesh):  # the ambient mesh, a dict of specs, one spec for all
        ambient = jinit.equinox.init_eqx(ZOO, key, rules, shardings=dict(SPECS))
        assert_same_params(ambient, ref)
        assert ambient.embed.weight.sharding == NamedSharding(mesh, P(None, "model"))
        every = jinit.equinox.init_eqx(ZOO, key, rules, shardings=P())
        assert_same_params(every, ref)
    # a pytree prefix of the model: everything under `attn` split over `model` by rows
    prefix = jax.tree.map(lambda _: None, ZOO)
    prefix = eqx.tree_at(lambda m: m.attn, prefix, P("model"))
    tree = jinit.equinox.init_eqx(ZOO, key, rules, mesh=mesh, shardings=prefix)
    assert tree.attn.value_proj.weight.sharding.spec == P("model")
    assert_same_params(tree, ref)


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_sharded_generation_holds_one_shard_per_device(axis_type, devices, key):
    """The compiled program's outputs are one shard per parameter, and its temporaries are far
    below one weight: each device generates only its own shards."""
    mesh = jax.make_mesh((2, 4), ("data", "model"), devices=devices, axis_types=(axis_type,) * 2)
    model = abstract(eqx.nn.MLP, 512, 512, 1024, 2)
    spec = [(r"weight$", P("model", "data")), (r"bias$", P("model"))]
    leaves, _ = _tree.plan(model, RULES, None, spec, mesh)
    fn = _tree.compiled_builder(leaves, "threefry2x32", "init_tree")
    mem = fn.lower(jax.random.key_data(key)).compile().memory_analysis()
    shards = sum(math.prod(leaf.shape) * 4 // (8 if len(leaf.shape) == 2 else 4) for leaf in leaves)
    assert mem.output_size_in_bytes == shards + 8 * len(leaves)
    assert mem.temp_size_in_bytes < 64 * 1024  # one whole weight is 2 MiB


def test_sharding_rule_errors(mesh, key):
    with pytest.raises(ValueError, match=r"the pattern 'wieght' matches no parameter"):
        jinit.equinox.init_eqx(ZOO, key, RULES, mesh=mesh, shardings=[("wieght", P())])
    with pytest.raises(TypeError, match=r"must be a PartitionSpec, a Sharding or None"):
        jinit.equinox.init_eqx(ZOO, key, RULES, mesh=mesh, shardings=[("weight", "model")])


# --- 6. no silent no-op -------------------------------------------------------------------


def test_a_tree_without_parameters_raises(key):
    mlp = abstract(eqx.nn.MLP, 8, 4, 32, 2)
    dynamic, _ = eqx.partition(mlp, eqx.is_array)  # the mistake: no leaf of it is an array
    with pytest.raises(ValueError, match=r"`init_tree`: the tree holds no parameter.*are None"):
        jinit.init_tree(key, dynamic, RULES)
    with pytest.raises(ValueError, match=r"`init_tree`: the tree holds no parameter"):
        jinit.init_tree(key, {}, RULES)
    with pytest.raises(ValueError, match=r"`init_eqx`: the tree holds no parameter"):
        jinit.equinox.init_eqx(eqx.nn.Dropout(0.1), key, RULES)


def test_flax_models_without_parameters_raise(key):
    from flax import linen, nnx

    import jinit.flax

    class NoParams(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.relu(x)

    with pytest.raises(ValueError, match=r"`init_linen`: the tree holds no parameter"):
        jinit.flax.init_linen(NoParams(), key, RULES, jnp.ones((1, 3)))
    # a concrete model without parameters: nothing to fill (an abstract one has RNG state to fill)
    dropout = nnx.Dropout(0.1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"`init_nnx`: the tree holds no parameter"):
        jinit.flax.init_nnx(dropout, key, RULES)
    abstract = nnx.eval_shape(lambda: nnx.Dropout(0.1, rngs=nnx.Rngs(0)))
    filled = jinit.flax.init_nnx(abstract, key, RULES, rngs=3)
    want = jinit.key_for_path(jax.random.key(3), "rngs/key")
    got = filled.rngs.key[...]
    np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(want))


def test_no_rule_matching_any_parameter_raises(key):
    from flax import linen, nnx

    import jinit.flax

    misspelt = dict(default=jinit.zeros, allow_unused_rules=True)
    rules = [("kernal", jinit.he_normal())]
    match = r"no rule matches any of the \d+ parameters \(every one got `default=`\)"
    with pytest.raises(ValueError, match="`init_tree`: " + match):
        jinit.init_tree(key, {"k": jax.ShapeDtypeStruct((2, 2), jnp.float32)}, rules, **misspelt)
    with pytest.raises(ValueError, match="`init_linen`: " + match):
        jinit.flax.init_linen(linen.Dense(3), key, rules, jnp.ones((1, 2)), **misspelt)
    dense = nnx.eval_shape(lambda: nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="`init_nnx`: " + match):
        jinit.flax.init_nnx(dense, key, rules, **misspelt)
    with pytest.raises(ValueError, match="`init_eqx`: " + match):
        jinit.equinox.init_eqx(ZOO, key, [("wieght", jinit.he_normal())], **misspelt)


# --- explain, portable --------------------------------------------------------------------


def test_explain_and_portable(key):
    table = str(jinit.explain(ZOO, ZOO_RULES))
    assert "linear/weight" in table and "attn/query_proj/weight" in table
    assert "activation" not in table and "dropout" not in table
    rules = ZOO_RULES
    a = jinit.equinox.init_eqx(ZOO, key, rules, portable=True)
    w = np.asarray(a.linear.weight)
    assert abs(w.std() / math.sqrt(2 / 300) - 1) < 0.02


# --- equinox's defaults for stateful and wrapping layers ----------------------------------


def _state_leaves(model) -> list:
    """The leaves of a model's initial ``eqx.nn.State``, in order."""
    return jax.tree.leaves(eqx.nn.State(model))


@pytest.mark.parametrize("mode", ["ema", "batch"])
def test_defaults_give_batch_norm_equinox_state(mode, key):
    """An abstract BatchNorm (it holds a bool flag or an int counter) is made, its running
    statistics equinox's, its flag and counter equinox's (dtype and weak type too), and it runs
    as equinox's own does."""
    make = lambda: eqx.nn.BatchNorm(6, "batch", mode=mode)
    model = jinit.equinox.init_eqx(eqx.filter_eval_shape(make), key, jinit.equinox.defaults())
    theirs = make()
    assert_same_params(model, theirs)
    ours, ref = _state_leaves(model), _state_leaves(theirs)
    assert len(ours) == len(ref) == 3
    for a, b in zip(ours, ref, strict=True):
        assert (a.dtype, a.shape, a.weak_type) == (b.dtype, b.shape, b.weak_type)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    split = eqx.nn.make_with_state(jinit.equinox.init_eqx)
    m, state = split(eqx.filter_eval_shape(make), key, jinit.equinox.defaults())
    m0, state0 = eqx.nn.make_with_state(make)()
    x = jax.random.normal(key, (5, 6))
    run = lambda m, s: jax.vmap(m, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(x, s)
    (y, s1), (y0, s10) = run(m, state), run(m0, state0)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y0), rtol=1e-6, atol=1e-6)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s10), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_defaults_give_prelu_equinox_slope(key):
    """0.25, weakly typed as `jnp.asarray(0.25)` is (a bfloat16 input stays bfloat16); an
    array `init_alpha` gives a strongly typed slope of its shape."""
    d = jinit.equinox.defaults()
    ours = jinit.equinox.init_eqx(eqx.filter_eval_shape(eqx.nn.PReLU), key, d).negative_slope
    theirs = eqx.nn.PReLU().negative_slope
    assert (ours.dtype, ours.shape, ours.weak_type) == (theirs.dtype, (), True)
    assert float(ours) == 0.25
    x = jnp.ones((3,), jnp.bfloat16)
    assert eqx.nn.PReLU(ours)(-x).dtype == jnp.bfloat16
    per_channel = eqx.filter_eval_shape(eqx.nn.PReLU, jnp.full((4,), 0.25, jnp.float32))
    slope = jinit.equinox.init_eqx(per_channel, key, d).negative_slope
    assert slope.shape == (4,) and not slope.weak_type and bool((slope == 0.25).all())


@pytest.mark.parametrize("axis", [0, 1, None])
def test_defaults_give_weight_norm_g_the_built_weights_norm(axis, key):
    """`g` is equinox's own construction on the built weight, to the bit, so the wrapped layer
    starts as the bare one; under a stack (`eqx.filter_vmap`) too; a rule before the rule set
    wins."""
    make = lambda key: eqx.nn.WeightNorm(eqx.nn.Conv2d(3, 6, 3, key=key), axis=axis)
    model = jinit.equinox.init_eqx(abstract(make), key, jinit.equinox.defaults())
    np.testing.assert_array_equal(np.asarray(model.g), eqx.nn.WeightNorm(model.layer, axis=axis).g)
    x = jax.random.normal(key, (3, 8, 8))
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model.layer(x)), atol=1e-6)
    stack = eqx.filter_eval_shape(
        eqx.filter_vmap(lambda k: eqx.nn.WeightNorm(eqx.nn.Linear(4, 3, key=k), axis=axis)),
        jax.random.split(key, 5),
    )
    stacked = jinit.equinox.init_eqx(stack, key, jinit.equinox.defaults())
    ref = eqx.filter_vmap(lambda layer: eqx.nn.WeightNorm(layer, axis=axis).g)(stacked.layer)
    np.testing.assert_array_equal(np.asarray(stacked.g), np.asarray(ref))
    rules = [("g$", jinit.ones), jinit.equinox.defaults()]
    ruled = jinit.equinox.init_eqx(abstract(make), key, rules)
    assert bool((ruled.g == 1).all())


def test_defaults_give_spectral_norm_state_equinox_law(key):
    """u and v: N(0, 1) draws (jinit's, from their paths' keys), then equinox's 15 power
    iterations on the built weight; unit vectors whose estimate of the top singular value is
    as close as equinox's own."""
    from equinox.nn._spectral_norm import _power_iteration  # equinox's step, the reference

    make = lambda key: eqx.nn.SpectralNorm(eqx.nn.Linear(300, 200, key=key), "weight", key=key)
    d = jinit.equinox.defaults()
    model = jinit.equinox.init_eqx(abstract(make), key, d)
    drawn = jinit.equinox.init_eqx(abstract(make), key, [(r"uv_index", jinit.normal(1.0)), d])
    u, v = drawn.uv_index.init
    for draw in (u, v):
        assert stats.kstest(np.asarray(draw), "norm").pvalue > 1e-4
    w = drawn.layer.weight
    np.testing.assert_array_equal(np.asarray(w), np.asarray(model.layer.weight))
    for _ in range(15):
        u, v = _power_iteration(w, u, v, model.eps)
    ours = model.uv_index.init
    np.testing.assert_allclose(np.asarray(ours[0]), np.asarray(u), atol=1e-6)
    np.testing.assert_allclose(np.asarray(ours[1]), np.asarray(v), atol=1e-6)
    theirs = eqx.nn.SpectralNorm(model.layer, "weight", key=jax.random.key(1))
    top = np.linalg.svd(np.asarray(w), compute_uv=False)[0]
    for a, b in (ours, eqx.nn.State(theirs).get(theirs.uv_index)):
        for unit in (a, b):
            assert abs(float(jnp.linalg.norm(unit)) - 1) < 1e-5
        assert 0.9 * top < float(a @ w @ b) <= top * (1 + 1e-5)
    m, state = eqx.nn.make_with_state(jinit.equinox.init_eqx)(abstract(make), key, d)
    y, _ = m(jnp.ones(300), state)
    assert y.shape == (200,) and bool(jnp.isfinite(y).all())


def test_a_model_and_state_pair_is_refused_with_the_way_to_split(key):
    pair = eqx.filter_eval_shape(eqx.nn.make_with_state(eqx.nn.BatchNorm), 4, "b", mode="batch")
    with pytest.raises(TypeError, match=r"got a \(model, State\) pair.*make_with_state\(jinit"):
        jinit.equinox.init_eqx(pair, key, jinit.equinox.defaults())


def test_defaults_computed_from_the_weight_do_not_depend_on_the_mesh(mesh, key):
    """WeightNorm's g and SpectralNorm's u, v from a weight split over its reduced axis: the
    values of the unsharded model, with the shardings the rules give them."""

    class Normed(eqx.Module):
        wn: eqx.nn.WeightNorm
        sn: eqx.nn.SpectralNorm

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.wn = eqx.nn.WeightNorm(eqx.nn.Linear(64, 8, key=k1))
            self.sn = eqx.nn.SpectralNorm(eqx.nn.Linear(64, 32, key=k2), "weight", key=k2)

    model = eqx.filter_eval_shape(Normed, jax.random.key(0))
    d = jinit.equinox.defaults()
    ref = jinit.equinox.init_eqx(model, key, d)
    specs = [(r"weight$", P(None, "model")), (r"(g|init/0)$", P("model")), (r".*", P())]
    out = jinit.equinox.init_eqx(model, key, d, mesh=mesh, shardings=specs)
    assert_same_params(out, ref)
    assert out.wn.g.sharding == NamedSharding(mesh, P("model"))
    assert out.sn.uv_index.init[0].sharding == NamedSharding(mesh, P("model"))
