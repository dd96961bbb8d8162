"""jinit's torch-compatible initializers against torch itself (skipped when torch is absent)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jinit

torch = pytest.importorskip("torch")
tinit = torch.nn.init

NONLINEARITIES = [
    ("linear", None),
    ("conv1d", None),
    ("conv2d", None),
    ("conv3d", None),
    ("conv_transpose1d", None),
    ("conv_transpose2d", None),
    ("conv_transpose3d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0),
    ("leaky_relu", 3),
    ("selu", None),
]
TORCH_SHAPES = [(32, 64), (16, 8, 3, 3), (8, 4, 5), (4, 4, 3, 3, 3)]


def to_flax(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A torch weight shape (out, in, *k) as the Flax kernel shape (*k, in, out)."""
    return (*shape[2:], shape[1], shape[0])


def torch_to_flax(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (*range(2, w.ndim), 1, 0))


def torch_sample(fill, shape, seed=0, **kwargs) -> np.ndarray:
    t = torch.empty(shape, dtype=torch.float64)
    fill(t, **kwargs, generator=torch.Generator().manual_seed(seed))
    return t.numpy()


@pytest.mark.parametrize(("nonlinearity", "param"), NONLINEARITIES)
def test_calculate_gain_equals_torch(nonlinearity, param):
    assert jinit.calculate_gain(nonlinearity, param) == tinit.calculate_gain(nonlinearity, param)


def test_calculate_gain_errors_like_torch():
    with pytest.raises(ValueError):
        tinit.calculate_gain("foo")
    with pytest.raises(ValueError, match=r"`calculate_gain\(nonlinearity=...\)` must be one of"):
        jinit.calculate_gain("foo")
    for bad in ("x", True, [0.1]):
        with pytest.raises(ValueError):
            tinit.calculate_gain("leaky_relu", bad)
        with pytest.raises(ValueError, match="must be a finite real number"):
            jinit.calculate_gain("leaky_relu", bad)
    # torch ignores `param` for other nonlinearities; so does jinit.
    assert jinit.calculate_gain("tanh", "x") == tinit.calculate_gain("tanh", "x")


@pytest.mark.parametrize("shape", TORCH_SHAPES)
def test_fans_match_torch_layout(shape):
    """torch weight (out, in, *k) and the Flax kernel (*k, in, out) have the same fans."""
    fan_in, fan_out = tinit._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert jinit.compute_fans(to_flax(shape)) == (fan_in, fan_out)
    # A torch weight permuted to Flax's layout is laid out as jinit's kernel.
    w = torch_sample(tinit.kaiming_uniform_, shape)
    assert torch_to_flax(w).shape == to_flax(shape)


def test_conv_transpose_axes_reproduce_torch_fans():
    """torch's ConvTranspose weight is (in, out, *k) and torch calls size(1) the fan-in."""
    torch_shape = (8, 16, 3, 3)  # ConvTranspose2d(8, 16, 3).weight
    fan_in, _ = tinit._calculate_fan_in_and_fan_out(torch.empty(torch_shape))
    flax_shape = (3, 3, 8, 16)  # nn.ConvTranspose(16, (3, 3)) kernel: (*k, in, out)
    assert jinit.compute_fans(flax_shape, in_axis=-1, out_axis=-2)[0] == fan_in


def _ks_against_torch(ours: np.ndarray, theirs: np.ndarray, bound: float | None = None) -> None:
    result = stats.ks_2samp(ours.ravel(), theirs.ravel())
    assert result.pvalue > 1e-4, (result.statistic, result.pvalue)
    if bound is not None:  # both fill (-bound, bound) up to sampling
        for x in (ours, theirs):
            assert x.max() <= bound and x.min() >= -bound
            assert x.max() > 0.99 * bound and x.min() < -0.99 * bound


