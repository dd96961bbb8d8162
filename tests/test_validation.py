"""Input validation: a bad key, shape, dtype, hyperparameter or `out_sharding` gets an early
``ValueError``/``TypeError`` that names the argument (every message pinned here), and the valid
forms of each (NumPy and jax scalars, int seeds, NumPy shapes) are accepted.

The property-based sweeps draw from the registry (``CASES``: every public initializer; ``HYPERS``:
the factories with drawable hyperparameters) under the Hypothesis profile of tests/conftest.py.
"""

from __future__ import annotations

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from registry import CASES, HYPERS, Case, Hyper

import jinit

J = jax.nn.initializers
SDS = jax.ShapeDtypeStruct


# --- hyperparameters, checked when the factory is called -----------------------------------------


FACTORY_ERRORS = [
    (
        lambda: jinit.variance_scaling(1.0, "fan_foo", "normal"),
        ValueError,
        r"`variance_scaling\(mode=\.\.\.\)` must be one of 'fan_in', 'fan_out', 'fan_avg', "
        r"'fan_geo_avg'; got 'fan_foo'\.",
    ),
    (
        lambda: jinit.variance_scaling(1.0, "fan_in", "gaussian"),
        ValueError,
        r"`variance_scaling\(distribution=\.\.\.\)` must be one of 'truncated_normal', 'normal', "
        r"'uniform'; got 'gaussian'\.",
    ),
    (
        lambda: jinit.variance_scaling(-1.0, "fan_in", "normal"),
        ValueError,
        r"`variance_scaling\(scale=\.\.\.\)` must be non-negative; got -1\.0\.",
    ),
    (
        lambda: jinit.variance_scaling("1", "fan_in", "normal"),
        TypeError,
        r"`variance_scaling\(scale=\.\.\.\)` must be a real number; got '1'\.",
    ),
    (
        lambda: jinit.variance_scaling(float("nan"), "fan_in", "normal"),
        ValueError,
        r"`variance_scaling\(scale=\.\.\.\)` must be finite; got nan\.",
    ),
    (
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=1.5),
        TypeError,
        r"`variance_scaling\(in_axis=\.\.\.\)` must be an int or a sequence of ints; got 1\.5\.",
    ),
    (
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", in_axis=0, einsum="bd,dh->bh"),
        ValueError,
        r"derives the fan axes from the spec; do not also pass `in_axis`",
    ),
    (
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", dtype=jnp.int32),
        TypeError,
        r"`variance_scaling`: `dtype` must be a floating or complex dtype; got int32\.",
    ),
    (
        lambda: jinit.lecun_normal(dtype="float33"),
        TypeError,
        r"`variance_scaling`: `dtype` must be a floating dtype; got 'float33'\.",
    ),
    (lambda: jinit.normal(-0.1), ValueError, r"`normal\(stddev=\.\.\.\)` must be non-negative"),
    (lambda: jinit.uniform(None), TypeError, r"`uniform\(scale=\.\.\.\)` must be a real number"),
    (
        lambda: jinit.uniform(dtype=jnp.complex64),
        TypeError,
        r"`uniform`: `dtype` must be a real floating dtype; got complex64\.",
    ),
    (
        lambda: jinit.truncated_normal(1.0, lower=2.0, upper=-2.0),
        ValueError,
        r"`truncated_normal\(lower=\.\.\., upper=\.\.\.\)` needs lower < upper; got lower=2\.0, "
        r"upper=-2\.0\.",
    ),
    (
        lambda: jinit.constant(np.ones(3)),
        ValueError,
        r"`constant\(value=\.\.\.\)` must be a scalar; got an array of shape \(3,\)\.",
    ),
    (
        lambda: jinit.orthogonal(column_axis=1.0),
        TypeError,
        r"`orthogonal\(column_axis=\.\.\.\)` must be an int; got 1\.0\.",
    ),
    (
        lambda: jinit.delta_orthogonal(scale="big"),
        TypeError,
        r"`delta_orthogonal\(scale=\.\.\.\)` must be a real number; got 'big'\.",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), FACTORY_ERRORS)
