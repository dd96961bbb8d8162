"""Where jax.nn.initializers is wrong or weak, jinit is right. Each test states the property and
checks it on jinit; where jax is importable the same property is shown to be false for jax, so
the test would fail on jax's behaviour."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jinit

J = jax.nn.initializers
N = 1_000_000


def _bf16_normal_quality(x: jax.Array) -> tuple[int, float]:
    v = np.asarray(x.astype(jnp.float32))
    return len(np.unique(v)), float(np.abs(v).max())


def test_bf16_normal_resolution_and_tails(key):
    distinct, tail = _bf16_normal_quality(jinit.normal(1.0)(key, (N,), jnp.bfloat16))
    assert distinct >= 2000, distinct
    assert tail > 4.4, tail
    # jax samples in bfloat16 itself: 7 random mantissa bits.
    j_distinct, j_tail = _bf16_normal_quality(J.normal(1.0)(key, (N,), jnp.bfloat16))
    assert j_distinct < 2000 and j_tail < 4.4, (j_distinct, j_tail)


def test_bf16_normal_is_rounded_float32(key):
    """bf16 output = float32 output rounded to nearest, elementwise."""
    for init in (jinit.normal(0.02), jinit.lecun_normal(), jinit.he_uniform()):
        x16 = init(key, (256, 512), jnp.bfloat16)
        x32 = init(key, (256, 512), jnp.float32)
        np.testing.assert_array_equal(np.asarray(x16), np.asarray(x32.astype(jnp.bfloat16)))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_moments(key, dtype):
    x = np.asarray(jinit.normal(1.0)(key, (N,), dtype).astype(jnp.float32), np.float64)
    assert abs(x.mean()) < 5 / math.sqrt(N)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / N) + 2**-8
    # The whole shape of the distribution, not just two moments: KS against N(0, 1) with the
    # statistic bounded by the dtype's rounding (bf16 has 8 significant bits).
    ks = stats.kstest(x, "norm").statistic
    assert ks < 2**-8, ks


def test_complex_truncated_normal_variance(key):
    fan_in = 1000
    w = jinit.lecun_normal()(key, (fan_in, 1000), jnp.complex64)
    second_moment = float(np.mean(np.abs(np.asarray(w)) ** 2) * fan_in)
    # 10^6 draws: the standard error of E|w|^2 is about 0.001.
    assert abs(second_moment - 1.0) < 0.005, second_moment
    jw = J.lecun_normal()(key, (fan_in, 1000), jnp.complex64)
    j_second = float(np.mean(np.abs(np.asarray(jw)) ** 2) * fan_in)
    assert abs(j_second - 1.018) < 0.005, j_second


def test_complex_truncated_normal_constant_is_the_samplers_std():
    # |z|^2 ~ Exp(1) truncated to [0, 4]: E = (1 - 5 e^-4) / (1 - e^-4), computed by quadrature.
    from scipy import integrate

    num, _ = integrate.quad(lambda t: t * math.exp(-t), 0, 4)
    den, _ = integrate.quad(lambda t: math.exp(-t), 0, 4)
    from jinit._rng.distributions import complex_truncated_normal_std

    assert complex_truncated_normal_std(2.0) == pytest.approx(math.sqrt(num / den), rel=1e-12)
    assert complex_truncated_normal_std(2.0) == pytest.approx(0.96196, abs=1e-5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("make", [jinit.orthogonal, jinit.delta_orthogonal])
def test_orthogonal_low_precision(key, dtype, make):
    shape = (64, 64) if make is jinit.orthogonal else (3, 3, 64, 64)
    w = make()(key, shape, dtype)
    assert w.dtype == dtype
    m = np.asarray(w.astype(jnp.float32)).reshape(-1, 64, 64)[-1 if len(shape) == 2 else 4]
    np.testing.assert_allclose(m.T @ m, np.eye(64), atol=3e-2)
    # It is the float32 result, rounded once.
    np.testing.assert_array_equal(np.asarray(w), np.asarray(make()(key, shape).astype(dtype)))
    with pytest.raises(NotImplementedError):
        getattr(J, make.__name__)()(key, shape, dtype)


def test_orthogonal_out_sharding(key):
    mesh = jax.make_mesh((2, 4), ("a", "b"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
    sharding = jax.sharding.NamedSharding(mesh, jax.P("a", "b"))
    with jax.set_mesh(mesh):
        w = jinit.orthogonal()(key, (64, 128), None, sharding)
        with pytest.raises(NotImplementedError):
            J.orthogonal()(key, (64, 128), None, sharding)
    assert w.sharding.is_equivalent_to(sharding, 2)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(jinit.orthogonal()(key, (64, 128))))


def test_einsum_fans_fix_nnx_einsum(key):
    """nnx.Einsum('btd,dnh->btnh') with a (512, 8, 64) kernel: variance 1/512, not 1/4096."""
    shape = (512, 8, 64)
    w = jinit.variance_scaling(1.0, "fan_in", "normal", einsum="btd,dnh->btnh")(key, shape)
    assert float(w.var()) * 512 == pytest.approx(1.0, abs=0.01)
    jw = J.variance_scaling(1.0, "fan_in", "normal")(key, shape)
    assert float(jw.var()) * 4096 == pytest.approx(1.0, abs=0.01)
