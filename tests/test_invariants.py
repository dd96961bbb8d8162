"""Invariants every public initializer satisfies: one test per property x registry row."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from registry import CASES, HYPERS, Case, Hyper, public_callables
from scipy import stats

import jinit

ROWS = [pytest.param(c, id=c.name) for c in CASES]
RANDOM_ROWS = [pytest.param(c, id=c.name) for c in CASES if c.random]
DIST_ROWS = [pytest.param(c, id=c.name) for c in CASES if c.dist is not None]
# Rows whose initializer carries its intended mean/std (what `jinit.describe` reports).
TARGET_ROWS = [
    pytest.param(c, id=c.name)
    for c in CASES
    if c.dist is not None and getattr(c.make(), "target", None) is not None
]
CHECK_ROWS = [pytest.param(c, id=c.name) for c in CASES if c.check is not None]


def bits(x: jax.Array) -> np.ndarray:
    """The raw bytes of an array, so equality is bitwise (NaN- and -0.0-exact)."""
    return np.asarray(x).view(np.uint8)


# Public callables that are not initializers (tools around them); everything else public and
# callable must have a registry row, so a new initializer cannot skip the invariant tests.
NOT_INITIALIZERS = {
    "Init",
    "compute_fans",
    "signal_propagation",
    "SignalReport",
    "LayerSignal",
    "describe",
    "Description",
    "deepnorm_alpha",
    "t_fixup_scale",
    "einsum_axes",
    "EinsumAxes",
    "Initializer",
    "Sampling",
    "Draw",
    "calculate_gain",
    "key_for_path",
    "keys_like",
    "path_str",
    "init_tree",
    "scaled",
    "stacked",
    "deepnorm_beta",
    "flax",
    "explain",
    "Explanation",
    "ParamRule",
    "full_match",
    "torch.defaults",
    # muP's optimizers and their tools
    "mup.WidthMult",
    "mup.adam",
    "mup.adamw",
    "mup.coord_check",
    "mup.lr_factors",
    "mup.render",
    "mup.scale_by_mup",
    "mup.sgd",
    "mup.width_mults",
}


def test_registry_covers_the_public_api():
    public = set(public_callables())
    row_names = {c.name for c in CASES}
    missing = {
        n
        for n in public - NOT_INITIALIZERS
        if not any(r == n or r.startswith(n + "_") for r in row_names)
    }
    assert not missing, f"public initializers without a registry row: {sorted(missing)}"


@pytest.mark.parametrize("case", ROWS)
def test_shape_and_dtype(case: Case, key):
    init = case.make()
    # Every dtype on the first shape, float32 on the rest (each combination is a compile).
    combos = [(case.shapes[0], d) for d in case.dtypes] + [
        (s, jnp.float32) for s in case.shapes[1:]
    ]
    for shape, dtype in combos:
        x = init(key, shape, dtype)
        assert x.shape == shape and x.dtype == jnp.dtype(dtype), (shape, dtype)
        assert bool(jnp.isfinite(x.astype(jnp.float32)).all()), (shape, dtype)
    # dtype=None means jax's default float dtype.
    assert init(key, case.shapes[0]).dtype == jnp.float32


@pytest.mark.parametrize("case", ROWS)
def test_protocol(case: Case):
    assert isinstance(case.make(), jinit.Initializer)


@pytest.mark.parametrize("case", ROWS)
def test_deterministic_and_key_sensitive(case: Case, key):
    init = case.make()
    shape = case.shapes[0]
    a, b = init(key, shape), init(key, shape)
    np.testing.assert_array_equal(bits(a), bits(b))
    other = init(jax.random.key(1), shape)
    if case.random:
        assert not np.array_equal(np.asarray(a), np.asarray(other))
    else:
        np.testing.assert_array_equal(bits(a), bits(other))


@pytest.mark.parametrize("case", ROWS)
def test_jit_equals_eager(case: Case, key):
    init = case.make()
    shape = case.shapes[-1]
    for dtype in (jnp.float32, jnp.bfloat16):
        eager = init(key, shape, dtype)
        jitted = jax.jit(init, static_argnums=(1, 2))(key, shape, dtype)
        np.testing.assert_array_equal(bits(eager), bits(jitted), err_msg=f"{shape} {dtype}")


@pytest.mark.parametrize("case", ROWS)
def test_legacy_key_equals_typed_key(case: Case):
    init = case.make()
    shape = case.shapes[0]
    typed = init(jax.random.key(7), shape)
    legacy = init(jax.random.PRNGKey(7), shape)
    np.testing.assert_array_equal(bits(typed), bits(legacy))


@pytest.mark.parametrize("mesh_shape", [(2, 4), (8, 1)])
@pytest.mark.parametrize("case", ROWS)
def test_sharded_equals_unsharded(case: Case, key, mesh_shape):
    init = case.make()
    shape = case.shapes[0]
    mesh = jax.make_mesh(mesh_shape, ("a", "b"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
    # Shard the last two axes when they divide evenly, else replicate them.
    spec = [None] * len(shape)
    for ax, name, n in ((-2, "a", mesh_shape[0]), (-1, "b", mesh_shape[1])):
        if shape[ax] % n == 0:
            spec[ax] = name
    sharding = NamedSharding(mesh, P(*spec))
    expected = init(key, shape)
    with jax.set_mesh(mesh):
        got = init(key, shape, None, sharding)
        got_jit = jax.jit(init, static_argnums=(1, 2, 3))(key, shape, None, sharding)
    assert got.sharding.is_equivalent_to(sharding, len(shape))
    assert got_jit.sharding.is_equivalent_to(sharding, len(shape))
    np.testing.assert_array_equal(bits(got), bits(expected))
    np.testing.assert_array_equal(bits(got_jit), bits(expected))


@pytest.mark.parametrize("case", ROWS)
def test_no_recompile_on_second_call(case: Case, key):
    init = case.make()
    shape = case.shapes[0]
    init(key, shape)  # warm: compiles whatever the initializer needs
    compiles: list[str] = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if "backend_compile" in event:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        init(jax.random.key(99), shape)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert not compiles, f"second call with a new key compiled {len(compiles)} program(s)"


@pytest.mark.parametrize("case", DIST_ROWS)
def test_distribution_ks(case: Case, key):
    """Kolmogorov-Smirnov against the target distribution, float32."""
    assert case.dist is not None
    x = np.asarray(case.make()(key, case.stat_shape, jnp.float32), np.float64).ravel()
    dist = case.dist(case.stat_shape)
    result = stats.kstest(x, dist.cdf)
    assert result.pvalue > 1e-4, f"KS statistic {result.statistic:.4g}, p={result.pvalue:.3g}"
    # The variance is right to within 4 standard errors (var of the sample variance ~ 2 s^4 / n
    # for near-Gaussian data, larger for heavier tails: use the reference's own 4th moment).
    mu4 = (
        dist.moment(4)
        - 4 * dist.mean() * dist.moment(3)
        + 6 * dist.mean() ** 2 * dist.moment(2)
        - 3 * dist.mean() ** 4
    )
    se = math.sqrt((mu4 - dist.var() ** 2) / x.size)
    assert abs(x.var() - dist.var()) < 4 * se, (x.var(), dist.var())


@pytest.mark.parametrize("case", DIST_ROWS)
def test_low_precision_statistics(case: Case, key):
    """bfloat16 outputs are float32 samples rounded once: the moments stay right."""
    assert case.dist is not None
    x = np.asarray(case.make()(key, case.stat_shape, jnp.bfloat16).astype(jnp.float32), np.float64)
    dist = case.dist(case.stat_shape)
    rel = 2**-8  # bfloat16 rounding error, relative
    tol = 6 * dist.std() / math.sqrt(x.size) + rel * abs(dist.mean()) + 1e-12
    assert abs(x.mean() - dist.mean()) < tol
    assert abs(x.std() / dist.std() - 1) < 0.01 + 4 / math.sqrt(x.size)


@pytest.mark.parametrize("case", CHECK_ROWS)
def test_property(case: Case, key):
    assert case.check is not None
    for shape in (*case.shapes, case.stat_shape):
        case.check(np.asarray(case.make()(key, shape, jnp.float32)), shape)


@pytest.mark.parametrize("case", TARGET_ROWS)
def test_describe_targets_match_the_reference(case: Case, key):
    """`describe`'s intended mean/std is the reference distribution's, and the draw matches it."""
    assert case.dist is not None
    init = case.make()
    d = jinit.describe(init, case.stat_shape, key=key)
    dist = case.dist(case.stat_shape)
    # float32's precision: where a scale is computed from hyperparameters (a gain's square,
    # `scale / width_mult`, `stddev / sqrt(2 L)`, Keras's uniform half-width), it is computed in
    # float32, as a traced hyperparameter's is (tests/test_traceable.py), and the target is the
    # scale the values are drawn with.
    assert d.target_std == pytest.approx(dist.std(), rel=2e-7)
    assert d.target_mean == pytest.approx(dist.mean(), rel=2e-7, abs=1e-12)
    assert d.std == pytest.approx(dist.std(), rel=0.02)


@pytest.mark.parametrize("sharded", [False, True], ids=["unsharded", "mesh2x4"])
@pytest.mark.parametrize("case", ROWS)
def test_tree_batch_equals_each_leaf_alone(case: Case, key, sharded):
    """init_tree draws equal-shape leaves together (one kernel); each leaf keeps its own bits."""
    init = case.make()
    shape, dtype = case.shapes[0], case.dtypes[-1]
    tree = {f"w{i}": jax.ShapeDtypeStruct(shape, jnp.float32) for i in range(3)}
    tree |= {"low": jax.ShapeDtypeStruct(shape, dtype)}  # same draw, another finish
    tree |= {"other": jax.ShapeDtypeStruct(case.shapes[-1], jnp.float32)}
    shardings = None
    if sharded:
        mesh = jax.make_mesh((2, 4), ("a", "b"))
        spec = [None] * len(shape)
        if shape[-1] % 4 == 0:
            spec[-1] = "b"
        shardings = {p: NamedSharding(mesh, P(*spec) if p != "other" else P()) for p in tree}
    out = jinit.init_tree(key, tree, [(".*", init)], shardings=shardings)
    for path, x in out.items():
        alone = init(jinit.key_for_path(key, path), x.shape, x.dtype)
        np.testing.assert_array_equal(bits(x), bits(alone), err_msg=path)


# --- property-based sweeps over the registry (Hypothesis profile: tests/conftest.py) -------------


MESHES = {
    "auto": jax.make_mesh((2, 4), ("x", "y"), axis_types=(AxisType.Auto,) * 2),
    "explicit": jax.make_mesh((2, 4), ("x", "y"), axis_types=(AxisType.Explicit,) * 2),
}


KEY_FORMS = {
    "typed": jax.random.key,
    "legacy": jax.random.PRNGKey,
    "int": int,
    "np.int64": np.int64,
    "jax int": lambda s: jnp.array(s, jnp.int32),
}


WRAPPERS = {
    "python": lambda x: x,
    "np.float64": np.float64,
    "np.float32": np.float32,
    "np 0-d": np.array,
    "jax 0-d": jnp.asarray,
}


INT_WRAPPERS = {
    "python": lambda x: x,
    "np.int64": np.int64,
    "np.int32": np.int32,
    "np 0-d": np.array,
    "jax 0-d": jnp.asarray,
}


def finite(x: jax.Array) -> bool:
    return bool(jnp.isfinite(x.astype(jnp.float32)).all())


@st.composite
def valid_calls(draw):
    case: Case = draw(st.sampled_from(CASES))
    shape = draw(st.sampled_from(case.shapes))
    dtype = draw(st.sampled_from(case.dtypes))
    form = draw(st.sampled_from(sorted(KEY_FORMS)))
    seed = draw(st.integers(0, 2**31 - 1))
    mesh = draw(st.sampled_from(sorted(MESHES)))
    return case, shape, dtype, form, seed, mesh


@given(valid_calls())
def test_valid_calls_hold_every_invariant(call):
    """Right shape and dtype, finite, same bits: again, under jit, for every key form, under an
    ambient mesh."""
    case, shape, dtype, form, seed, mesh = call
    init = case.make()
    key = KEY_FORMS[form](seed)
    out = init(key, shape, dtype)
    assert out.shape == shape and out.dtype == jnp.dtype(dtype)
    assert finite(out)
    ref = bits(out)
    np.testing.assert_array_equal(bits(init(key, shape, dtype)), ref)
    np.testing.assert_array_equal(bits(jax.jit(lambda k: init(k, shape, dtype))(key)), ref)
    np.testing.assert_array_equal(bits(init(jax.random.key(seed), shape, dtype)), ref)
    with jax.set_mesh(MESHES[mesh]):
        np.testing.assert_array_equal(bits(init(key, shape, dtype)), ref)


@st.composite
def hyper_calls(draw):
    hyper: Hyper = draw(st.sampled_from(HYPERS))
    values, wrapped = {}, {}
    for name, (lo, hi) in hyper.params.items():
        if name in hyper.ints:
            value = draw(st.integers(int(lo), int(hi)))
            wrap = INT_WRAPPERS[draw(st.sampled_from(sorted(INT_WRAPPERS)))]
        else:
            value = draw(st.floats(lo, hi, allow_nan=False))
            wrap = WRAPPERS[draw(st.sampled_from(sorted(WRAPPERS)))]
        wrapped[name] = wrap(value)
        # The Python number the wrapper holds (np.float32 rounds a float64 value).
        values[name] = np.asarray(wrapped[name]).item()
    shape = draw(st.sampled_from(hyper.shapes))
    dtype = draw(st.sampled_from([jnp.float32, jnp.bfloat16]))
    return hyper, values, wrapped, shape, dtype


@given(hyper_calls())
def test_numpy_and_jax_scalars_act_as_python_numbers(call):
    """A hyperparameter held by a NumPy or jax scalar gives the bits of the Python number."""
    hyper, values, wrapped, shape, dtype = call
    key = jax.random.key(0)
    want = hyper.factory(**values)(key, shape, dtype)
    got_init = hyper.factory(**wrapped)
    got = got_init(key, shape, dtype)
    assert got.shape == shape and got.dtype == jnp.dtype(dtype) and finite(got)
    np.testing.assert_array_equal(bits(got), bits(want))
    target = getattr(got_init, "target", None)
    if target is not None:
        assert target(shape) == hyper.factory(**values).target(shape)


@pytest.mark.parametrize(
    "value",
    [0.25, np.float32(0.25), np.float64(0.25), np.array(0.25), jnp.array(0.25), jnp.float32(0.25)],
    ids=["python", "np.float32", "np.float64", "np 0-d", "jax 0-d", "jnp.float32"],
)
def test_numpy_and_jax_scalars_equal_python_numbers(value, key):
    """The same bits whatever scalar type holds the hyperparameter (0.25 is exact in both)."""
    for make in (jinit.normal, jinit.uniform, jinit.truncated_normal):
        want = make(0.25)(key, (8, 16))
        np.testing.assert_array_equal(make(value)(key, (8, 16)), want)
    want = jinit.variance_scaling(0.25, "fan_in", "normal")(key, (8, 16))
    got = jinit.variance_scaling(value, "fan_in", "normal")(key, (8, 16))
    np.testing.assert_array_equal(got, want)
    assert jinit.scaled_residual(np.int64(8), value).target((4, 4))[3] == 0.25 / 4


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_values_are_independent_of_the_ambient_mesh(case, key):
    """Every initializer, inside ``jax.set_mesh`` with Auto and with Explicit axes, gives the
    bits it gives outside (no ``out_sharding``)."""
    init = case.make()
    shape = case.shapes[0]
    want = bits(init(key, shape))
    for name, mesh in MESHES.items():
        with jax.set_mesh(mesh):
            np.testing.assert_array_equal(bits(init(key, shape)), want, err_msg=name)


def test_sparse_is_independent_of_the_ambient_mesh(key):
    init = jinit.sparse(0.3)  # std 0.01: the product XLA used to fuse differently under a mesh
    for shape in ((8, 16), (3, 5)):
        want = np.asarray(init(key, shape))
        for axis_type in (AxisType.Auto, AxisType.Explicit):
            mesh = jax.make_mesh((8,), ("x",), axis_types=(axis_type,))
            with jax.set_mesh(mesh):
                np.testing.assert_array_equal(np.asarray(init(key, shape)), want)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_zero_size_shapes_give_empty_arrays(case, key):
    """Each zero-sized variant of a legal shape is legal (an empty array, `describe` too), or
    raises a clear ValueError about the shape."""
    init = case.make()
    shape = case.shapes[0]
    for i in range(len(shape)):
        empty = (*shape[:i], 0, *shape[i + 1 :])
        try:
            out = init(key, empty)
        except ValueError as e:
            assert "shape" in str(e) or "channels" in str(e), str(e)
            continue
        assert out.shape == empty and out.dtype == jnp.float32
        assert jinit.describe(init, empty).shape == empty


@pytest.mark.parametrize(
    ("init", "shape"),
    [
        (jinit.delta_orthogonal(), (0, 3, 4, 6)),
        (jinit.delta_orthogonal(), (3, 0, 4, 6)),
        (jinit.dirac(), (0, 3, 4, 6)),
        (jinit.dirac(), (3, 3, 0, 6)),
        (jinit.zero_init(), (0, 3, 4, 6)),
        (jinit.he_normal(), (0, 6)),
        (jinit.glorot_uniform(), (3, 3, 4, 0)),
        (jinit.orthogonal(), (0, 6)),
        (jinit.sparse(0.5), (0, 6)),
    ],
    ids=lambda x: x.short_name if isinstance(x, jinit.Init) else str(x),
)
def test_zero_size_kernels_give_empty_arrays_under_jit_and_describe(init, shape, key):
    w = init(key, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    assert jax.jit(lambda k: init(k, shape))(key).shape == shape
    d = jinit.describe(init, shape)
    assert d.shape == shape and (d.mean, d.std) == (0.0, 0.0) and d.target_std is None
