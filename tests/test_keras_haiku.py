"""jinit's Keras and Haiku families against the installed ``keras`` (jax backend) and ``dm-haiku``.

Both libraries draw from their own seeds, so the comparison is by distribution: a two-sample
Kolmogorov-Smirnov test per initializer and per layer, and the exact spread (standard deviation
and bounds) each library's formula gives.
"""

from __future__ import annotations

import math
import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jinit

keras = pytest.importorskip("keras")
hk = pytest.importorskip("haiku")

P_MIN = 1e-3  # two-sample KS p-value floor (fixed seeds: a pass or a fail is reproducible)


def sample(init, shape, seed=0) -> np.ndarray:
    return np.asarray(init(jax.random.key(seed), shape, jnp.float32), np.float64)


def keras_sample(cls, shape, n_draws=1, **kwargs) -> np.ndarray:
    """``n_draws`` draws of a Keras initializer with different integer seeds, concatenated."""
    return np.concatenate(
        [np.asarray(cls(**kwargs, seed=s)(shape), np.float64).ravel() for s in range(n_draws)]
    )


def haiku_sample(make, shape, n_draws=1) -> np.ndarray:
    """``n_draws`` draws of a Haiku initializer inside ``hk.transform``, concatenated."""
    f = hk.transform(lambda: make()(shape, jnp.float32))
    draws = [f.apply({}, jax.random.key(s)) for s in range(n_draws)]
    return np.concatenate([np.asarray(d, np.float64).ravel() for d in draws])


def assert_same_distribution(ours: np.ndarray, theirs: np.ndarray) -> None:
    ours, theirs = ours.ravel(), theirs.ravel()
    result = stats.ks_2samp(ours, theirs)
    assert result.pvalue > P_MIN, (result, ours.std(), theirs.std())


def assert_spread(x: np.ndarray, std: float, bound: float | None, mean: float = 0.0) -> None:
    """``x`` has the formula's standard deviation (4 standard errors) and stays in its bounds."""
    x = x.ravel()
    assert abs(x.std() / std - 1) < 4 / math.sqrt(2 * x.size) + 2e-3, (x.std(), std)
    if bound is not None:
        assert np.abs(x - mean).max() <= bound * (1 + 1e-6), (np.abs(x - mean).max(), bound)
        assert np.abs(x - mean).max() > 0.99 * bound  # the bound is reached: not a narrower law


# (Keras shape, Keras's fan_in, fan_out): 1-D and 0-D use Keras's own rules.
KERAS_SHAPES = [((64, 96), 64, 96), ((3, 3, 8, 16), 72, 144), ((4000,), 4000, 4000), ((), 1, 1)]


@pytest.mark.parametrize(
    "distribution", ["truncated_normal", "normal", "untruncated_normal", "uniform"]
)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), KERAS_SHAPES[:3])
def test_keras_variance_scaling(distribution, mode, shape, fan_in, fan_out):
    scale = 2.0
    ours = sample(jinit.keras.variance_scaling(scale, mode, distribution), shape)
    theirs = keras_sample(
        keras.initializers.VarianceScaling,
        shape,
        2,
        scale=scale,
        mode=mode,
        distribution=distribution,
    )
    assert_same_distribution(ours, theirs)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n)
    truncated = distribution in ("truncated_normal", "normal")  # Keras's alias
    bound = 2 * std / 0.87962566103423978 if truncated else None
    if distribution == "uniform":
        bound = math.sqrt(3) * std
    for x in (ours, theirs):
        assert_spread(x, std, bound)


def test_keras_variance_scaling_explicit_axes_and_scalars():
    init = jinit.keras.variance_scaling(1.0, "fan_in", "uniform", input_axes=(0, 1), output_axes=2)
    ours = sample(init, (32, 4, 64))
    kinit = keras.initializers.VarianceScaling
    theirs = keras_sample(
        kinit,
        (32, 4, 64),
        mode="fan_in",
        distribution="uniform",
        input_axes=(0, 1),
        output_axes=(2,),
    )
    assert_same_distribution(ours, theirs)
    assert_spread(ours, 1 / math.sqrt(128), math.sqrt(3 / 128))
    # A scalar has fans (1, 1) in Keras: U(+-sqrt(3 * 4)).
    scalar = jinit.keras.variance_scaling(4.0, distribution="uniform")
    zs = np.array([float(scalar(k, ())) for k in jax.random.split(jax.random.key(0), 200)])
    assert np.abs(zs).max() <= math.sqrt(12) and np.abs(zs).max() > 3


