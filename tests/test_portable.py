"""Portable mode: the same bits as the NumPy reference, every XLA CPU code path, every mesh;
the right distributions; clear errors."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import portable_reference as ref
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from registry import CASES, Case
from scipy import special, stats

import jinit
from jinit._rng import distributions as _distributions
from jinit._rng import portable as _portable
from jinit._rng import portable_table as _portable_table

KEYS = (0, 1, 42, 2**31 + 7)
SHAPES = ((1,), (7,), (33, 65), (2, 3, 5, 4), (1000,))
SQRT2 = np.float32(np.sqrt(2))


def words(seed: int) -> tuple[int, int]:
    return tuple(int(w) for w in jax.random.key_data(jax.random.key(seed)))


def u32(x) -> np.ndarray:
    return np.asarray(x, np.float32).view(np.uint32)


# --- The same bits as the NumPy reference ----------------------------------------------------


@pytest.mark.parametrize("seed", KEYS)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_equal_the_numpy_reference(seed, shape):
    key, kw = jax.random.key(seed), words(seed)
    np.testing.assert_array_equal(
        u32(_portable.normal_kernel(key, shape=shape)), u32(ref.normal(kw, shape))
    )
    np.testing.assert_array_equal(
        u32(_portable.erf_inv_kernel(key, shape=shape)), u32(ref.normal(kw, shape, form=1))
    )
    for lo, hi in ((-2.0, 2.0), (-1.0, 3.5), (0.5, 0.75), (-np.inf, 0.0), (-6.0, np.inf)):
        got = _portable.truncated_normal_kernel(key, lo, hi, shape=shape)
        np.testing.assert_array_equal(u32(got), u32(ref.truncated_normal(kw, shape, lo, hi)))


@pytest.mark.parametrize("seed", KEYS[:2])
@pytest.mark.parametrize("bounds", [(0.0, 1.0), (-1.0, 1.0), (-0.3, 0.7), (-0.1, 0.1), (2.0, 3e3)])
def test_uniform_equals_the_numpy_reference(seed, bounds):
    key, shape = jax.random.key(seed), (37, 29)
    got = _portable.uniform_kernel(key, *bounds, shape=shape)
    np.testing.assert_array_equal(u32(got), u32(ref.uniform(words(seed), shape, *bounds)))


def test_uniform_is_jax_uniform_when_the_width_is_a_power_of_two(key):
    for lo, hi in ((0.0, 1.0), (-1.0, 1.0), (-2.0, 2.0), (3.0, 3.5)):
        got = _portable.uniform_kernel(key, lo, hi, shape=(4096,))
        want = jax.random.uniform(key, (4096,), minval=lo, maxval=hi)
        np.testing.assert_array_equal(u32(got), u32(want))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_initializers_equal_the_reference_times_their_constant(dtype):
    """A portable initializer is its draw times a host constant, rounded once to ``dtype``."""
    key, kw, shape = jax.random.key(5), words(5), (64, 48)
    cases = [
        (jinit.normal(0.02), ref.normal(kw, shape, form=1), SQRT2 * np.float32(0.02)),
        (jinit.truncated_normal(0.5), ref.truncated_normal(kw, shape, -2.0, 2.0), np.float32(0.5)),
        (jinit.uniform(0.3), ref.uniform(kw, shape, 0.0, 1.0), np.float32(0.3)),
    ]
    for init, draw, factor in cases:
        got = jinit.portable(init)(key, shape, dtype)
        want = (draw * factor).astype(dtype)
        np.testing.assert_array_equal(np.asarray(got).view(np.uint8), want.view(np.uint8))


def test_mean_shifted_initializers_equal_the_reference(key):
    """``mean + spread * z`` is computed with exact products (no backend can fuse it)."""
    kw, shape = words(7), (40, 30)
    init = jinit.portable(jinit.keras.random_normal(mean=0.5, stddev=0.3))
    want = ref.mul_add(ref.normal(kw, shape, form=1), np.float32(0.3 * math.sqrt(2)), 0.5)
    np.testing.assert_array_equal(u32(init(jax.random.key(7), shape)), u32(want))
    mean, std, a, b = 0.5, 0.3, -1.0, 2.0
    init = jinit.portable(jinit.torch.trunc_normal(mean, std, a, b))
    z = ref.truncated_normal(kw, shape, (a - mean) / std, (b - mean) / std)
    want = np.clip(ref.mul_add(z, std, mean), np.float32(a), np.float32(b))
    np.testing.assert_array_equal(u32(init(jax.random.key(7), shape)), u32(want))


# --- The quantile itself ---------------------------------------------------------------------


def test_shipped_table_is_what_the_builder_makes():
    np.testing.assert_array_equal(_portable_table.load(), _portable_table.build())


def test_quantile_is_accurate_everywhere():
    """Within half a float32 ulp plus 4e-8 of the exact quantile of (u + 1/2) / 2**32, checked at
    every segment's ends and middle (all 2048 segments of both halves) and at 2**20 random u."""
    rng = np.random.default_rng(0)
    tail = []  # the odd m at each segment's start, middle and end, for every octave
    for e in range(32):
        for j in range(64):
            for frac in (0.0, 0.5, 1.0 - 2**-20):
                m = int((1 + (j + frac) / 64) * 2 ** (31 - e)) | 1
                if m < 2**32:
                    tail.append(m)
    tail = np.array(sorted(set(tail)), np.uint64)
    u = np.concatenate(
        [(tail - 1) // 2, 2**32 - 1 - (tail - 1) // 2, rng.integers(0, 2**32, 2**20, np.uint64)]
    ).astype(np.uint32)
    got = np.asarray(jax.jit(_portable.quantile)(jnp.asarray(u)), np.float64)
    exact = special.ndtri((u.astype(np.float64) + 0.5) / 2**32)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(got - exact) <= 0.5 * ulp + 4e-8), np.max(np.abs(got - exact) - 0.5 * ulp)
    np.testing.assert_array_equal(np.sign(got[got != 0]), np.sign(exact[got != 0]))