def test_factory_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_variance_scaling_mode_is_checked_when_built_unlike_jax():
    J.variance_scaling(1.0, "fan_foo", "normal")  # jax builds it happily
    with pytest.raises(
        ValueError,
        match=r"`variance_scaling\(mode=\.\.\.\)` must be one of "
        r"'fan_in', 'fan_out', 'fan_avg', 'fan_geo_avg'; got "
        r"'fan_foo'\.",
    ):
        jinit.variance_scaling(1.0, "fan_foo", "normal")


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
            lambda: jinit.torch.trunc_normal(a=np.array(2.0), b=np.array(1.0)),
            r"`torch\.trunc_normal\(a=\.\.\., b=\.\.\.\)` needs a < b",
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
    """A traced stddev or bound is taken (tests/test_traced.py, tests/test_traceable.py); its
    shape and dtype are still checked, and a count must be concrete."""
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
        ValueError, match=r"`truncated_normal\(lower=\.\.\.\)` must be a scalar; got a traced"
    ):
        jax.jit(lambda b: jinit.truncated_normal(1.0, lower=b)(key, (2,)))(-jnp.ones(2))
    with pytest.raises(TypeError, match=r"`dirac\(groups=\.\.\.\)` must be a concrete int, not a"):
        jax.jit(lambda g: jinit.dirac(g)(key, (3, 4, 4)))(2)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: jinit.torch.xavier_normal(gain=1e160),
            ValueError,
            r"`torch\.xavier_normal\(gain=\.\.\.\)` must be at most 1\.341e\+154 \(its square, the "
            r"variance scale, must be a finite float\); got 1e\+160\.",
        ),
        (
            lambda: jinit.torch.xavier_uniform(gain=1e160),
            ValueError,
            r"`torch\.xavier_uniform\(gain=\.\.\.\)` must be at most 1\.341e\+154.*got 1e\+160\.",
        ),
        (
            lambda: jinit.calculate_gain("leaky_relu", param=10**400),
            ValueError,
            r"`calculate_gain\('leaky_relu', param=\.\.\.\)` must be a finite real number \(the "
            r"negative slope\) or None; got 1000",
        ),
        (
            lambda: jinit.torch.kaiming_normal(a=10**400),
            ValueError,
            r"`torch\.kaiming_normal\(a=\.\.\.\)` must be finite; got 1000",
        ),
        (
            lambda: jinit.mup.readout(width_mult=2.0, zero="false"),
            TypeError,
            r"`mup\.readout\(zero=\.\.\.\)` must be a bool; got 'false'\.",
        ),
        (
            lambda: jinit.mup.readout(width_mult=2.0, zero=1),
            TypeError,
            r"`mup\.readout\(zero=\.\.\.\)` must be a bool; got 1\.",
        ),
    ],
)
def test_overflowing_and_truthy_hyperparameters_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: jinit.fixup(np.int64(16), 2.0),
            TypeError,
            r"`fixup\(layers_per_b",
        ),
        (lambda: jinit.dirac(groups="2"), TypeError, r"`dirac\(groups=\.\.\.\)` must be an int"),
        (lambda: jinit.torch.bias_default(fan_in=-1), ValueError, r"must be an int >= 0; got -1"),
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


def _bad_values(hyper: Hyper, name: str) -> list[tuple[object, type, str]]:
    """(value, error type, what the message says) for an invalid value of `name`."""
    real = name not in hyper.ints
    bad: list[tuple[object, type, str]] = [
        (np.full(2, 1.0), ValueError, "must be a scalar"),
        (jnp.ones((1, 1)), ValueError, "must be a scalar"),
        ("1", TypeError, "must be"),
        (None, TypeError, "must be"),
        (True, TypeError, "must be"),
        (np.bool_(False), TypeError, "must be"),
    ]
    if hyper.name != "constant":  # constant(1j) fills complex arrays
        bad.append((1 + 1j, TypeError, "must be"))
    if real:
        bad += [
            (math.nan, ValueError, "must be finite"),
            (np.float32(np.inf), ValueError, "must be finite"),
            (jnp.array(-np.inf), ValueError, "must be finite"),
            (10**400, ValueError, "must be finite"),
        ]
    else:
        bad += [(1.5, TypeError, "must be an int"), (np.float64(2.0), TypeError, "must be an int")]
    if name in hyper.nonneg:
        bad.append((np.array(-1 if not real else -0.5), ValueError, "must be"))
    return bad


@st.composite
def invalid_hyper_calls(draw):
    hyper: Hyper = draw(st.sampled_from(HYPERS))
    name = draw(st.sampled_from(sorted(hyper.params)))
    bad = draw(st.sampled_from(_bad_values(hyper, name)))
    kwargs = {n: (lo if n in hyper.ints else (lo + hi) / 2) for n, (lo, hi) in hyper.params.items()}
    kwargs[name] = bad[0]
    return hyper, name, kwargs, bad


