"""jinit's sampling kernels: the same bits as jax.random, locally sharded, with jax's fallbacks."""

from __future__ import annotations

import math

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
from jinit._rng import distributions as _distributions
from jinit._rng import threefry as _threefry

SHAPES = [
    (),
    (0,),
    (3, 0, 2),
    (1,),
    (7,),
    (3, 5),
    (2, 3, 4),
    (2, 3, 4, 5),
    (2, 1, 3, 1, 5),
    (64, 129),
]

# name -> (jinit sampler, jax.random reference), both (key, shape) -> array.
SAMPLERS = {
    "uniform": (
        lambda k, s: _distributions.uniform(k, s, jnp.float32),
        lambda k, s: jax.random.uniform(k, s),
    ),
    "uniform_range": (
        lambda k, s: _distributions.uniform(k, s, jnp.float32, -1.5, 3.0),
        lambda k, s: jax.random.uniform(k, s, minval=-1.5, maxval=3.0),
    ),
    "normal": (
        lambda k, s: _distributions.normal(k, s, jnp.float32),
        lambda k, s: jax.random.normal(k, s),
    ),
    "normal_c64": (
        lambda k, s: _distributions.normal(k, s, jnp.complex64),
        lambda k, s: jax.random.normal(k, s, jnp.complex64),
    ),
    "truncated_normal": (
        lambda k, s: _distributions.truncated_normal(k, -2, 2, s, jnp.float32),
        lambda k, s: jax.random.truncated_normal(k, -2, 2, s),
    ),
    "truncated_normal_asym": (
        lambda k, s: _distributions.truncated_normal(k, -0.5, 3.0, s, jnp.float32),
        lambda k, s: jax.random.truncated_normal(k, -0.5, 3.0, s),
    ),
    "normal_bf16_in_f32": (
        lambda k, s: _distributions.normal(k, s, jnp.bfloat16),
        lambda k, s: jax.random.normal(k, s, jnp.float32),
    ),
}


def _reference_complex_uniform(key, shape):
    key_r, key_theta = jax.random.split(key)
    r = jnp.sqrt(2 * jax.random.uniform(key_r, shape)).astype(jnp.complex64)
    theta = 2 * np.pi * jax.random.uniform(key_theta, shape).astype(jnp.complex64)
    return r * jnp.exp(1j * theta)


def _reference_complex_truncated_normal(key, shape, upper=2.0):
    key_r, key_theta = jax.random.split(key)
    t = (1 - jnp.exp(jnp.array(-(upper**2), jnp.complex64))) * jax.random.uniform(
        key_r, shape
    ).astype(jnp.complex64)
    r = jnp.sqrt(-jnp.log(1 - t))
    theta = 2 * np.pi * jax.random.uniform(key_theta, shape).astype(jnp.complex64)
    return r * jnp.exp(1j * theta)


# jinit's complex kernels always run fused (a jitted kernel, even when called eagerly), so they
# match jax's construction under jit; op-by-op eager complex exp/log can differ in the last ulp.
SAMPLERS["complex_uniform"] = (
    lambda k, s: _distributions.complex_uniform(k, s, jnp.complex64),
    jax.jit(_reference_complex_uniform, static_argnums=1),
)
SAMPLERS["complex_truncated_normal"] = (
    lambda k, s: _distributions.complex_truncated_normal(k, 2.0, s, jnp.complex64),
    jax.jit(_reference_complex_truncated_normal, static_argnums=1),
)