def test_quantile_is_monotone_and_symmetric():
    u = np.concatenate([np.arange(0, 2**16), np.arange(2**31 - 2**16, 2**31 + 2**16)])
    u = np.concatenate([u, 2**32 - 1 - u[::-1]]).astype(np.uint32)
    u = np.unique(np.concatenate([u, np.linspace(0, 2**32 - 1, 2**20).astype(np.uint32)]))
    z = np.asarray(jax.jit(_portable.quantile)(jnp.asarray(u)))
    assert np.all(np.diff(z) >= 0)
    mirrored = np.asarray(jax.jit(_portable.quantile)(jnp.asarray(~u)))
    np.testing.assert_array_equal(z, -mirrored)


def test_tails_reach_beyond_six_sigma():
    extremes = np.asarray(_portable.quantile(jnp.array([0, 2**32 - 1], jnp.uint32)), np.float64)
    np.testing.assert_allclose(extremes, [special.ndtri(2**-33), -special.ndtri(2**-33)], rtol=1e-6)
    assert extremes[1] > 6.3


# --- Statistics at 10^7 samples --------------------------------------------------------------

N = 10_000_000


def test_normal_statistics_at_ten_million(key):
    z = np.asarray(_portable.normal_kernel(key, shape=(N,)), np.float64)
    assert stats.kstest(z, stats.norm.cdf).pvalue > 1e-4
    se = 1 / math.sqrt(N)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * math.sqrt(2) * se
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24) * se
    # Tails: counts beyond 3, 4 and 4.5 sigma within 5 binomial standard deviations.
    for t in (3.0, 4.0, 4.5):
        p = 2 * stats.norm.sf(t)
        count = np.sum(np.abs(z) > t)
        assert abs(count - N * p) < 5 * math.sqrt(N * p) + 1, (t, count, N * p)


def test_truncated_normal_statistics_at_ten_million(key):
    for lo, hi in ((-2.0, 2.0), (-1.0, 3.0)):
        z = np.asarray(_portable.truncated_normal_kernel(key, lo, hi, shape=(N,)), np.float64)
        dist = stats.truncnorm(lo, hi)
        assert z.min() > lo and z.max() < hi
        assert stats.kstest(z, dist.cdf).pvalue > 1e-4
        assert abs(z.mean() - dist.mean()) < 5 * dist.std() / math.sqrt(N)


def test_uniform_statistics(key):
    x = np.asarray(_portable.uniform_kernel(key, -0.3, 0.7, shape=(1_000_000,)), np.float64)
    assert x.min() >= -0.3 and x.max() < 0.7
    assert stats.kstest(x, stats.uniform(-0.3, 1.0).cdf).pvalue > 1e-4


# --- Every initializer of the registry in portable mode --------------------------------------

REAL_RANDOM = [pytest.param(c, id=c.name) for c in CASES if c.random and jnp.float32 in c.dtypes]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES if c.dist])
def test_every_initializer_keeps_its_distribution(case: Case, key):
    x = np.asarray(jinit.portable(case.make())(key, case.stat_shape, jnp.float32), np.float64)
    result = stats.kstest(x.ravel(), case.dist(case.stat_shape).cdf)
    assert result.pvalue > 1e-4, f"KS statistic {result.statistic:.4g}, p={result.pvalue:.3g}"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES if c.check])