@settings(max_examples=150)
@given(invalid_hyper_calls())
def test_invalid_hyperparameters_name_the_argument(call):
    hyper, name, kwargs, (_, error, says) = call
    with pytest.raises((ValueError, TypeError)) as info:
        hyper.factory(**kwargs)
    message = str(info.value)
    assert f"({name}=" in message and says in message, message
    assert info.type is error, (info.type, message)


# --- call arguments: key, shape, dtype, out_sharding ---------------------------------------------


CALL_ERRORS = [
    (
        jinit.lecun_normal(),
        (7,),
        None,
        ValueError,
        r"default `in_axis=-2` needs a weight of rank >= 2; got shape \(7,\)",
    ),
    (
        jinit.lecun_normal(in_axis=3),
        (4, 5),
        None,
        ValueError,
        r"`compute_fans\(in_axis=3\)` is out of range for a 2-dimensional shape",
    ),
    (
        jinit.lecun_normal(einsum="btd,dnh->btnh"),
        (4, 5),
        None,
        ValueError,
        r"the kernel has 3 axes in the spec but the shape \(4, 5\) has 2",
    ),
    (
        jinit.normal(),
        (4, "5"),
        None,
        TypeError,
        r"`normal`: `shape` must be a sequence of non-negative ints; got \(4, '5'\)\.",
    ),
    (
        jinit.normal(),
        (4, 5),
        jnp.int8,
        TypeError,
        r"`normal`: `dtype` must be a floating or complex dtype; got int8\.",
    ),
    (
        jinit.truncated_normal(),
        (4, 5),
        jnp.complex64,
        TypeError,
        r"`truncated_normal`: `dtype` must be a real floating dtype; got complex64\.",
    ),
    (
        jinit.orthogonal(),
        (5,),
        None,
        ValueError,
        r"`orthogonal` needs a shape of rank >= 2; "
        r"got \(5,\)\.",
    ),
    (
        jinit.orthogonal(column_axis=2),
        (4, 5),
        None,
        ValueError,
        r"`orthogonal\(column_axis=2\)` is out of range for a 2-dimensional shape",
    ),
    (
        jinit.delta_orthogonal(),
        (3, 3),
        None,
        ValueError,
        r"needs a kernel of rank 3, 4 or 5 \(spatial axes, in, out\); got shape \(3, 3\)\.",
    ),
    (
        jinit.delta_orthogonal(),
        (3, 8, 4),
        None,
        ValueError,
        r"needs in-channels <= out-channels \(shape\[-2\] <= shape\[-1\]\); got shape \(3, 8, 4\)",
    ),
    (
        jinit.zeros,
        3.5,
        None,
        TypeError,
        r"`zeros`: `shape` must be a sequence of non-negative "
        r"ints; got 3\.5\.",
    ),
]


@pytest.mark.parametrize(("init", "shape", "dtype", "error", "match"), CALL_ERRORS)
def test_call_errors(init, shape, dtype, error, match):
    with pytest.raises(error, match=match):
        init(jax.random.key(0), shape, dtype)


BAD_KEYS = [
    np.zeros(2, np.float32),
    jnp.zeros(3, jnp.uint32),
    "key",
    1.5,
    True,
    None,
    jax.random.split(jax.random.key(0)),
]


BAD_SHAPES = [{4: 6}, {4, 6}, "46", 4.0, (4, -1), (4, True), (4, 2.5), None, (2**40, 2**40)]


BAD_DTYPES = [jnp.int32, "float33", jnp.bool_, jnp.float8_e8m0fnu, jnp.float64, object]


BAD_SHARDINGS = [{}, "x", 3, ("x",), [None]]


@st.composite
def invalid_calls(draw):
    which = draw(st.sampled_from(["key", "shape", "dtype", "out_sharding"]))
    # A deterministic initializer takes any key, as jax's `zeros` does (nnx passes an RngStream;
    # tests/test_flax_modules.py): only the random ones check it.
    cases = [c for c in CASES if c.random] if which == "key" else CASES
    case: Case = draw(st.sampled_from(cases))
    args = {"key": jax.random.key(0), "shape": case.shapes[0], "dtype": None, "out_sharding": None}
    bad = {"key": BAD_KEYS, "shape": BAD_SHAPES, "dtype": BAD_DTYPES, "out_sharding": BAD_SHARDINGS}
    args[which] = draw(st.sampled_from(bad[which]))
    return case, which, args


