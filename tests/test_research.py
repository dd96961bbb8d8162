"""Research schemes against the formulas in their papers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

SHAPE = (512, 1024)  # fan_in 512, fan_out 1024


def std_of(init, key, shape=SHAPE) -> float:
    return float(np.asarray(init(key, shape), np.float64).std())


@pytest.mark.parametrize("n_layers", [1, 12, 48])
def test_scaled_residual_megatron_formula(n_layers, key):
    expected = 0.02 / math.sqrt(2 * n_layers)  # Megatron scaled_init_method_normal
    assert abs(std_of(jinit.scaled_residual(n_layers), key) / expected - 1) < 0.01


def test_scaled_multiplies_exactly(key):
    base = jinit.lecun_normal()
    for factor in (0.5, -2.0, 0.0):
        np.testing.assert_allclose(
            jinit.scaled(base, factor)(key, SHAPE), factor * base(key, SHAPE), rtol=1e-6
        )
    w = jinit.scaled(base, 0.5)(key, SHAPE, jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    expected = (0.5 * base(key, SHAPE, jnp.float32)).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(expected))  # rounded once


@pytest.mark.parametrize(
    ("args", "alpha", "beta"),
    [
        ((6, None, "encoder"), 12**0.25, 48**-0.25),  # encoder-only, N = 6
        ((24, None, "decoder"), 48**0.25, 192**-0.25),  # decoder-only, M = 24
        ((6, 6, "encoder"), 0.81 * (6**4 * 6) ** (1 / 16), 0.87 * (6**4 * 6) ** (-1 / 16)),
        ((6, 18, "decoder"), 54**0.25, 216**-0.25),  # enc-dec decoder: (3M)^1/4, (12M)^-1/4
    ],
)
def test_deepnorm_constants_table(args, alpha, beta):
    n, m, part = args
    assert jinit.deepnorm_alpha(n, m, part=part) == pytest.approx(alpha, rel=1e-12)
    assert jinit.deepnorm_beta(n, m, part=part) == pytest.approx(beta, rel=1e-12)


def test_deepnorm_is_xavier_normal_with_gain_beta(key):
    beta = (8 * 100) ** -0.25
    expected = beta * math.sqrt(2 / (512 + 1024))
    w = np.asarray(jinit.deepnorm(100)(key, SHAPE), np.float64)
    assert abs(w.std() / expected - 1) < 0.01
    assert abs(w).max() > 4 * expected  # untruncated, as torch's xavier_normal_


@pytest.mark.parametrize(("branches", "m"), [(8, 2), (54, 3)])
def test_fixup_scale(branches, m, key):
    scale = branches ** (-1 / (2 * m - 2))
    base = jinit.he_normal()
    np.testing.assert_allclose(
        jinit.fixup(branches, m)(key, SHAPE), scale * base(key, SHAPE), rtol=1e-6
    )


def test_t_fixup_formulas(key):
    assert jinit.t_fixup_scale(6) == pytest.approx(0.67 * 6**-0.25)
    assert jinit.t_fixup_scale(6, "decoder") == pytest.approx((9 * 6) ** -0.25)
    bound = jinit.t_fixup_scale(6) * math.sqrt(6 / (512 + 1024))  # Xavier uniform, scaled
    w = np.asarray(jinit.t_fixup(6)(key, SHAPE))
    assert w.max() <= bound and w.max() > 0.99 * bound
    e = jinit.t_fixup_embedding(6)(key, (1000, 256))
    assert abs(float(e.std()) / (256**-0.5 * 54**-0.25) - 1) < 0.02


def test_mup(key):
    assert abs(std_of(jinit.mup.hidden(), key) * math.sqrt(512) - 1) < 0.01
    for width_mult in (1.0, 4.0, 16.0):
        got = std_of(jinit.mup.readout(width_mult), key)
        assert abs(got / math.sqrt(1 / (512 * width_mult)) - 1) < 0.01
    assert not np.asarray(jinit.mup.readout(4.0, zero=True)(key, SHAPE)).any()
    assert jinit.mup.readout(4.0, zero=True, dtype=jnp.bfloat16)(key, (2, 2)).dtype == jnp.bfloat16


def test_jit_and_sharding(key):
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    init = jinit.scaled(jinit.torch.xavier_uniform(), 0.3)
    mesh = jax.make_mesh((2, 4), ("a", "b"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
    sharding = NamedSharding(mesh, P("a", "b"))
    expected = np.asarray(init(key, (16, 32)))
    with jax.set_mesh(mesh):
        got = jax.jit(init, static_argnums=(1, 2, 3))(key, (16, 32), None, sharding)
    assert got.sharding.is_equivalent_to(sharding, 2)
    np.testing.assert_array_equal(np.asarray(got), expected)


def test_errors():
    with pytest.raises(ValueError, match=r"`scaled_residual\(n_layers=...\)` must be a positive"):
        jinit.scaled_residual(0)
    with pytest.raises(TypeError, match=r"`scaled\(factor=...\)` must be a real number"):
        jinit.scaled(jinit.zeros, "2")
    with pytest.raises(ValueError, match=r"`scaled\(factor=...\)` must be finite"):
        jinit.scaled(jinit.zeros, math.inf)
    with pytest.raises(TypeError, match=r"`scaled\(init=...\)` must be an initializer"):
        jinit.scaled(3.0, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`fixup\(layers_per_branch=...\)` must be >= 2"):
        jinit.fixup(8, 1)
    with pytest.raises(ValueError, match=r"`deepnorm\(part=...\)` must be one of"):
        jinit.deepnorm(6, part="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`mup\.readout\(width_mult=...\)` must be positive"):
        jinit.mup.readout(0.0)


def test_scaled_keeps_the_inner_default_dtype(key):
    w = jinit.scaled(jinit.normal(1.0, dtype=jnp.bfloat16), 2.0)(key, (4, 6))
    assert w.dtype == jnp.bfloat16
    # Drawn in float32 and rounded once, like the inner initializer's own bfloat16 output.
    want = (jinit.normal(1.0)(key, (4, 6)) * 2.0).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(want))