CASES = [
    # (jinit factory, torch fill, kwargs shared by both, is uniform)
    (jinit.torch.kaiming_uniform, tinit.kaiming_uniform_, {}, True),
    (jinit.torch.kaiming_uniform, tinit.kaiming_uniform_, {"a": 0.3, "mode": "fan_out"}, True),
    (jinit.torch.kaiming_uniform, tinit.kaiming_uniform_, {"nonlinearity": "tanh"}, True),
    (jinit.torch.kaiming_normal, tinit.kaiming_normal_, {}, False),
    (jinit.torch.kaiming_normal, tinit.kaiming_normal_, {"mode": "fan_out"}, False),
    (jinit.torch.kaiming_normal, tinit.kaiming_normal_, {"nonlinearity": "selu"}, False),
    (jinit.torch.xavier_uniform, tinit.xavier_uniform_, {}, True),
    (jinit.torch.xavier_uniform, tinit.xavier_uniform_, {"gain": 5 / 3}, True),
    (jinit.torch.xavier_normal, tinit.xavier_normal_, {}, False),
    (jinit.torch.xavier_normal, tinit.xavier_normal_, {"gain": 2.0}, False),
]


def _torch_bound_or_std(fill, shape, kwargs, uniform: bool) -> float:
    """The bound (uniform) or std (normal) torch uses, from torch's own helpers."""
    fan_in, fan_out = tinit._calculate_fan_in_and_fan_out(torch.empty(shape))
    if "xavier" in fill.__name__:
        std = kwargs.get("gain", 1.0) * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        fan = fan_in if kwargs.get("mode", "fan_in") == "fan_in" else fan_out
        gain = tinit.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0))
        std = gain / math.sqrt(fan)
    return math.sqrt(3.0) * std if uniform else std


@pytest.mark.parametrize("shape", [(128, 256), (64, 32, 3, 3)])
@pytest.mark.parametrize(("factory", "fill", "kwargs", "uniform"), CASES)
def test_scheme_matches_torch(factory, fill, kwargs, uniform, shape, key):
    theirs = torch_sample(fill, shape, **kwargs)
    ours = np.asarray(factory(**kwargs)(key, to_flax(shape)), np.float64)
    assert ours.shape == to_flax(shape)
    expected = _torch_bound_or_std(fill, shape, kwargs, uniform)
    if uniform:
        _ks_against_torch(ours, theirs, bound=expected * (1 + 1e-6))
    else:
        _ks_against_torch(ours, theirs)
        assert abs(ours.std() / expected - 1) < 0.02
        assert abs(theirs.std() / expected - 1) < 0.02
        # Untruncated: the tails reach past 3 sigma, unlike jinit.he_normal / glorot_normal.
        assert abs(ours).max() > 3.5 * expected


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"std": 0.02}, {"mean": 1.0, "std": 1.0, "a": 0.5, "b": 1.5}, {"std": 3.0, "a": -1.0}],
)
def test_trunc_normal_absolute_bounds_match_torch(kwargs, key):
    shape = (200, 300)
    theirs = torch_sample(tinit.trunc_normal_, shape, **kwargs)
    ours = np.asarray(jinit.torch.trunc_normal(**kwargs)(key, shape), np.float64)
    _ks_against_torch(ours, theirs)
    a, b = kwargs.get("a", -2.0), kwargs.get("b", 2.0)
    assert ours.min() >= a and ours.max() <= b
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.03)


def test_trunc_normal_tiny_std_does_not_pile_up_at_bounds(key):
    """transformers#27906: torch once returned +-b for std=1e-10; both are ~N(0, 1e-20) now."""
    w = jinit.torch.trunc_normal(std=1e-10)(key, (10_000,))
    assert float(abs(w).max()) < 1e-9


