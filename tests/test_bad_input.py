"""Bad input never gives a silent wrong answer (issue 14): each example of the issue, pinned.

Every test here failed before the fix: it returned a wrong value, crashed, or raised the wrong
exception type with an unhelpful message.
"""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType

import jinit

SDS = jax.ShapeDtypeStruct


# --- silent wrong results -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: jinit.normal(stddev=np.full(3, 0.1)),
            r"`normal\(stddev=\.\.\.\)` must be a scalar; got an array of shape \(3,\)\.",
        ),
        (
            lambda: jinit.uniform(jnp.ones((2, 2))),
            r"`uniform\(scale=\.\.\.\)` must be a scalar; got an array of shape \(2, 2\)\.",
        ),
        (
            lambda: jinit.variance_scaling(np.array(-1.0), "fan_in", "normal"),
            r"`variance_scaling\(scale=\.\.\.\)` must be non-negative; got array\(-1\.\)\.",
        ),
        (
            lambda: jinit.normal(stddev=jnp.array(jnp.inf)),
            r"`normal\(stddev=\.\.\.\)` must be finite; got Array\(inf",
        ),
        (
            lambda: jinit.uniform(scale=np.array(np.nan)),
            r"`uniform\(scale=\.\.\.\)` must be finite; got array\(nan\)\.",
        ),
        (
            lambda: jinit.truncated_normal(1.0, lower=np.array(3.0), upper=np.array(-3.0)),
            r"`truncated_normal\(lower=\.\.\., upper=\.\.\.\)` needs lower < upper; got "
            r"lower=3\.0, upper=-3\.0\.",
        ),
        (
            lambda: jinit.sparse(np.float32(1.5)),
            r"`sparse\(sparsity=\.\.\.\)` must be in \[0, 1\]; got 1\.5\.",
        ),
        (
            lambda: jinit.torch_trunc_normal(a=np.array(2.0), b=np.array(1.0)),
            r"`torch_trunc_normal\(a=\.\.\., b=\.\.\.\)` needs a < b",
        ),
        (
            lambda: jinit.normal(10**400),
            r"`normal\(stddev=\.\.\.\)` must be finite; got 1000",
        ),
        (
            lambda: jinit.scaled(jinit.ones, np.array([1.0, 2.0])),
            r"`scaled\(factor=\.\.\.\)` must be a scalar; got an array of shape \(2,\)\.",
        ),
        (
            lambda: jinit.normal(np.bool_(True)),
            r"`normal\(stddev=\.\.\.\)` must be a real number; got (np\.)?True",
        ),
        (
            lambda: jinit.normal(np.complex64(1j)),
            r"`normal\(stddev=\.\.\.\)` must be a real number",
        ),
    ],
)
def test_array_and_non_finite_hyperparameters_are_refused(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_traced_hyperparameters_are_checked_for_what_is_static(key):
    """A traced stddev is taken (tests/test_traced.py); its shape and dtype are still checked,
    and a hyperparameter jax does not trace (a truncation bound) must be concrete."""
    with pytest.raises(
        ValueError, match=r"`normal\(stddev=\.\.\.\)` must be a scalar; got a traced"
    ):
        jax.jit(lambda s: jinit.normal(s)(key, (2,)))(jnp.ones(3))
    with pytest.raises(
        TypeError, match=r"`normal\(stddev=\.\.\.\)` must be a real number; got a traced bool"
    ):
        jax.jit(lambda s: jinit.normal(s)(key, (2,)))(True)
    with pytest.raises(
        TypeError, match=r"`uniform\(scale=\.\.\.\)` must be a real number; got a traced complex"
    ):
        jax.jit(lambda s: jinit.uniform(s)(key, (2,)))(jnp.complex64(1))
    with pytest.raises(
        TypeError, match=r"`truncated_normal\(lower=\.\.\.\)` must be a concrete number"
    ):
        jax.jit(lambda b: jinit.truncated_normal(1.0, lower=b)(key, (2,)))(-2.0)


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
    assert jinit.scaled_residual(np.int64(8), value).jinit_target((4, 4))[3] == 0.25 / 4


def test_scaled_keeps_the_inner_default_dtype(key):
    w = jinit.scaled(jinit.normal(1.0, dtype=jnp.bfloat16), 2.0)(key, (4, 6))
    assert w.dtype == jnp.bfloat16
    # Drawn in float32 and rounded once, like the inner initializer's own bfloat16 output.
    want = (jinit.normal(1.0)(key, (4, 6)) * 2.0).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(want))