@pytest.mark.parametrize(
    ("ours", "cls", "kwargs", "std", "bound", "mean"),
    [
        (jinit.keras.random_uniform(), "RandomUniform", {}, 0.05 / math.sqrt(3), 0.05, 0.0),
        (
            jinit.keras.random_uniform(-1.0, 3.0),
            "RandomUniform",
            {"minval": -1.0, "maxval": 3.0},
            2 / math.sqrt(3),
            2.0,
            1.0,
        ),
        (jinit.keras.random_normal(), "RandomNormal", {}, 0.05, None, 0.0),
        (
            jinit.keras.random_normal(2.0, 0.5),
            "RandomNormal",
            {"mean": 2.0, "stddev": 0.5},
            0.5,
            None,
            2.0,
        ),
        (
            jinit.keras.truncated_normal(),
            "TruncatedNormal",
            {},
            0.05 * 0.8796256610342398,
            0.1,
            0.0,
        ),
        (
            jinit.keras.truncated_normal(-1.0, 2.0),
            "TruncatedNormal",
            {"mean": -1.0, "stddev": 2.0},
            2.0 * 0.8796256610342398,
            4.0,
            -1.0,
        ),
    ],
)
def test_keras_random_initializers(ours, cls, kwargs, std, bound, mean):
    shape = (200, 150)
    x, y = sample(ours, shape), keras_sample(getattr(keras.initializers, cls), shape, **kwargs)
    assert_same_distribution(x, y)
    for z in (x, y):
        assert_spread(z, std, bound, mean)
        assert abs(z.mean() - mean) < 5 * std / math.sqrt(z.size)


def test_keras_identity_equals_keras():
    for shape, gain in (((3, 5), 2.0), ((6, 4), -0.5)):
        want = np.asarray(keras.initializers.Identity(gain)(shape))
        got = np.asarray(jinit.keras.identity(gain)(jax.random.key(0), shape))
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="Identity"):
        keras.initializers.Identity()((2, 3, 3))
    with pytest.raises(ValueError, match=r"`keras\.identity` needs a 2-D shape"):
        jinit.keras.identity()(jax.random.key(0), (2, 3, 3))


def _keras_layer_weights(layer, input_shape, name, n_layers=4) -> np.ndarray:
    """The named weight of ``n_layers`` freshly built copies of a Keras layer, concatenated."""
    out = []
    for seed in range(n_layers):
        keras.utils.set_random_seed(seed)
        lay = layer()
        lay.build(input_shape)
        out.append(np.asarray(getattr(lay, name), np.float64).ravel())
    return np.concatenate(out)


@pytest.mark.parametrize(
    ("ours", "layer", "input_shape", "name", "shape", "std", "bound"),
    [
        (
            jinit.keras.dense_default(),
            lambda: keras.layers.Dense(96),
            (None, 64),
            "kernel",
            (64, 96),
            math.sqrt(2 / 160),
            math.sqrt(6 / 160),
        ),
        (
            jinit.keras.conv_default(),
            lambda: keras.layers.Conv2D(16, 3),
            (None, 9, 9, 8),
            "kernel",
            (3, 3, 8, 16),
            math.sqrt(2 / 216),
            math.sqrt(6 / 216),
        ),
        (
            jinit.keras.embedding_default(),
            lambda: keras.layers.Embedding(300, 16),
            (None,),
            "embeddings",
            (300, 16),
            0.05 / math.sqrt(3),
            0.05,
        ),
    ],
    ids=["Dense", "Conv2D", "Embedding"],
)
def test_keras_layer_defaults(ours, layer, input_shape, name, shape, std, bound):
    theirs = _keras_layer_weights(layer, input_shape, name)
    assert theirs.size == 4 * math.prod(shape)
    mine = np.concatenate([sample(ours, shape, s).ravel() for s in range(4)])
    assert_same_distribution(mine, theirs)
    for z in (mine, theirs):
        assert_spread(z, std, bound)


@pytest.mark.parametrize("shape", [(48, 48), (40, 24), (3, 3, 4, 12)])
def test_keras_orthogonal(shape):
    gain = 1.5
    mine = sample(jinit.keras.orthogonal(gain), shape)
    with jax.numpy_rank_promotion("allow"):  # Keras's QR sign fix broadcasts implicitly
        theirs = np.asarray(keras.initializers.Orthogonal(gain, seed=0)(shape), np.float64)
        many_theirs = keras_sample(keras.initializers.Orthogonal, shape, 20, gain=gain)
    for m in (mine, theirs):
        q = m.reshape(-1, shape[-1]) / gain
        small = min(q.shape)
        gram = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
        np.testing.assert_allclose(gram, np.eye(small), atol=2e-5)
    many_mine = np.concatenate(
        [sample(jinit.keras.orthogonal(gain), shape, s).ravel() for s in range(20)]
    )
    assert_same_distribution(many_mine, many_theirs)


# ------------------------------------------------------------------ Haiku


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize(
    ("shape", "fan_in_axes", "fan_in", "fan_out"),
    [
        ((64, 96), None, 64, 96),
        ((3, 3, 8, 16), None, 72, 144),
        ((4000,), None, 4000, 4000),
        ((32, 4, 16), (0,), 32, 64),
        ((32, 50), (1,), 32, 50),
    ],  # rank 2 ignores fan_in_axes
)
def test_haiku_variance_scaling(distribution, mode, shape, fan_in_axes, fan_in, fan_out):
    scale = 0.5
    ours = sample(jinit.haiku.variance_scaling(scale, mode, distribution, fan_in_axes), shape)
    vs = hk.initializers.VarianceScaling
    theirs = haiku_sample(lambda: vs(scale, mode, distribution, fan_in_axes), shape, 2)
    assert_same_distribution(ours, theirs)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n)
    bound = {"truncated_normal": 2 * std / 0.87962566103423978, "uniform": math.sqrt(3) * std}
    for x in (ours, theirs):
        assert_spread(x, std, bound.get(distribution))


