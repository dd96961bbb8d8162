"""ReZero / SkipInit gates: a deep gated residual network is the identity at initialisation."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

DEPTH, WIDTH = 64, 128


def init_params(key, gate):
    keys = jax.random.split(key, DEPTH)
    w = jax.vmap(lambda k: jinit.lecun_normal()(k, (WIDTH, WIDTH)))(keys)
    alpha = jnp.stack([gate(k, ()) for k in keys])
    return {"w": w, "alpha": alpha}


def forward(params, x):
    def block(x, p):
        return x + p["alpha"] * (x @ p["w"]), None  # a linear branch: exact variance maths

    return jax.lax.scan(block, x, params)[0]


@pytest.mark.parametrize("gate", [jinit.rezero(), jinit.skipinit()], ids=["rezero", "skipinit"])
def test_zero_gates_make_the_network_the_identity_and_still_train(gate, key):
    params = init_params(key, gate)
    x = jax.random.normal(jax.random.fold_in(key, 1), (32, WIDTH))
    np.testing.assert_array_equal(forward(params, x), x)  # every block is exactly the identity
    loss = lambda p: jnp.mean((forward(p, x) - 1.0) ** 2)
    grads = jax.grad(loss)(params)
    # The gates learn at once (dL/dalpha_l = <dL/dx, F_l(x)> != 0); the weights wait for them.
    assert np.all(np.abs(np.asarray(grads["alpha"])) > 0)
    assert not np.asarray(grads["w"]).any()


def test_skipinit_small_gate_keeps_the_signal_bounded_where_ungated_explodes(key):
    x = jax.random.normal(jax.random.fold_in(key, 1), (256, WIDTH))
    scale = lambda p: float(jnp.std(forward(p, x)) / jnp.std(x))
    gated = scale(init_params(key, jinit.skipinit(1 / math.sqrt(DEPTH))))
    ungated = scale(init_params(key, jinit.ones))
    # A LeCun branch adds alpha^2 times the variance: 2^64 ungated (std 2^32); with
    # alpha = 1/sqrt(64), (1 + 1/64)^64 ~ e, a std ratio of about sqrt(e) = 1.65.
    assert abs(gated / math.sqrt((1 + 1 / DEPTH) ** DEPTH) - 1) < 0.15, gated
    assert ungated > 2**28, ungated


def test_bad_value_is_rejected():
    with pytest.raises(ValueError, match=r"`skipinit\(value=...\)` must be finite"):
        jinit.skipinit(float("nan"))
    with pytest.raises(TypeError, match=r"`skipinit\(value=...\)` must be a real number"):
        jinit.skipinit("0")