def test_explicit_none_dtype_means_the_factory_default(key):
    init = jinit.normal(1.0, dtype=jnp.bfloat16)
    assert init(key, (4,), None).dtype == jnp.bfloat16
    assert jinit.mup_readout(2.0, zero=True, dtype=jnp.float16)(key, (4, 4), None).dtype == (
        jnp.float16
    )


@pytest.mark.parametrize(
    ("init", "dtype"),
    [
        (jinit.normal(1e5), jnp.float16),
        (jinit.uniform(1e6), jnp.float16),
        (jinit.constant(-70.0), jnp.float8_e3m4),
        (jinit.constant(500.0), jnp.float8_e4m3fn),
        (jinit.identity(1e5), jnp.float16),
        (jinit.hadamard(1e9), jnp.float16),
        (jinit.sparse(0.5, std=1e5), jnp.float16),
        (jinit.scaled(jinit.normal(1.0), 1e5), jnp.float16),
        (jinit.variance_scaling(1e12, "fan_in", "normal"), jnp.float16),
        (jinit.normal(1e38), jnp.float32),
    ],
    ids=lambda x: getattr(x, "__qualname__", str(x)),
)
def test_values_that_overflow_the_dtype_are_refused(init, dtype, key):
    with pytest.raises(ValueError, match=r"overflow .*largest finite value"):
        init(key, (64, 64), dtype)


def test_values_that_fit_are_not_refused(key):
    assert bool(jnp.isfinite(jinit.normal(1e3)(key, (64,), jnp.float16)).all())
    assert bool(jnp.isfinite(jinit.constant(448.0)(key, (4,), jnp.float8_e4m3fn)).all())


def test_compute_fans_and_initializers_accept_numpy_axes(key):
    assert jinit.compute_fans((4, 6), in_axis=np.int64(1), out_axis=np.int64(0)) == (6.0, 4.0)
    assert jinit.compute_fans((4, 6), in_axis=jnp.array(1), out_axis=[np.int32(0)]) == (6.0, 4.0)
    for make in (jinit.lecun_normal, jinit.he_uniform, jinit.torch_kaiming_normal):
        a = make(in_axis=np.int64(1), out_axis=np.int64(0))(key, (4, 6))
        b = make(in_axis=1, out_axis=0)(key, (4, 6))
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match=r"`compute_fans\(in_axis=\.\.\.\)` must be an int"):
        jinit.compute_fans((4, 6), in_axis=np.float32(1))


def test_compute_fans_shared_axis_is_documented_jax_arithmetic():
    """An axis in both fans keeps jax's arithmetic (pinned by tests/test_fans.py)."""
    from jax._src.nn.initializers import _compute_fans

    assert jinit.compute_fans((4, 6), 0, 0) == _compute_fans((4, 6), 0, 0) == (6.0, 6.0)
    assert "divided out of the receptive\n    field twice" in jinit.compute_fans.__doc__


# --- reproducibility holes ------------------------------------------------------------------


def test_sparse_is_independent_of_the_ambient_mesh(key):
    init = jinit.sparse(0.3)  # std 0.01: the product XLA used to fuse differently under a mesh
    for shape in ((8, 16), (3, 5)):
        want = np.asarray(init(key, shape))
        for axis_type in (AxisType.Auto, AxisType.Explicit):
            mesh = jax.make_mesh((8,), ("x",), axis_types=(axis_type,))
            with jax.set_mesh(mesh):
                np.testing.assert_array_equal(np.asarray(init(key, shape)), want)