def test_every_initializer_keeps_its_property(case: Case, key):
    init = jinit.portable(case.make())
    for shape in (*case.shapes, case.stat_shape):
        case.check(np.asarray(init(key, shape, jnp.float32)), shape)


@pytest.mark.parametrize("case", REAL_RANDOM)
def test_every_initializer_jit_sharded_and_eager_agree(case: Case, key):
    init, shape = jinit.portable(case.make()), case.shapes[0]
    expected = init(key, shape)
    np.testing.assert_array_equal(
        u32(jax.jit(init, static_argnums=(1,))(key, shape)), u32(expected)
    )
    mesh = jax.make_mesh((2, 4), ("a", "b"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
    spec = [None] * len(shape)
    for ax, name, n in ((-2, "a", 2), (-1, "b", 4)):
        if len(shape) >= 2 and shape[ax] % n == 0:
            spec[ax] = name
    with jax.set_mesh(mesh):
        got = init(key, shape, None, NamedSharding(mesh, P(*spec)))
    np.testing.assert_array_equal(u32(got), u32(expected))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES if not c.random])
def test_deterministic_initializers_are_unchanged(case: Case, key):
    init, shape = case.make(), case.shapes[0]
    np.testing.assert_array_equal(u32(jinit.portable(init)(key, shape)), u32(init(key, shape)))


# --- Trees -----------------------------------------------------------------------------------


def _tree():
    f32, bf16 = jnp.float32, jnp.bfloat16
    layer = {
        "attn": {
            "kernel": jax.ShapeDtypeStruct((64, 192), f32),
            "bias": jax.ShapeDtypeStruct((192,), f32),
        },
        "mlp": {
            "kernel": jax.ShapeDtypeStruct((64, 256), bf16),
            "bias": jax.ShapeDtypeStruct((256,), f32),
        },
        "gate": jax.ShapeDtypeStruct((32, 32), f32),
    }
    return {"embed": jax.ShapeDtypeStruct((100, 64), f32), "layers": [layer] * 3}


RULES = [
    ("embed", jinit.normal(0.02)),
    ("gate", jinit.orthogonal()),
    ("attn/kernel", jinit.lecun_normal()),
    ("mlp/kernel", jinit.he_uniform()),
    ("attn/bias", jinit.truncated_normal(0.01, lower=-1.0, upper=3.0)),
    ("mlp/bias", jinit.keras.random_normal(mean=0.5, stddev=0.3)),
]


def digest(tree) -> str:
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        h.update(jax.tree_util.keystr(path).encode())
        h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()[:16]


def test_tree_grouped_ungrouped_per_leaf_and_sharded_agree(key):
    abstract = _tree()
    grouped = jinit.init_tree(key, abstract, RULES, portable=True)
    alone = jinit.init_tree(key, abstract, RULES, portable=True, group=False)
    assert digest(grouped) == digest(alone)
    leaf = jinit.portable(jinit.lecun_normal())(
        jinit.key_for_path(key, "layers/1/attn/kernel"), (64, 192)
    )
    np.testing.assert_array_equal(u32(grouped["layers"][1]["attn"]["kernel"]), u32(leaf))
    mesh = jax.make_mesh((2, 4), ("a", "b"))
    shardings = jax.tree.map(lambda s: P(*([None] * (len(s.shape) - 1)), "b"), abstract)
    sharded = jinit.init_tree(key, abstract, RULES, portable=True, mesh=mesh, shardings=shardings)
    assert digest(sharded) == digest(grouped)


def test_portable_tree_differs_from_jax_mode_only_in_the_samplers(key):
    """Uniform leaves (power-of-two width) are jax's bits; normal leaves are close to them."""
    abstract = _tree()
    p = jinit.init_tree(key, abstract, RULES, portable=True)
    j = jinit.init_tree(key, abstract, RULES)
    np.testing.assert_array_equal(
        u32(p["layers"][0]["mlp"]["kernel"].astype(jnp.float32)),
        u32(j["layers"][0]["mlp"]["kernel"].astype(jnp.float32)),
    )
    np.testing.assert_allclose(p["embed"], j["embed"], atol=2e-5 * 0.02 * 10)
    assert not np.array_equal(u32(p["embed"]), u32(j["embed"]))


# --- The same bits under other XLA CPU code paths --------------------------------------------

