"""jinit.flax: linen and nnx models initialised from rules, sharded from their metadata (boxes,
jax.set_mesh); every nnx variable; boxed metadata in init_tree; errors that name the entry point
the user called."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
import jinit.flax

RULES = [
    (r"kernel$", jinit.glorot_normal()),
    (r"(bias|mean)$", jinit.zeros),
    (r"(scale|var)$", jinit.ones),
]


def test_flax_all_lists_exactly_its_public_functions():
    """`jinit.flax.__all__` is what the README and the modules page use: the functions written
    in `jinit/flax.py`, not the names it imports."""
    written = {
        n
        for n, v in vars(jinit.flax).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == "jinit.flax"
    }
    assert sorted(jinit.flax.__all__) == sorted(written)
    assert set(written) == {"init_linen", "init_nnx", "explain_linen", "explain_nnx"}
    star: dict = {}
    exec("from jinit.flax import *", star)
    assert "jax" not in star and "np" not in star and "init_linen" in star


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        ki = nn.initializers.lecun_normal()
        x = nn.Dense(64, kernel_init=nn.with_partitioning(ki, (None, "model")))(x)
        x = nn.Dense(32, kernel_init=nn.with_logical_partitioning(ki, ("hidden", "embed")))(x)
        return nn.BatchNorm(use_running_average=True)(x)


@pytest.fixture
def mesh(devices):
    return jax.make_mesh(
        (2, 4), ("data", "model"), devices=devices, axis_types=(jax.sharding.AxisType.Auto,) * 2
    )


def test_linen_values_boxes_and_shardings(mesh, key):
    logical = [("hidden", "model"), ("embed", "data")]
    v = jinit.flax.init_linen(
        MLP(), key, RULES, jnp.ones((2, 16)), mesh=mesh, logical_axis_rules=logical
    )
    k0, k1 = v["params"]["Dense_0"]["kernel"], v["params"]["Dense_1"]["kernel"]
    assert isinstance(k0, nn.Partitioned) and isinstance(k1, nn.LogicallyPartitioned)
    assert k0.value.sharding == NamedSharding(mesh, P(None, "model"))
    assert k1.value.sharding == NamedSharding(mesh, P("model", "data"))
    assert v["batch_stats"]["BatchNorm_0"]["var"].sharding == NamedSharding(mesh, P())
    expected = jinit.glorot_normal()(jinit.key_for_path(key, "params/Dense_1/kernel"), (64, 32))
    np.testing.assert_array_equal(np.asarray(k1.value), np.asarray(expected))
    # The boxes are those module.init makes, so the model applies as usual.
    y = MLP().apply(v, jnp.ones((2, 16)))
    assert y.shape == (2, 32)


def test_linen_logical_rules_from_context(mesh, key):
    with nn.logical_axis_rules([("hidden", "data"), ("embed", "model")]):
        v = jinit.flax.init_linen(MLP(), key, RULES, jnp.ones((2, 16)), mesh=mesh)
    assert v["params"]["Dense_1"]["kernel"].value.sharding.spec == P("data", "model")


def test_linen_unmatched_names_path(key):
    with pytest.raises(
        ValueError,
        match=r"no rule matches the parameter "
        r"'batch_stats/BatchNorm_0/mean'",
    ):
        jinit.flax.init_linen(MLP(), key, RULES[:1], jnp.ones((2, 16)))


class Net(nnx.Module):
    def __init__(self, rngs, n_layers=2):
        ki = nnx.initializers.lecun_normal()
        self.inp = nnx.Linear(
            16, 64, rngs=rngs, kernel_init=nnx.with_partitioning(ki, (None, "model"))
        )
        self.layers = nnx.List([nnx.Linear(64, 64, rngs=rngs) for _ in range(n_layers)])


def test_nnx_abstract_sharded_and_path_stable(mesh, key):
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: Net(nnx.Rngs(0)))
        bigger = nnx.eval_shape(lambda: Net(nnx.Rngs(0), n_layers=3))
    m = jinit.flax.init_nnx(abstract, key, RULES, mesh=mesh)
    m3 = jinit.flax.init_nnx(bigger, key, RULES, mesh=mesh)
    assert m.inp.kernel.sharding == NamedSharding(mesh, P(None, "model"))
    expected = jinit.glorot_normal()(jinit.key_for_path(key, "layers/1/kernel"), (64, 64))
    np.testing.assert_array_equal(np.asarray(m.layers[1].kernel[...]), np.asarray(expected))
    # An extra layer changes no other layer (nnx's own init would shift the later ones).
    np.testing.assert_array_equal(
        np.asarray(m3.layers[1].kernel[...]), np.asarray(m.layers[1].kernel[...])
    )


def test_nnx_concrete_model_updated_in_place(mesh, key):
    with jax.set_mesh(mesh):
        model = Net(nnx.Rngs(0))
    out = jinit.flax.init_nnx(model, key, RULES, mesh=mesh)
    assert out is model
    assert (np.asarray(model.inp.bias[...]) == 0).all()
    expected = jinit.glorot_normal()(jinit.key_for_path(key, "inp/kernel"), (16, 64))
    np.testing.assert_array_equal(np.asarray(model.inp.kernel[...]), np.asarray(expected))


def test_nnx_abstract_unselected_variable_gets_flax_default(key):
    # BatchNorm statistics of an abstract model take Flax's own values (mean 0, var 1)
    # instead of an error asking to widen the filter. An unselected abstract variable Flax has
    # no default for still raises, naming its path.
    abstract = nnx.eval_shape(lambda: nnx.BatchNorm(8, rngs=nnx.Rngs(0)))
    bn = jinit.flax.init_nnx(abstract, key, RULES, allow_unused_rules=True)
    assert (np.asarray(bn.mean[...]) == 0).all() and (np.asarray(bn.var[...]) == 1).all()
    bn = jinit.flax.init_nnx(abstract, key, RULES, filter=nnx.Variable)
    assert (np.asarray(bn.var[...]) == 1).all()


def test_group_false_gives_the_same_values_for_linen_and_nnx(mesh, key):
    """`group=` reaches init_tree from both Flax entry points: one kernel per leaf gives the
    grouped values, bit for bit; a non-bool is refused naming the entry point."""
    x = jnp.ones((2, 16))
    kw = {"mesh": mesh, "logical_axis_rules": [("hidden", "model"), ("embed", "data")]}
    grouped = jinit.flax.init_linen(MLP(), key, RULES, x, **kw)
    per_leaf = jinit.flax.init_linen(MLP(), key, RULES, x, group=False, **kw)
    for a, b in zip(jax.tree.leaves(grouped), jax.tree.leaves(per_leaf), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    make = lambda: nnx.eval_shape(lambda: nnx.Linear(16, 64, rngs=nnx.Rngs(0)))
    a = jinit.flax.init_nnx(make(), key, RULES)
    b = jinit.flax.init_nnx(make(), key, RULES, group=False)
    np.testing.assert_array_equal(np.asarray(a.kernel[...]), np.asarray(b.kernel[...]))
    with pytest.raises(TypeError, match=r"`init_nnx\(group=\.\.\.\)` must be a bool"):
        jinit.flax.init_nnx(make(), key, RULES, group="no")


# --- the ambient mesh, boxes in init_tree, every nnx variable -------------------------------------

KERNELS_AND_BIASES = [(r"kernel$", jinit.glorot_normal()), (r"bias$", jinit.zeros)]
LECUN = nn.initializers.lecun_normal()


def _mesh(devices, axis_type):
    return jax.make_mesh((2, 4), ("data", "model"), devices=devices, axis_types=(axis_type,) * 2)


def _same(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


class Partitioned(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(32, kernel_init=nn.with_partitioning(LECUN, (None, "model")))(x)
        return nn.Dense(16, kernel_init=nn.with_logical_partitioning(LECUN, ("hidden", "out")))(x)


# --- jax.set_mesh and boxed metadata -------------------------------------------------------------


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit])
def test_init_linen_uses_the_ambient_mesh(devices, key, axis_type):
    mesh = _mesh(devices, axis_type)
    x = jnp.ones((2, 16))
    with jax.set_mesh(mesh), nn.logical_axis_rules([("hidden", "model")]):
        v = jinit.flax.init_linen(Partitioned(), key, KERNELS_AND_BIASES, x)
    k0 = v["params"]["Dense_0"]["kernel"]
    assert isinstance(k0, nn.Partitioned)
    assert k0.value.sharding == NamedSharding(mesh, P(None, "model"))
    assert v["params"]["Dense_1"]["kernel"].value.sharding.spec == P("model", None)
    assert v["params"]["Dense_0"]["bias"].sharding == NamedSharding(mesh, P())
    want = jinit.glorot_normal()(jinit.key_for_path(key, "params/Dense_0/kernel"), (16, 32))
    _same(k0.value, want)


def test_init_tree_sees_a_box_at_the_parameters_path(devices, key):
    mesh = _mesh(devices, AxisType.Auto)
    model = nn.Dense(32, kernel_init=nn.with_partitioning(LECUN, (None, "model")))
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((2, 16)))
    # `kernel$` matches (the path is params/kernel, not params/kernel/value) and the box's
    # partitioning is the sharding; before, the leaf was replicated inside its box.
    out = jinit.init_tree(key, abstract, KERNELS_AND_BIASES, mesh=mesh)
    kernel = out["params"]["kernel"]
    assert isinstance(kernel, nn.Partitioned) and kernel.names == (None, "model")
    assert kernel.value.sharding == NamedSharding(mesh, P(None, "model"))
    _same(kernel.value, jinit.glorot_normal()(jinit.key_for_path(key, "params/kernel"), (16, 32)))
    assert [r.path for r in jinit.explain(abstract, KERNELS_AND_BIASES)] == [
        "params/bias",
        "params/kernel",
    ]


def test_init_tree_box_under_a_mesh_without_rules_raises_naming_the_path(devices, key):
    abstract = jax.eval_shape(Partitioned().init, jax.random.key(0), jnp.ones((2, 16)))
    # With no mesh at all the boxes are metadata, as in model.init (tests/test_partitioning.py).
    kernel = jinit.init_tree(key, abstract, KERNELS_AND_BIASES)["params"]["Dense_0"]["kernel"]
    assert kernel.value.sharding.device_set == {jax.devices()[0]}
    with pytest.raises(
        ValueError, match=r"'params/Dense_1/kernel' is partitioned by logical names \('hidden'"
    ):
        jinit.init_tree(key, abstract, KERNELS_AND_BIASES, mesh=_mesh(devices, AxisType.Auto))


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit])
def test_init_tree_reads_nnx_variables(devices, key, axis_type):
    mesh = _mesh(devices, axis_type)
    init = nnx.with_partitioning(LECUN, (None, "model"))
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: nnx.Linear(16, 32, kernel_init=init, rngs=nnx.Rngs(0)))
        state = jinit.init_tree(key, nnx.state(abstract), KERNELS_AND_BIASES)
    assert isinstance(state["kernel"], nnx.Param)
    assert state["kernel"].get_value().sharding == NamedSharding(mesh, P(None, "model"))
    want = jinit.glorot_normal()(jinit.key_for_path(key, "kernel"), (16, 32))
    _same(state["kernel"].get_value(), want)


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit])
def test_init_nnx_uses_the_ambient_mesh(devices, key, axis_type):
    mesh = _mesh(devices, axis_type)
    init = nnx.with_partitioning(LECUN, (None, "model"))
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: nnx.Linear(16, 32, kernel_init=init, rngs=nnx.Rngs(0)))
        model = jinit.flax.init_nnx(abstract, key, KERNELS_AND_BIASES)
        y = model(jnp.ones((4, 16)))
    assert model.kernel[...].sharding == NamedSharding(mesh, P(None, "model"))
    assert model.bias[...].sharding.is_fully_replicated
    assert y.shape == (4, 32)


# --- every standard nnx variable -----------------------------------------------------------------


class Everything(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.embed = nnx.Embed(50, 16, rngs=rngs)
        self.conv = nnx.Conv(16, 16, (3,), rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(2, 16, dropout_rate=0.1, decode=False, rngs=rngs)
        self.ln = nnx.LayerNorm(16, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.head = nnx.Linear(16, 4, rngs=rngs)

    def __call__(self, tokens):
        x = self.bn(self.conv(self.embed(tokens)))
        return self.head(self.drop(self.ln(x + self.attn(x))))


RULES_ALL = [
    (r"embedding$", jinit.normal(0.02)),
    (r"kernel$", jinit.lecun_normal()),
    (r"bias$", jinit.zeros),
    (r"scale$", jinit.ones),
]


def test_init_nnx_every_standard_variable(key):
    abstract = nnx.eval_shape(lambda: Everything(nnx.Rngs(0)))
    model = jinit.flax.init_nnx(abstract, key, RULES_ALL, rngs=nnx.Rngs(7))
    flax_model = Everything(nnx.Rngs(0))
    ours, theirs = nnx.to_flat_state(nnx.state(model)), nnx.to_flat_state(nnx.state(flax_model))
    assert [p for p, _ in ours] == [p for p, _ in theirs]
    for (path, a), (_, b) in zip(ours, theirs, strict=True):
        assert type(a) is type(b), path
        va, vb = a.get_value(), b.get_value()
        assert (va.shape, va.dtype) == (vb.shape, vb.dtype), path
        if isinstance(a, nnx.BatchStat | nnx.RngCount):  # Flax's own values
            _same(va, vb)
    assert (np.asarray(model.bn.var[...]) == 1).all()
    # The model runs, dropout included (it needs its RNG state).
    tokens = jnp.arange(24).reshape(2, 12) % 50
    model.train()
    a, b = model(tokens), model(tokens)
    assert a.shape == (2, 12, 4) and not np.array_equal(np.asarray(a), np.asarray(b))
    # Each RNG key is derived from its path and the `rngs=` stream of its tag (or a seed).
    again = jinit.flax.init_nnx(abstract, key, RULES_ALL, rngs=nnx.Rngs(7))
    seeded = jinit.flax.init_nnx(abstract, key, RULES_ALL, rngs=2)
    keys = lambda m: jax.random.key_data(m.drop.rngs.key[...])
    _same(keys(again), jax.random.key_data(jinit.key_for_path(jax.random.key(7), "drop/rngs/key")))
    assert not np.array_equal(np.asarray(keys(again)), np.asarray(keys(seeded)))


def test_init_nnx_every_standard_variable_under_an_explicit_mesh(devices, key):
    mesh = _mesh(devices, AxisType.Explicit)
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(lambda: Everything(nnx.Rngs(0)))
        model = jinit.flax.init_nnx(abstract, key, RULES_ALL, rngs=3)
        assert model.bn.var[...].sharding.mesh == mesh
        assert (np.asarray(model.bn.var[...]) == 1).all()
        assert model.drop.rngs.key[...].sharding == NamedSharding(mesh, P())
        model.train()
        y = model(jnp.arange(24).reshape(2, 12) % 50)  # dropout and batch statistics update
    assert y.shape == (2, 12, 4) and not (np.asarray(model.bn.var[...]) == 1).all()


def test_init_nnx_unknown_abstract_variable_raises_naming_it(key):
    class Custom(nnx.Variable):
        pass

    class Model(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.ones((3,)))
            self.odd = Custom(jnp.ones((2,)))

    abstract = nnx.eval_shape(lambda: Model())
    with pytest.raises(ValueError, match=r"`init_nnx`: the variable 'odd' \(Custom\) is abstract"):
        jinit.flax.init_nnx(abstract, key, [("w", jinit.ones)])
    with pytest.raises(TypeError, match=r"`init_nnx\(rngs=...\)` must be an nnx.Rngs"):
        jinit.flax.init_nnx(abstract, key, [("w", jinit.ones)], rngs="0")
    # A filter that selects everything still leaves RNG state to Flax's defaults.
    wide = nnx.eval_shape(lambda: nnx.Dropout(0.5, rngs=nnx.Rngs(0)))
    drop = jinit.flax.init_nnx(wide, key, [], filter=nnx.Variable, rngs=4)
    want = jinit.key_for_path(jax.random.key(4), "rngs/key")
    _same(jax.random.key_data(drop.rngs.key[...]), jax.random.key_data(want))
    with pytest.raises(ValueError, match=r"`init_nnx\(rngs=...\)` has no stream 'default'"):
        jinit.flax.init_nnx(wide, key, [], rngs=nnx.Rngs(params=0))


def test_init_tree_on_rng_state_points_to_init_nnx(key):
    abstract = nnx.eval_shape(
        lambda: nnx.Sequential(
            nnx.Linear(4, 8, rngs=nnx.Rngs(0)), nnx.Dropout(0.1, rngs=nnx.Rngs(0))
        )
    )
    with pytest.raises(
        TypeError, match=r"'layers/1/rngs/key' is an RNG key .*`jinit.flax.init_nnx`"
    ):
        jinit.init_tree(key, abstract, KERNELS_AND_BIASES, default=jinit.zeros)


# --- errors name the entry point -----------------------------------------------------------------


def test_errors_name_the_entry_point(key):
    with pytest.raises(ValueError, match=r"^`init_linen`: no rule matches the parameter"):
        jinit.flax.init_linen(nn.Dense(4), key, [("kernel$", jinit.zeros)], jnp.ones((1, 2)))
    abstract = nnx.eval_shape(lambda: nnx.Linear(2, 4, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"^`init_nnx`: no rule matches the parameter 'bias'"):
        jinit.flax.init_nnx(abstract, key, [("kernel$", jinit.zeros)])
    with pytest.raises(ValueError, match=r"^`init_nnx`: the rule 'kernal\$' applies to no"):
        jinit.flax.init_nnx(abstract, key, [("kernal$", jinit.ones)], default=jinit.zeros)