def test_distinct_leaves_with_one_path_string_are_refused(key):
    tree = {"a/b": SDS((2,), jnp.float32), "a": {"b": SDS((2,), jnp.float32)}}
    with pytest.raises(
        ValueError,
        match=r"`init_tree`: the leaves \['a'\]\['b'\] and \['a/b'\] have the same path string "
        r"'a/b'",
    ):
        jinit.init_tree(key, tree, [(".*", jinit.normal())])
    with pytest.raises(ValueError, match=r"`keys_like`: the leaves .* same path string 'a/b'"):
        jinit.keys_like(key, {"a/b": 1, "a": {"b": 2}})
    ordered = collections.OrderedDict([(1, SDS((2,), jnp.float32)), ("1", SDS((2,), jnp.float32))])
    with pytest.raises(ValueError, match=r"the leaves \[1\] and \['1'\] have the same path"):
        jinit.init_tree(key, ordered, [(".*", jinit.normal())])


def test_a_flat_path_keyed_dict_keeps_the_nested_values(key):
    """'/' in a key reads as nesting, on purpose: flattening a tree keeps its values."""
    nested = jinit.init_tree(key, {"a": {"b": SDS((4,), jnp.float32)}}, [(".*", jinit.normal())])
    flat = jinit.init_tree(key, {"a/b": SDS((4,), jnp.float32)}, [(".*", jinit.normal())])
    np.testing.assert_array_equal(flat["a/b"], nested["a"]["b"])


# --- valid input rejected -------------------------------------------------------------------


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
    ids=lambda x: x.__qualname__.split(".")[0] if callable(x) else str(x),
)
def test_zero_size_shapes_give_empty_arrays(init, shape, key):
    w = init(key, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    assert jax.jit(lambda k: init(k, shape))(key).shape == shape
    d = jinit.describe(init, shape)
    assert d.shape == shape and (d.mean, d.std) == (0.0, 0.0) and d.target_std is None


def test_zero_size_shapes_still_get_the_shape_checks(key):
    with pytest.raises(ValueError, match=r"`compute_fans\(in_axis=-2\)` is out of range|rank >= 2"):
        jinit.he_normal()(key, (0,))
    with pytest.raises(ValueError, match=r"`delta_orthogonal` needs a kernel of rank 3, 4 or 5"):
        jinit.delta_orthogonal()(key, (0, 4))


# --- the documented signature ---------------------------------------------------------------


def test_init_tree_calls_a_three_argument_initializer(key):
    def init(key, shape, dtype):
        return jnp.full(shape, 3.0, dtype)

    out = jinit.init_tree(key, {"w": SDS((2, 3), jnp.bfloat16)}, [(".*", init)])
    assert out["w"].dtype == jnp.bfloat16 and float(out["w"].sum()) == 18.0


# --- keys and shardings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "init",
    [jinit.normal(), jinit.orthogonal(), jinit.scaled(jinit.normal(), 2.0), jinit.sparse(0.5)],
    ids=["normal", "orthogonal", "scaled", "sparse"],
)
def test_initializers_check_their_key(init):
    """Random initializers check their key; deterministic ones take any, as jax's ``zeros``
    does (tests/test_flax_modules.py)."""
    shape = (3, 4, 6)
    for bad, received in [
        (np.zeros(2, np.float32), r"an array of shape \(2,\) and dtype float32"),
        ("abc", r"'abc'"),
        (1.5, r"1\.5"),
        (True, r"True"),
        (jnp.zeros(3, jnp.uint32), r"an array of shape \(3,\) and dtype uint32"),
    ]:
        with pytest.raises(
            TypeError,
            match=r": `key` must be a typed key, a uint32\[2\] key or an int seed; got " + received,
        ):
            init(bad, shape)
    with pytest.raises(ValueError, match=r"`key` must be a single key; got a key array"):
        init(jax.random.split(jax.random.key(0)), shape)


