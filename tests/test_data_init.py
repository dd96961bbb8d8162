"""jinit.data_init: LSUV and weight normalisation's data-dependent init on a small CNN and MLP,
linen and nnx, checked against the papers' criteria on the layers' actual outputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import jinit
from jinit import data_init

ORTHO = jinit.orthogonal()


class LinenCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(16, (3, 3), kernel_init=ORTHO)(x))
        x = nn.relu(nn.Conv(32, (3, 3), strides=2, kernel_init=ORTHO)(x))
        x = x.mean(axis=(1, 2))
        x = nn.relu(nn.Dense(64, kernel_init=ORTHO)(x))
        return nn.Dense(10, kernel_init=ORTHO)(x)


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (128, 128, 64):
            x = jnp.tanh(nn.Dense(width, kernel_init=ORTHO)(x))
        return nn.Dense(10, kernel_init=ORTHO)(x)


class NnxCNN(nnx.Module):
    def __init__(self, rngs):
        self.c1 = nnx.Conv(3, 16, (3, 3), kernel_init=ORTHO, rngs=rngs)
        self.c2 = nnx.Conv(16, 32, (3, 3), strides=2, kernel_init=ORTHO, rngs=rngs)
        self.d1 = nnx.Linear(32, 64, kernel_init=ORTHO, rngs=rngs)
        self.d2 = nnx.Linear(64, 10, kernel_init=ORTHO, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.c2(nnx.relu(self.c1(x)))).mean(axis=(1, 2))
        return self.d2(nnx.relu(self.d1(x)))


def images():
    return jax.random.uniform(jax.random.key(0), (64, 16, 16, 3)) * 255.0  # unnormalised pixels


def vectors():
    return jax.random.normal(jax.random.key(0), (256, 32)) * 5.0


def linen_outputs(model, variables, x):
    _, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    flat = jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]
    return {
        jinit.path_str(p[:-2]): v
        for p, v in flat
        if jinit.path_str(p[-2:-1]) == "__call__" and len(p) > 2
    }


@pytest.mark.parametrize("make, data", [(LinenCNN, images), (LinenMLP, vectors)])
def test_lsuv_linen_gives_every_layer_unit_variance(make, data):
    model, x = make(), data()
    variables = model.init(jax.random.key(1), x)
    before = linen_outputs(model, variables, x)
    assert max(abs(float(v.var()) - 1) for v in before.values()) > 1  # far from unit variance
    out = jax.jit(lambda v, x: data_init.lsuv_linen(model, v, x))(variables, x)
    after = linen_outputs(model, out, x)
    assert set(after) == set(before) and len(after) == 4
    for name, v in after.items():
        assert abs(float(v.var()) - 1) < 0.1, (name, float(v.var()))
    # Only the kernels changed, each by one positive factor (the paper's rescaling).
    for (path, a), (_, b) in zip(
        jax.tree_util.tree_flatten_with_path(variables)[0],
        jax.tree_util.tree_flatten_with_path(out)[0],
        strict=True,
    ):
        ratio = np.asarray(b) / np.where(np.asarray(a) == 0, 1, np.asarray(a))
        if jinit.path_str(path).endswith("kernel"):
            assert np.allclose(ratio, ratio.flat[0], rtol=1e-5) and ratio.flat[0] > 0
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_lsuv_nnx_cnn():
    model, x = NnxCNN(nnx.Rngs(0)), images()
    data_init.lsuv_nnx(model, x)
    _, inter = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
    inter = nnx.to_pure_dict(inter)
    for layer in ("c1", "c2", "d1", "d2"):
        v = float(inter[layer]["__call__"][0].var())
        assert abs(v - 1) < 0.1, (layer, v)


@pytest.mark.parametrize("make, data", [(LinenCNN, images), (LinenMLP, vectors)])
def test_data_dependent_linen_standardises_every_unit(make, data):
    model, x = make(), data()
    variables = data_init.data_dependent_linen(model, model.init(jax.random.key(1), x), x)
    for name, t in linen_outputs(model, variables, x).items():
        axes = tuple(range(t.ndim - 1))
        np.testing.assert_allclose(np.asarray(t.mean(axis=axes)), 0, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(np.asarray(t.std(axis=axes)), 1, rtol=1e-3, err_msg=name)


def test_data_dependent_nnx():
    model, x = NnxCNN(nnx.Rngs(0)), images()
    data_init.data_dependent_nnx(model, x)
    t = model.d1(nnx.relu(model.c2(nnx.relu(model.c1(x)))).mean(axis=(1, 2)))
    np.testing.assert_allclose(np.asarray(t.mean(axis=0)), 0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(t.std(axis=0)), 1, rtol=1e-3)


def test_errors():
    model, x = LinenMLP(), vectors()
    variables = model.init(jax.random.key(1), x)
    with pytest.raises(ValueError, match=r"tol=\.\.\.\)` must be a number in \(0, 1\)"):
        data_init.lsuv_linen(model, variables, x, tol=2.0)
    with pytest.raises(ValueError, match="max_iters"):
        data_init.lsuv_linen(model, variables, x, max_iters=0)
    with pytest.raises(TypeError, match="needs a linen Module"):
        data_init.lsuv_linen(model, variables["params"], x)
    with pytest.raises(TypeError, match=r"needs an nnx\.Module"):
        data_init.lsuv_nnx(model, x)
    with pytest.raises(ValueError, match="no parameter named 'kernel'"):
        data_init.lsuv_nnx(nnx.Embed(10, 4, rngs=nnx.Rngs(0)), jnp.arange(3))
