"""jinit initializers plugged into Flax layers (linen and nnx) as kernel_init / bias_init."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import jinit

J = jax.nn.initializers


def _same(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    ("layer", "x_shape"),
    [
        (lambda init: nn.Dense(16, kernel_init=init), (2, 8)),
        (lambda init: nn.Conv(16, (3, 3), kernel_init=init), (2, 8, 8, 4)),
        (lambda init: nn.DenseGeneral((4, 8), axis=-1, kernel_init=init), (2, 16)),
        (lambda init: nn.DenseGeneral(8, axis=(-2, -1), kernel_init=init), (2, 4, 16)),
    ],
)
@pytest.mark.parametrize("name", ["he_normal", "lecun_uniform", "glorot_normal"])
def test_linen_layers_match_jax(layer, x_shape, name):
    x = jnp.ones(x_shape)
    key = jax.random.key(0)
    ours = jax.jit(layer(getattr(jinit, name)()).init)(key, x)
    ref = jax.jit(layer(getattr(J, name)()).init)(key, x)
    jax.tree.map(_same, ours, ref)


def test_linen_bias_init_and_dtype():
    model = nn.Dense(
        16, kernel_init=jinit.orthogonal(), bias_init=jinit.constant(0.1), param_dtype=jnp.bfloat16
    )
    params = model.init(jax.random.key(0), jnp.ones((2, 16)))["params"]
    assert params["kernel"].dtype == jnp.bfloat16
    _same(params["bias"], jnp.full((16,), 0.1, jnp.bfloat16))
    k = np.asarray(params["kernel"].astype(jnp.float32))
    np.testing.assert_allclose(k.T @ k, np.eye(16), atol=3e-2)


def test_linen_with_partitioning():
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    model = nn.Dense(32, kernel_init=nn.with_partitioning(jinit.lecun_normal(), (None, "model")))
    x = jnp.ones((2, 16))
    abstract = jax.eval_shape(model.init, jax.random.key(0), x)
    spec = nn.get_partition_spec(abstract)
    shardings = jax.tree.map(lambda s: jax.sharding.NamedSharding(mesh, s), spec)
    params = jax.jit(model.init, out_shardings=shardings)(jax.random.key(0), x)
    kernel = params["params"]["kernel"]
    assert isinstance(kernel, nn.Partitioned)
    assert kernel.value.sharding.spec == jax.P(None, "model")
    ref = nn.Dense(32, kernel_init=J.lecun_normal()).init(jax.random.key(0), x)
    _same(kernel.value, jax.jit(lambda: ref)()["params"]["kernel"])


def test_nnx_linear_and_conv():
    lin = nnx.Linear(8, 16, kernel_init=jinit.he_uniform(), rngs=nnx.Rngs(0))
    ref = nnx.Linear(8, 16, kernel_init=J.he_uniform(), rngs=nnx.Rngs(0))
    _same(lin.kernel[...], ref.kernel[...])
    conv = nnx.Conv(4, 16, (3, 3), kernel_init=jinit.delta_orthogonal(), rngs=nnx.Rngs(0))
    w = np.asarray(conv.kernel[...])
    assert w.shape == (3, 3, 4, 16)
    assert not np.delete(w.reshape(9, 4, 16), 4, axis=0).any()


def test_nnx_einsum_gets_the_right_fans():
    """nnx.Einsum passes the raw (512, 8, 64) kernel shape; jinit's einsum= form gets 1/512."""
    spec = "btd,dnh->btnh"
    layer = nnx.Einsum(
        spec, (512, 8, 64), kernel_init=jinit.lecun_normal(einsum=spec), rngs=nnx.Rngs(0)
    )
    assert float(layer.kernel[...].var()) * 512 == pytest.approx(1.0, abs=0.02)
    default = nnx.Einsum(spec, (512, 8, 64), rngs=nnx.Rngs(0))
    assert float(default.kernel[...].var()) * 4096 == pytest.approx(1.0, abs=0.02)