def test_int_seeds_and_legacy_keys_agree_with_init_tree():
    init = jinit.normal(1.0)
    want = init(jax.random.key(7), (4, 6))
    for key in (7, np.int64(7), jnp.array(7), np.array(7, np.uint32)):
        np.testing.assert_array_equal(init(key, (4, 6)), want)
    legacy = jax.random.PRNGKey(7)
    np.testing.assert_array_equal(init(legacy, (4, 6)), want)
    # init_tree takes the same forms to mean the same root key.
    tree = {"w": SDS((4, 6), jnp.float32)}
    a = jinit.init_tree(7, tree, [(".*", init)])["w"]
    b = init(jinit.key_for_path(jax.random.key(7), "w"), (4, 6))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"an int seed must fit in int64"):
        init(2**70, (4, 6))


@pytest.mark.parametrize("bad", [{}, "x", 3, ("x",)], ids=repr)
def test_out_sharding_is_checked(bad, key):
    for init, where in ((jinit.normal(), "normal"), (jinit.zeros, "zeros")):
        with pytest.raises(
            TypeError,
            match=rf"`{where}`: `out_sharding` must be a NamedSharding, a PartitionSpec or None; "
            rf"got ",
        ):
            init(key, (4, 6), None, bad)


def test_float64_without_x64_is_refused(key):
    with pytest.raises(ValueError, match=r"`normal`: `dtype` float64 needs 64-bit mode"):
        jinit.normal()(key, (4, 6), jnp.float64)
    with pytest.raises(ValueError, match=r"`zeros`: `dtype` complex128 needs 64-bit mode"):
        jinit.zeros(key, (4, 6), np.complex128)
    assert jinit.normal()(key, (4,), float).dtype == jnp.float32  # Python float: jax's default


# --- crashes and wrong exception types ------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        ("float6_e2m3fn", r"must be a float of 8 bits or more; got float6_e2m3fn"),
        ("float6_e3m2fn", r"must be a float of 8 bits or more; got float6_e3m2fn"),
        ("float4_e2m1fn", r"must be a float of 8 bits or more; got float4_e2m1fn"),
        ("float8_e8m0fnu", r"must represent zero and negative values; got float8_e8m0fnu"),
    ],
)
def test_dtypes_jinit_cannot_produce_are_refused_before_xla(dtype, message, key):
    if not hasattr(jnp, dtype):
        pytest.skip(f"this jax has no {dtype}")
    dt = getattr(jnp, dtype)
    for init, where in ((jinit.constant(-7.0), "constant"), (jinit.zeros, "zeros")):
        with pytest.raises(TypeError, match=rf"`{where}`: `dtype` {message}"):
            init(key, (4, 6), dt)
    with pytest.raises(TypeError, match=message):
        jinit.normal(dtype=dt)


def test_float8_with_a_zero_still_works(key):
    w = jinit.zeros(key, (4, 6), jnp.float8_e4m3fn)
    assert w.dtype == jnp.float8_e4m3fn and not np.asarray(w.astype(jnp.float32)).any()


def test_describe_zero_size_and_huge_shapes(key):
    d = jinit.describe(jinit.he_normal(), (0, 16))
    assert d.shape == (0, 16) and d.fan_in is None and d.std == 0.0
    with pytest.raises(ValueError, match=r"`normal`: `shape` \(1180591620717411303424,\) has more"):
        jinit.normal()(key, (2**70,))
    with pytest.raises(ValueError, match=r"`compute_fans`: `shape` .* has more than 2\*\*63 - 1"):
        jinit.compute_fans((2**62, 4))
    with pytest.raises(ValueError, match=r"`t_fixup_scale\(n_layers=\.\.\.\)` must be below"):
        jinit.t_fixup(10**400)


def test_initializer_returning_a_python_float_in_init_tree(key):
    with pytest.raises(
        TypeError,
        match=r"`init_tree`: the initializer for 'w' \(rule '\.\*'\) must return an array of "
        r"float32\[2\]; got float 1\.0\.",
    ):
        jinit.init_tree(key, {"w": SDS((2,), jnp.float32)}, [(".*", lambda k, s, d: 1.0)])