_PROBE = r"""
import hashlib, json, sys
import jax, numpy as np
sys.path.insert(0, "tests")
import jinit
from jinit._rng import portable as p
from test_portable import _tree, RULES, digest
NO_GATE = [r for r in RULES[:-1] if r[0] != "gate"]
key, shape = jax.random.key(11), (4099, 33)
h = lambda x: hashlib.sha256(np.asarray(x).tobytes()).hexdigest()[:16]
out = {
    "tree": digest(jinit.init_tree(key, _tree(), NO_GATE, default=jinit.zeros, portable=True)),
    "orthogonal": h(jinit.portable(jinit.orthogonal())(key, (300, 200))),
    "shifted": digest(jinit.init_tree(key, _tree(), RULES, portable=True)),
    "normal": h(p.normal_kernel(key, shape=shape)),
    "trunc": h(p.truncated_normal_kernel(key, -2.0, 2.0, shape=shape)),
    "uniform": h(p.uniform_kernel(key, -0.3, 0.7, shape=shape)),
    "jax_mode_normal": h(jinit.normal(1.0)(key, shape)),
}
print(json.dumps(out))
"""

# Flags that change how XLA:CPU compiles the same program: fast math (lets LLVM reassociate and
# contract), no optimisation, narrower vectors. Fast math is the one that breaks IEEE semantics:
# the integer samplers and scale-only finishes keep their bits under it; a mean-shifted finish
# (``mean + spread * z``, summed in a fixed order) and the orthogonal's Householder arithmetic
# (sums in a fixed order, IEEE sqrt and division; its matmuls are exact) are promised only under
# IEEE compilation. Vector width and optimisation level change neither.
XLA_VARIANTS = (
    "",
    "--xla_cpu_enable_fast_math=true",
    "--xla_backend_optimization_level=0",
    "--xla_cpu_prefer_vector_width=128",
)


@pytest.mark.slow
def test_same_bits_under_other_xla_cpu_code_paths():
    results = {}
    for flags in XLA_VARIANTS:
        env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
        run = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
        )
        results[flags] = json.loads(run.stdout.strip().splitlines()[-1])
    first = results[""]
    for flags, got in results.items():
        control = got.pop("jax_mode_normal")
        if "fast_math" in flags:  # licenses reassociation: the IEEE-dependent ones may change
            got["shifted"], got["orthogonal"] = first["shifted"], first["orthogonal"]
        assert got == first, f"XLA_FLAGS={flags!r} changed portable values: {got} vs {first}"
        results[flags] = control
    # The control: these flags do change jax-mode normals (erf_inv compiled differently), so
    # the comparison above can fail.
    assert len(set(results.values())) > 1, results


# --- Errors ----------------------------------------------------------------------------------


def test_errors(key):
    init = jinit.portable(jinit.normal())
    with pytest.raises(ValueError, match="needs a threefry key"):
        init(jax.random.key(0, impl="rbg"), (3,))
    with pytest.raises(ValueError, match="portable mode samples float32"):
        jinit.portable(jinit.variance_scaling(1.0, "fan_in", "normal"))(key, (3, 4), jnp.complex64)
    with pytest.raises(TypeError, match="needs a jinit initializer"):
        jinit.portable(jax.nn.initializers.normal())
    with pytest.raises(TypeError, match="must be an initializer"):
        jinit.portable(3)
    with pytest.raises(ValueError, match="not jinit's"):
        jinit.init_tree(
            key,
            {"w": jax.ShapeDtypeStruct((2,), jnp.float32)},
            [("w", jax.nn.initializers.zeros)],
            portable=True,
        )
    with pytest.raises(TypeError, match=r"init_tree\(portable=...\)` must be a bool"):
        jinit.init_tree(
            key, {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}, [("w", jinit.zeros)], portable=1
        )
    with pytest.raises(ValueError, match="no value of the portable normal lies in"):
        jinit.portable(jinit.truncated_normal(1.0, lower=2.0, upper=2.0000001))(key, (3,))
    with _portable.mode(True), pytest.raises(ValueError, match="needs static scalar bounds"):
        jax.jit(lambda lo: _distributions.truncated_normal(key, lo, 2.0, (3,), jnp.float32))(-1.0)


def test_wrapper_keeps_the_initializer_interface(key):
    inner = jinit.lecun_normal()
    init = jinit.portable(inner)
    assert jinit.portable(init) is init
    assert jinit.describe(init, (64, 32)).target_std == jinit.describe(inner, (64, 32)).target_std
    assert init.sampling((64, 32), jnp.float32).draw.name == "portable_truncated_normal"
    # The portable draw never serves jax mode, nor the reverse (the mode is a static argument).
    a, b, c = inner(key, (8, 8)), init(key, (8, 8)), inner(key, (8, 8))
    np.testing.assert_array_equal(u32(a), u32(c))
    assert not np.array_equal(u32(a), u32(b))
