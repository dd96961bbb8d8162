"""jinit.flax: linen and nnx models initialised from rules, sharded from their metadata."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
import jinit.flax

RULES = [
    (r"kernel$", jinit.glorot_normal()),
    (r"(bias|mean)$", jinit.zeros),
    (r"(scale|var)$", jinit.ones),
]


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