def test_flax_entry_points_check_their_module(key):
    flax_jinit = pytest.importorskip("jinit.flax")
    with pytest.raises(TypeError, match=r"`init_linen\(module=\.\.\.\)` must be a flax\.linen"):
        flax_jinit.init_linen("abc", key, [])
    with pytest.raises(TypeError, match=r"`init_nnx\(model=\.\.\.\)` must be a flax\.nnx\.Module"):
        flax_jinit.init_nnx("abc", key, [])


@pytest.mark.parametrize("shape", [{4: 6}, {4, 6}, "46", 4.0, (4, True), (4, 2.0)], ids=repr)
def test_shapes_must_be_ordered_int_sequences(shape, key):
    with pytest.raises(TypeError, match=r"`zeros`: `shape` must be a sequence of non-negative"):
        jinit.zeros(key, shape)
    with pytest.raises(TypeError, match=r"`normal`: `shape` must be a sequence of non-negative"):
        jinit.normal()(key, shape)


def test_numpy_and_jax_shapes_are_accepted(key):
    for shape in ((np.int64(4), 6), np.array([4, 6]), (jnp.array(4), jnp.array(6)), [4, 6]):
        assert jinit.normal()(key, shape).shape == (4, 6)
        assert jinit.zeros(key, shape).shape == (4, 6)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: jinit.fixup(np.int64(16), 2.0),
            TypeError,
            r"`fixup\(layers_per_b",
        ),
        (lambda: jinit.dirac(groups="2"), TypeError, r"`dirac\(groups=\.\.\.\)` must be an int"),
        (lambda: jinit.torch_bias_default(fan_in=-1), ValueError, r"must be an int >= 0; got -1"),
        (
            lambda: jinit.deepnorm(0),
            ValueError,
            r"`deepnorm\(n_layers=\.\.\.\)` must be",
        ),
    ],
)
def test_count_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()
    assert jinit.fixup(np.int64(16), np.int32(2)) is not None
    assert jinit.dirac(groups=jnp.array(2))(jax.random.key(0), (3, 2, 4)).shape == (3, 2, 4)


def test_calculate_gain_and_kernel_operand_take_numpy_scalars():
    assert jinit.calculate_gain("leaky_relu", np.array(0.2)) == jinit.calculate_gain(
        "leaky_relu", 0.2
    )
    a = jinit.variance_scaling(1.0, "fan_in", "normal", einsum="bd,dh->bh", kernel_operand=-1)
    b = jinit.variance_scaling(
        1.0, "fan_in", "normal", einsum="bd,dh->bh", kernel_operand=np.int64(-1)
    )
    key = jax.random.key(0)
    np.testing.assert_array_equal(a(key, (4, 6)), b(key, (4, 6)))
    with pytest.raises(TypeError, match=r"`variance_scaling\(kernel_operand=\.\.\.\)` must be an"):
        jinit.variance_scaling(1.0, "fan_in", "normal", einsum="bd,dh->bh", kernel_operand="x")


def test_init_tree_lays_out_a_three_argument_initializer_on_explicit_axes(key):
    """Under an Explicit-axis sharding a 3-argument init is called without `out_sharding`."""

    def init(key, shape, dtype):
        return jinit.normal(1.0)(key, shape, dtype)

    mesh = jax.make_mesh((2, 4), ("x", "y"), axis_types=(AxisType.Explicit,) * 2)
    sharding = jax.sharding.NamedSharding(mesh, jax.P("x", "y"))
    tree = {"w": SDS((8, 16), jnp.float32)}
    out = jinit.init_tree(key, tree, [(".*", init)], shardings=sharding)
    assert out["w"].sharding.is_equivalent_to(sharding, 2)
    want = jinit.normal(1.0)(jinit.key_for_path(key, "w"), (8, 16))
    np.testing.assert_array_equal(np.asarray(out["w"]), np.asarray(want))