def assert_same_bits(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@pytest.fixture(params=["typed", "legacy"])
def any_key(request) -> jax.Array:
    return jax.random.key(7) if request.param == "typed" else jax.random.PRNGKey(7)


@pytest.fixture
def partitionable_off():
    old = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", False)
    yield
    jax.config.update("jax_threefry_partitionable", old)


def test_an_axis_of_2_to_the_32_falls_back_to_jax(key):
    assert not _distributions.use_kernels(key, shape=(2**32,))
    assert _distributions.use_kernels(key, shape=(2**32 - 1, 2))
    out = jax.eval_shape(lambda k: _distributions.normal(k, (2**32 + 3,), jnp.float32), key)
    assert out.shape == (2**32 + 3,)


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_same_bits_as_jax_random(name, shape, jit, key):
    ours, theirs = SAMPLERS[name]
    f = jax.jit(ours, static_argnums=1) if jit else ours
    assert _distributions.use_kernels(key)
    assert_same_bits(f(key, shape), theirs(key, shape))


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("shape", [(), (5, 3, 2)], ids=str)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_same_bits_with_legacy_keys(name, shape, jit):
    key = jax.random.PRNGKey(11)
    ours, theirs = SAMPLERS[name]
    f = jax.jit(ours, static_argnums=1) if jit else ours
    assert _distributions.use_kernels(key)
    assert_same_bits(f(key, shape), theirs(key, shape))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_truncated_normal_array_bounds(key, jit):
    lower = jnp.array([[-3.0, -1.0, 0.0, 0.5]])
    upper = jnp.array([[3.0], [2.0], [1.0]])
    f = lambda k, lo, hi: _distributions.truncated_normal(k, lo, hi, (3, 4), jnp.float32)
    f = jax.jit(f) if jit else f
    assert_same_bits(f(key, lower, upper), jax.random.truncated_normal(key, lower, upper, (3, 4)))


def test_truncated_normal_bad_bounds_shape(key):
    with pytest.raises(ValueError, match=r"must broadcast to `shape` \(3, 4\)"):
        _distributions.truncated_normal(key, jnp.zeros(5), 1.0, (3, 4), jnp.float32)


@pytest.mark.parametrize("name", ["uniform", "normal", "truncated_normal", "normal_c64"])
def test_partitionable_off_falls_back_to_jax(name, key, partitionable_off):
    ours, theirs = SAMPLERS[name]
    assert not _distributions.use_kernels(key)
    assert_same_bits(ours(key, (5, 33)), theirs(key, (5, 33)))
    assert_same_bits(jax.jit(ours, static_argnums=1)(key, (5, 33)), theirs(key, (5, 33)))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_partitionable_context_manager_is_honoured(key, jit):
    f = lambda k: _distributions.normal(k, (3, 17), jnp.float32)
    f = jax.jit(f) if jit else f
    with jax.threefry_partitionable(False):
        assert not _distributions.use_kernels(key)
        assert_same_bits(f(key), jax.random.normal(key, (3, 17)))
    assert_same_bits(f(key), jax.random.normal(key, (3, 17)))


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
@pytest.mark.parametrize("name", ["uniform", "normal", "truncated_normal"])
def test_other_key_impls_fall_back_to_jax(name, impl):
    key = jax.random.key(3, impl=impl)
    ours, theirs = SAMPLERS[name]
    assert not _distributions.use_kernels(key)
    assert_same_bits(ours(key, (4, 9)), theirs(key, (4, 9)))


def test_float64_falls_back_to_jax(key):
    assert not _distributions.use_kernels(key, np.float64)
    assert _distributions.use_kernels(key, jnp.bfloat16)
    assert _distributions.use_kernels(key, np.complex64)
    assert not _distributions.use_kernels(key, np.complex128)


def test_batched_key_is_jaxs_error(key):
    keys = jax.random.split(key, 3)
    with pytest.raises(ValueError, match="accepts a single key"):
        _distributions.normal(keys, (2,), jnp.float32)


# --- counters beyond 2**32 elements ---------------------------------------------------------

BIG_SHAPES = [
    (2**16, 2**16 + 1),
    (3, 2**31 + 5),
    (5, 7, 2**27 + 3),
    (2**20, 2**13, 3),
    (2**32 - 1, 2, 3),
]


def _flat_indices(shape, n=64, seed=0):
    size = math.prod(shape)
    rng = np.random.default_rng(seed)
    picks = [0, 1, size - 1, size - 2, 2**32 - 1, 2**32, 2**32 + 1, size // 2]
    picks += [int(x) for x in rng.integers(0, size, n)]
    return [p for p in picks if 0 <= p < size]


@pytest.mark.parametrize("shape", BIG_SHAPES, ids=str)
def test_counter_words_use_the_high_word(shape):
    flat = _flat_indices(shape)
    multi = np.array(np.unravel_index(np.array(flat, dtype=np.uint64), shape), dtype=np.uint32)
    idx = [jnp.asarray(m) for m in multi]
    hi, lo = jax.jit(lambda *i: _threefry.counter_words(list(i), shape))(*idx)
    assert hi is not None
    want = np.array(flat, dtype=np.uint64)
    np.testing.assert_array_equal(np.asarray(hi), (want >> np.uint64(32)).astype(np.uint32))
    np.testing.assert_array_equal(np.asarray(lo), (want & np.uint64(2**32 - 1)).astype(np.uint32))


def test_counter_words_small_shapes_have_no_high_word():
    # Exactly 2**30 elements, traced abstractly: made eagerly, the counters took 8.6 GB of memory
    # (and, with the next test's, 13.7 GB), enough beside another test worker to be OOM-killed.
    hi, lo = jax.eval_shape(lambda: _threefry.iota_counters((4, 2**28)))
    assert hi is None and lo.shape == (4, 2**28)


def test_hash_matches_jax_primitive_with_high_word(key):
    k0, k1 = _threefry.key_words(key)
    x0 = jnp.array([0, 1, 2, 0xFFFFFFFF, 12345], jnp.uint32)
    x1 = jnp.array([0, 7, 0xFFFFFFFF, 3, 99], jnp.uint32)
    want = jax.extend.random.threefry2x32_p.bind(k0, k1, x0, x1)
    got = _threefry.threefry2x32(k0, k1, x0, x1)
    for g, w in zip(got, want, strict=True):
        assert_same_bits(g, w)


def test_huge_shape_traces_and_slices(key):
    shape = (2**17, 2**16)  # 2**33 elements: never materialised here
    out = jax.eval_shape(lambda k: _distributions.normal(k, shape, jnp.float32), key)
    assert out.shape == shape and out.dtype == jnp.float32
    # The last row's counters are (hi=1, lo=2**32 - 2**16 + j): check through the hash directly.
    k0, k1 = _threefry.key_words(key)
    j = jnp.arange(8, dtype=jnp.uint32)
    flat = np.uint64(2**33 - 2**16) + np.arange(8, dtype=np.uint64)
    hi, lo = _threefry.counter_words([jnp.full(8, 2**17 - 1, jnp.uint32), j], shape)
    np.testing.assert_array_equal(np.asarray(hi), (flat >> np.uint64(32)).astype(np.uint32))
    np.testing.assert_array_equal(np.asarray(lo), (flat & np.uint64(2**32 - 1)).astype(np.uint32))
    want = jax.extend.random.threefry2x32_p.bind(k0, k1, hi, lo)
    got = _threefry.threefry2x32(k0, k1, hi, lo)
    assert_same_bits(got[0] ^ got[1], want[0] ^ want[1])


# --- sharding ---------------------------------------------------------------------------------

MESHES = [((1,), ("a",)), ((2, 4), ("x", "y")), ((4, 2), ("x", "y")), ((8,), ("a",))]


def _mesh(axis_shapes, names):
    return jax.make_mesh(axis_shapes, names, axis_types=(AxisType.Explicit,) * len(names))


def _spec(names):
    return P(*names) if len(names) == 2 else P(names[0], None)


@pytest.mark.parametrize("mesh_def", MESHES, ids=str)
@pytest.mark.parametrize(
    "name", ["uniform", "normal", "truncated_normal", "normal_c64", "complex_uniform"]
)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_sharded_equals_unsharded(mesh_def, name, jit, devices, key):
    mesh = _mesh(*mesh_def)
    spec = _spec(mesh_def[1])
    shape = (16, 24)
    ours = {
        "uniform": lambda k, s: _distributions.uniform(k, shape, jnp.float32, out_sharding=s),
        "normal": lambda k, s: _distributions.normal(k, shape, jnp.float32, out_sharding=s),
        "truncated_normal": lambda k, s: _distributions.truncated_normal(
            k, -2, 2, shape, jnp.float32, out_sharding=s
        ),
        "normal_c64": lambda k, s: _distributions.normal(k, shape, jnp.complex64, out_sharding=s),
        "complex_uniform": lambda k, s: _distributions.complex_uniform(
            k, shape, jnp.complex64, out_sharding=s
        ),
    }[name]
    unsharded = SAMPLERS[name][0](key, shape)
    with jax.set_mesh(mesh):
        for sharding in (NamedSharding(mesh, spec), spec):
            f = (
                jax.jit(lambda k, s=sharding: ours(k, s))
                if jit
                else (lambda k, s=sharding: ours(k, s))
            )
            out = f(key)
            assert out.sharding.spec == spec
            assert_same_bits(out, unsharded)


def test_partition_spec_needs_a_mesh(key):
    with pytest.raises(ValueError, match="PartitionSpec"):
        _distributions.normal(key, (8, 8), jnp.float32, out_sharding=P("x"))


@pytest.mark.parametrize("name", ["normal", "truncated_normal"])
def test_each_device_generates_only_its_shard(name, devices, key):
    mesh = _mesh((2, 4), ("x", "y"))
    shape = (1024, 2048)
    full_bytes = math.prod(shape) * 4
    with jax.set_mesh(mesh):
        sharding = NamedSharding(mesh, P("x", "y"))
        f = {
            "normal": lambda k: _distributions.normal(k, shape, jnp.float32, out_sharding=sharding),
            "truncated_normal": lambda k: _distributions.truncated_normal(
                k, -2, 2, shape, jnp.float32, out_sharding=sharding
            ),
        }[name]
        compiled = jax.jit(f).lower(key).compile()
    memory = compiled.memory_analysis()
    assert memory.output_size_in_bytes == full_bytes // 8
    assert memory.temp_size_in_bytes < full_bytes // 8
    entry = compiled.as_text().split("ENTRY", 1)[1]
    assert "[512,512]" in entry and "[1024,2048]" not in entry
    assert "all-gather" not in entry and "dynamic-slice" not in entry


def test_low_precision_is_sampled_in_float32(key):
    z = _distributions.normal(key, (4096,), jnp.bfloat16)
    assert z.dtype == jnp.float32
    w = jinit.normal(1.0)(key, (100_000,), jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    assert len(np.unique(np.asarray(w.astype(jnp.float32)))) > 1000