def test_nnx_with_partitioning():
    mesh = jax.make_mesh(
        (2, 4), ("data", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 2
    )
    init = nnx.with_partitioning(jinit.lecun_normal(), (None, "model"))
    with jax.set_mesh(mesh):
        layer = nnx.Linear(16, 32, kernel_init=init, rngs=nnx.Rngs(0))
        kernel = layer.kernel[...]
    assert kernel.sharding.spec == jax.P(None, "model")
    ref = nnx.Linear(16, 32, kernel_init=J.lecun_normal(), rngs=nnx.Rngs(0))
    _same(kernel, jax.jit(lambda k: k)(ref.kernel[...]))


class _WeightNormed(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.dense = nnx.WeightNorm(nnx.Linear(4, 3, rngs=rngs), rngs=rngs)
        self.conv = nnx.WeightNorm(
            nnx.Conv(3, 5, (3, 3), rngs=rngs),
            feature_axes=None,
            scale_init=jinit.constant(2.0),
            rngs=rngs,
        )

    def __call__(self, x):
        return self.conv(self.dense(x)[:, None, None, :])


def test_init_nnx_gives_weight_norm_scales_flax_values():
    """`nnx.WeightNorm`'s scales are plain arrays (no Variable): `nnx.eval_shape` leaves them
    ShapeDtypeStructs that no rule sees. `init_nnx` gives them Flax's `scale_init` value, so
    every leaf is an array and the model computes what Flax's own model with these weights
    does."""
    import jinit.flax

    abstract = nnx.eval_shape(lambda: _WeightNormed(nnx.Rngs(0)))
    rules = {r"kernel$": jinit.he_normal(), r"bias$": jinit.zeros}
    model = jinit.flax.init_nnx(abstract, 0, rules)
    placeholders = [p for p, x in nnx.iter_graph(model) if isinstance(x, jax.ShapeDtypeStruct)]
    assert not placeholders  # (before: the scales, outside the state, stayed abstract)
    flax_own = _WeightNormed(nnx.Rngs(0))
    for ours, theirs in ((model.dense, flax_own.dense), (model.conv, flax_own.conv)):
        assert ours.scales.keys() == theirs.scales.keys()
        for k in ours.scales:
            assert ours.scales[k].dtype == theirs.scales[k].dtype
            _same(ours.scales[k], theirs.scales[k])
    # the abstract model is left as it was: a second call gives the same model
    again = jinit.flax.init_nnx(abstract, 0, rules)
    jax.tree.map(_same, nnx.state(again), nnx.state(model))
    nnx.update(flax_own, nnx.state(model, nnx.Param))
    x = jax.random.normal(jax.random.key(1), (2, 4))
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(flax_own(x)), rtol=1e-6)
    concrete = _WeightNormed(nnx.Rngs(0))  # its scales are plain arrays in its state: kept
    scales = concrete.conv.scales[("kernel",)]
    assert jinit.flax.init_nnx(concrete, 0, rules) is concrete
    assert concrete.conv.scales[("kernel",)] is scales


def test_init_nnx_refuses_abstract_values_it_cannot_make():
    import jinit.flax

    class Buffered(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.dense = nnx.Linear(2, 2, rngs=rngs)
            self.buffers = nnx.data({"a": jnp.zeros((3,)), "b": jnp.ones((2, 2))})

    abstract = nnx.eval_shape(lambda: Buffered(nnx.Rngs(0)))
    rules = {r"kernel$": jinit.he_normal(), r"bias$": jinit.zeros}
    match = (
        r"`init_nnx`: the model holds abstract values outside nnx Variables.*"
        r"'buffers/a' \(float32\[3\]\), 'buffers/b' \(float32\[2, 2\]\).*nnx\.Variable"
    )
    with pytest.raises(ValueError, match=match):
        jinit.flax.init_nnx(abstract, 0, rules)
    concrete = Buffered(nnx.Rngs(0))  # its arrays are its own: kept
    assert jinit.flax.init_nnx(concrete, 0, rules) is concrete