# --- overflow, NaN and truthy strings: each a ValueError/TypeError naming the argument -----------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: jinit.torch_xavier_normal(gain=1e160),
            ValueError,
            r"`torch_xavier_normal\(gain=\.\.\.\)` must be at most 1\.341e\+154 \(its square, the "
            r"variance scale, must be a finite float\); got 1e\+160\.",
        ),
        (
            lambda: jinit.torch_xavier_uniform(gain=1e160),
            ValueError,
            r"`torch_xavier_uniform\(gain=\.\.\.\)` must be at most 1\.341e\+154.*got 1e\+160\.",
        ),
        (
            lambda: jinit.calculate_gain("leaky_relu", param=10**400),
            ValueError,
            r"`calculate_gain\('leaky_relu', param=\.\.\.\)` must be a finite real number \(the "
            r"negative slope\) or None; got 1000",
        ),
        (
            lambda: jinit.torch_kaiming_normal(a=10**400),
            ValueError,
            r"`torch_kaiming_normal\(a=\.\.\.\)` must be finite; got 1000",
        ),
        (
            lambda: jinit.mup_readout(width_mult=2.0, zero="false"),
            TypeError,
            r"`mup_readout\(zero=\.\.\.\)` must be a bool; got 'false'\.",
        ),
        (
            lambda: jinit.mup_readout(width_mult=2.0, zero=1),
            TypeError,
            r"`mup_readout\(zero=\.\.\.\)` must be a bool; got 1\.",
        ),
    ],
)
def test_overflowing_and_truthy_hyperparameters_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_leaky_relu_gain_of_a_huge_slope_is_computed_not_overflowed(key):
    """torch's formula overflows squaring a slope of 1e200; the gain is sqrt(2) / 1e200."""
    assert jinit.calculate_gain("leaky_relu", 1e200) == pytest.approx(2**0.5 / 1e200, rel=1e-15)
    for make in (jinit.torch_kaiming_normal, jinit.torch_kaiming_uniform):
        w = make(a=1e200)(key, (8, 4))  # variance 2 / (1 + a^2) / fan_in underflows to 0
        assert not bool(w.any())
    assert bool(np.isfinite(np.asarray(jinit.torch_kaiming_normal(a=1e150)(key, (8, 4)))).all())


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [({"mean": 1e39}, "mean", r"1e\+39"), ({"std": 1e39}, "std", r"1e\+39")],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_torch_trunc_normal_refuses_values_beyond_its_compute_dtype(
    kwargs, name, value, dtype, key
):
    """Beyond float32's range (the dtype bfloat16 is drawn in too) the draw was all NaN."""
    init = jinit.torch_trunc_normal(**kwargs)
    with pytest.raises(
        ValueError,
        match=rf"`torch_trunc_normal\({name}=\.\.\.\)` must be representable in float32, the "
        rf"dtype the values are computed in \(largest finite value 3\.403e\+38\); got {value}\.",
    ):
        init(key, (4, 6), dtype)


def test_torch_trunc_normal_far_from_its_interval_stays_in_it(key):
    """A mean 1e30 std from [a, b] (representable) gives values in [a, b], as torch's clamp."""
    w = np.asarray(jinit.torch_trunc_normal(mean=1e30)(key, (1000,)))
    assert np.isfinite(w).all() and w.min() >= -2.0 and w.max() <= 2.0
    with pytest.raises(
        ValueError, match=r"`torch_trunc_normal`: values up to about 6e\+05 overflow"
    ):
        jinit.torch_trunc_normal(std=1e5, a=-1e6, b=1e6)(key, (4,), jnp.float16)


def test_dirac_beyond_int32_axes_traces(key):
    """An axis of 2**32 + 2 outputs: shape-only tracing works (no int32 index overflows)."""
    out = jax.eval_shape(lambda k: jinit.dirac()(k, (1, 1, 2, 2**32 + 2), jnp.bfloat16), key)
    assert (out.shape, out.dtype) == ((1, 1, 2, 2**32 + 2), jnp.bfloat16)
    out = jax.eval_shape(lambda k: jinit.dirac(2)(k, (1, 2**31 + 5, 2**31 + 6), jnp.float32), key)
    assert out.shape == (1, 2**31 + 5, 2**31 + 6)