@pytest.mark.parametrize(
    ("torch_shape", "layer"), [((100, 400), "linear"), ((32, 8, 3, 3), "conv")]
)
def test_linear_and_bias_defaults_match_torch_modules(torch_shape, layer, key):
    torch.manual_seed(0)
    if layer == "linear":
        module = torch.nn.Linear(torch_shape[1], torch_shape[0])
    else:
        module = torch.nn.Conv2d(torch_shape[1], torch_shape[0], torch_shape[2:])
    weight = module.weight.detach().double().numpy()
    bias = module.bias.detach().double().numpy()
    fan_in, _ = tinit._calculate_fan_in_and_fan_out(module.weight)
    bound = 1 / math.sqrt(fan_in)
    ours = np.asarray(jinit.torch.linear_default()(key, to_flax(torch_shape)), np.float64)
    _ks_against_torch(ours, torch_to_flax(weight), bound=bound * (1 + 1e-6))
    ours_b = np.asarray(jinit.torch.bias_default(fan_in)(key, (20_000,)), np.float64)
    assert ours_b.max() <= bound and ours_b.min() >= -bound
    assert stats.ks_2samp(ours_b, bias).pvalue > 1e-4


def test_embedding_default_matches_torch(key):
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(1000, 64).weight.detach().double().numpy()
    ours = np.asarray(jinit.torch.embedding_default()(key, (1000, 64)), np.float64)
    _ks_against_torch(ours, theirs)


def test_low_precision_outputs(key):
    for factory in (jinit.torch.kaiming_normal, jinit.torch.linear_default):
        w = factory()(key, (256, 512), jnp.bfloat16)
        assert w.dtype == jnp.bfloat16
        assert len(np.unique(np.asarray(w.astype(jnp.float32)))) > 1000
    w = jinit.torch.trunc_normal(a=-0.5, b=0.5)(key, (4096,), jnp.float16)
    assert float(w.min()) >= -0.5 and float(w.max()) <= 0.5


def test_factory_errors():
    with pytest.raises(ValueError, match=r"`torch\.kaiming_uniform\(mode=...\)` must be one of"):
        jinit.torch.kaiming_uniform(mode="fan_avg")
    with pytest.raises(ValueError, match=r"`torch\.kaiming_normal\(nonlinearity=...\)`"):
        jinit.torch.kaiming_normal(nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"`torch\.trunc_normal\(a=..., b=...\)` needs a < b"):
        jinit.torch.trunc_normal(a=1.0, b=0.0)
    with pytest.raises(ValueError, match=r"`torch\.trunc_normal\(std=...\)` must be positive"):
        jinit.torch.trunc_normal(std=0.0)
    with pytest.raises(ValueError, match=r"`torch\.bias_default\(fan_in=...\)`"):
        jinit.torch.bias_default(-1)
    with pytest.raises(ValueError, match=r"`torch\.xavier_normal\(gain=...\)` must be non-neg"):
        jinit.torch.xavier_normal(gain=-1.0)


def test_jit(key):
    init = jinit.torch.kaiming_uniform()
    eager = init(key, (3, 3, 8, 16))
    jitted = jax.jit(init, static_argnums=(1,))(key, (3, 3, 8, 16))
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))


def test_leaky_relu_gain_of_a_huge_slope_is_computed_not_overflowed(key):
    """torch's formula overflows squaring a slope of 1e200; the gain is sqrt(2) / 1e200."""
    assert jinit.calculate_gain("leaky_relu", 1e200) == pytest.approx(2**0.5 / 1e200, rel=1e-15)
    for make in (jinit.torch.kaiming_normal, jinit.torch.kaiming_uniform):
        w = make(a=1e200)(key, (8, 4))  # variance 2 / (1 + a^2) / fan_in underflows to 0
        assert not bool(w.any())
    assert bool(np.isfinite(np.asarray(jinit.torch.kaiming_normal(a=1e150)(key, (8, 4)))).all())


def test_torch_trunc_normal_far_from_its_interval_stays_in_it(key):
    """A mean 1e30 std from [a, b] (representable) gives values in [a, b], as torch's clamp."""
    w = np.asarray(jinit.torch.trunc_normal(mean=1e30)(key, (1000,)))
    assert np.isfinite(w).all() and w.min() >= -2.0 and w.max() <= 2.0
    with pytest.raises(
        ValueError, match=r"`torch\.trunc_normal`: values up to about 6e\+05 overflow"
    ):
        jinit.torch.trunc_normal(std=1e5, a=-1e6, b=1e6)(key, (4,), jnp.float16)