@settings(max_examples=150)
@given(invalid_calls())
def test_invalid_call_arguments_name_the_argument(call):
    case, which, args = call
    init = case.make()
    with pytest.raises((ValueError, TypeError)) as info:
        init(args["key"], args["shape"], args["dtype"], args["out_sharding"])
    assert f"`{which}`" in str(info.value), str(info.value)


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


def test_zero_size_shapes_still_get_the_shape_checks(key):
    with pytest.raises(ValueError, match=r"`compute_fans\(in_axis=-2\)` is out of range|rank >= 2"):
        jinit.he_normal()(key, (0,))
    with pytest.raises(ValueError, match=r"`delta_orthogonal` needs a kernel of rank 3, 4 or 5"):
        jinit.delta_orthogonal()(key, (0, 4))


def test_describe_zero_size_and_huge_shapes(key):
    d = jinit.describe(jinit.he_normal(), (0, 16))
    assert d.shape == (0, 16) and d.fan_in is None and d.std == 0.0
    with pytest.raises(ValueError, match=r"`normal`: `shape` \(1180591620717411303424,\) has more"):
        jinit.normal()(key, (2**70,))
    with pytest.raises(ValueError, match=r"`compute_fans`: `shape` .* has more than 2\*\*63 - 1"):
        jinit.compute_fans((2**62, 4))
    with pytest.raises(ValueError, match=r"`t_fixup\(n_layers=\.\.\.\)` must be below"):
        jinit.t_fixup(10**400)


@pytest.mark.parametrize("bad", [{}, "x", 3, ("x",)], ids=repr)
def test_out_sharding_is_checked(bad, key):
    for init, where in ((jinit.normal(), "normal"), (jinit.zeros, "zeros")):
        with pytest.raises(
            TypeError,
            match=rf"`{where}`: `out_sharding` must be a NamedSharding, a PartitionSpec or None; "
            rf"got ",
        ):
            init(key, (4, 6), None, bad)


# --- dtypes and values the dtype cannot hold -----------------------------------------------------


def test_float64_without_x64_is_refused(key):
    with pytest.raises(ValueError, match=r"`normal`: `dtype` float64 needs 64-bit mode"):
        jinit.normal()(key, (4, 6), jnp.float64)
    with pytest.raises(ValueError, match=r"`zeros`: `dtype` complex128 needs 64-bit mode"):
        jinit.zeros(key, (4, 6), np.complex128)
    assert jinit.normal()(key, (4,), float).dtype == jnp.float32  # Python float: jax's default


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


def test_explicit_none_dtype_means_the_factory_default(key):
    init = jinit.normal(1.0, dtype=jnp.bfloat16)
    assert init(key, (4,), None).dtype == jnp.bfloat16
    assert jinit.mup.readout(2.0, zero=True, dtype=jnp.float16)(key, (4, 4), None).dtype == (
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
    ids=lambda x: x.short_name if isinstance(x, jinit.Init) else str(x),
)
def test_values_that_overflow_the_dtype_are_refused(init, dtype, key):
    with pytest.raises(ValueError, match=r"overflow .*largest finite value"):
        init(key, (64, 64), dtype)


def test_values_that_fit_are_not_refused(key):
    assert bool(jnp.isfinite(jinit.normal(1e3)(key, (64,), jnp.float16)).all())
    assert bool(jnp.isfinite(jinit.constant(448.0)(key, (4,), jnp.float8_e4m3fn)).all())


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [({"mean": 1e39}, "mean", r"1e\+39"), ({"std": 1e39}, "std", r"1e\+39")],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_torch_trunc_normal_refuses_values_beyond_its_compute_dtype(
    kwargs, name, value, dtype, key
):
    """Beyond float32's range (the dtype bfloat16 is drawn in too) the draw was all NaN."""
    init = jinit.torch.trunc_normal(**kwargs)
    with pytest.raises(
        ValueError,
        match=rf"`torch\.trunc_normal\({name}=\.\.\.\)` must be representable in float32, the "
        rf"dtype the values are computed in \(largest finite value 3\.403e\+38\); got {value}\.",
    ):
        init(key, (4, 6), dtype)


# --- trees and entry points ----------------------------------------------------------------------


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