def _haiku_layer_weights(module, x, n_layers=4) -> np.ndarray:
    f = hk.transform(lambda x: module()(x))
    ws = [f.init(jax.random.key(s), x) for s in range(n_layers)]
    return np.concatenate(
        [
            np.asarray(jax.tree.leaves({k: v["w"] for k, v in p.items()})[0], np.float64).ravel()
            for p in ws
        ]
    )


@pytest.mark.parametrize(
    ("ours", "module", "x", "shape", "fan_in"),
    [
        (jinit.haiku.linear_default(), lambda: hk.Linear(96), jnp.ones((1, 64)), (64, 96), 64),
        (
            jinit.haiku.conv_default(),
            lambda: hk.Conv2D(16, 3),
            jnp.ones((1, 9, 9, 8)),
            (3, 3, 8, 16),
            72,
        ),
    ],
    ids=["Linear", "Conv2D"],
)
def test_haiku_layer_defaults(ours, module, x, shape, fan_in):
    theirs = _haiku_layer_weights(module, x)
    assert theirs.size == 4 * math.prod(shape)
    mine = np.concatenate([sample(ours, shape, s).ravel() for s in range(4)])
    assert_same_distribution(mine, theirs)
    stddev = 1 / math.sqrt(fan_in)  # uncorrected: the actual std is 0.8796 of it
    for z in (mine, theirs):
        assert_spread(z, 0.87962566103423978 * stddev, 2 * stddev)


def test_haiku_embed_default():
    f = hk.transform(lambda ids: hk.Embed(300, 16)(ids))
    theirs = np.concatenate(
        [
            np.asarray(
                f.init(jax.random.key(s), jnp.zeros((1,), jnp.int32))["embed"]["embeddings"],
                np.float64,
            ).ravel()
            for s in range(4)
        ]
    )
    mine = np.concatenate(
        [sample(jinit.haiku.embed_default(), (300, 16), s).ravel() for s in range(4)]
    )
    assert_same_distribution(mine, theirs)
    for z in (mine, theirs):
        assert_spread(z, 0.87962566103423978, 2.0)


@pytest.mark.parametrize(("shape", "axis"), [((40, 24), -1), ((24, 40), 0), ((8, 4, 6), 0)])
def test_haiku_orthogonal(shape, axis):
    scale = 0.5
    mine = np.concatenate(
        [sample(jinit.haiku.orthogonal(scale, axis), shape, s).ravel() for s in range(20)]
    )
    with jax.numpy_rank_promotion("allow"):  # Haiku's QR sign fix broadcasts implicitly
        theirs = haiku_sample(lambda: hk.initializers.Orthogonal(scale, axis), shape, 20)
    assert_same_distribution(mine, theirs)
    for m in (mine, theirs):
        for w in m.reshape(20, *shape):
            q = np.moveaxis(w, axis, 0).reshape(shape[axis], -1) / scale
            gram = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
            np.testing.assert_allclose(gram, np.eye(min(q.shape)), atol=2e-5)


def test_bad_arguments_name_the_call():
    with pytest.raises(
        ValueError, match=r"`keras\.variance_scaling\(scale=...\)` must be positive"
    ):
        jinit.keras.variance_scaling(0.0)
    with pytest.raises(ValueError, match=r"`keras\.variance_scaling\(distribution=...\)` must be"):
        jinit.keras.variance_scaling(1.0, distribution="gamma")
    with pytest.raises(ValueError, match=r"needs both or neither"):
        jinit.keras.variance_scaling(1.0, input_axes=0)
    with pytest.raises(ValueError, match=r"`keras\.random_uniform\(minval=..., maxval=...\)`"):
        jinit.keras.random_uniform(1.0, 1.0)
    with pytest.raises(ValueError, match=r"`haiku\.variance_scaling\(mode=...\)` must be one of"):
        jinit.haiku.variance_scaling(1.0, "fan_geo_avg")
    with pytest.raises(TypeError, match=r"`haiku\.orthogonal\(axis=...\)` must be an int"):
        jinit.haiku.orthogonal(axis=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`haiku\.linear_default` needs a shape of rank >= 1"):
        jinit.haiku.linear_default()(jax.random.key(0), ())
    with pytest.raises(TypeError, match=r"real floating dtype"):
        jinit.keras.random_normal()(jax.random.key(0), (3,), jnp.complex64)
    # Haiku allows scale 0 (Keras does not): all zeros.
    assert not sample(jinit.haiku.variance_scaling(0.0), (4, 4)).any()
