"""jinit.signal_propagation: per-layer forward and backward scales, linen and nnx, checked
against the physics of Glorot & Bengio 2010 and He et al. 2015 and against direct computation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import jinit

WIDTH, DEPTH = 256, 12


def mlp(init, act=nn.relu):
    layers = []
    for _ in range(DEPTH):
        layers += [nn.Dense(WIDTH, kernel_init=init), act]
    return nn.Sequential(layers)


def batch():
    return jax.random.normal(jax.random.key(0), (512, WIDTH))


def profile(init, act=nn.relu):
    model, x = mlp(init, act), batch()
    return jinit.signal_propagation(model, model.init(jax.random.key(1), x), x)


def test_he_keeps_relu_signal_and_small_init_kills_it():
    he = profile(jinit.he_normal())
    assert len(he) == DEPTH
    acts = np.array([s.act_std for s in he])
    assert 0.5 < acts[-1] / acts[0] < 2  # He et al. 2015: flat for ReLU
    grads = np.array([s.grad_std for s in he])
    assert 0.05 < grads[0] / grads[-1] < 20  # no exponential growth or decay
    small = profile(jinit.normal(0.01))
    acts = np.array([s.act_std for s in small])
    # Each ReLU layer multiplies the std by 0.01 * sqrt(WIDTH / 2) ~ 0.113.
    ratios = acts[1:] / acts[:-1]
    np.testing.assert_allclose(ratios, 0.01 * np.sqrt(WIDTH / 2), rtol=0.1)
    # Weight gradients need both signals (dL/dW = h^T delta): one dies upwards, the other
    # downwards, so every layer's gradient is a vanishing fraction of He's.
    assert max(s.grad_std for s in small) < 1e-6 * min(s.grad_std for s in he)


def test_values_equal_direct_computation():
    model, x = mlp(jinit.glorot_uniform(), jnp.tanh), batch()
    variables = model.init(jax.random.key(1), x)
    report = jinit.signal_propagation(model.apply, variables, x, loss=lambda y: jnp.mean(y**2))
    h, outs = x, []
    for i in range(DEPTH):
        p = variables["params"][f"layers_{2 * i}"]
        h = h @ p["kernel"] + p["bias"][None]
        outs.append(h)
        h = jnp.tanh(h)
    for s, y in zip(report, outs, strict=True):
        assert s.act_std == pytest.approx(float(y.std()), rel=1e-4)
    grads = jax.grad(lambda v: jnp.mean(model.apply(v, x) ** 2))(variables)
    last = grads["params"][f"layers_{2 * (DEPTH - 1)}"]["kernel"]
    assert report[-1].grad_std == pytest.approx(float(last.std()), rel=1e-4)
    assert "layers_0/kernel" in str(report) and "grad std" in str(report)


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.layers = nnx.List(
            [nnx.Linear(WIDTH, WIDTH, kernel_init=jinit.he_normal(), rngs=rngs) for _ in range(6)]
        )

    def __call__(self, x):
        for layer in self.layers:
            x = nnx.relu(layer(x))
        return x


def test_nnx_matches_linen_twin():
    model, x = NnxMLP(nnx.Rngs(0)), batch()
    report = jinit.signal_propagation(model, None, x)
    assert [s.path for s in report] == [f"layers/{i}/kernel" for i in range(6)]
    h = x
    for layer, s in zip(model.layers, report, strict=True):
        y = layer(h)
        assert s.act_std == pytest.approx(float(y.std()), rel=1e-4)
        h = nnx.relu(y)
    assert all(s.grad_std > 0 for s in report)


def test_plot_and_errors(tmp_path):
    report = profile(jinit.he_normal())
    report.plot(str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 0
    with pytest.raises(TypeError, match="an nnx model carries its own variables"):
        jinit.signal_propagation(NnxMLP(nnx.Rngs(0)), {"params": {}}, batch())
    with pytest.raises(TypeError, match="needs a linen Module"):
        jinit.signal_propagation(mlp(jinit.he_normal()), None, batch())
