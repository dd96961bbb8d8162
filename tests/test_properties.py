"""Property-based sweep of the public API (issue 14): random valid calls hold every invariant,
random invalid ones raise ``ValueError``/``TypeError`` naming the argument.

The draws come from the registry (``CASES``: every public initializer; ``HYPERS``: the factories
with drawable hyperparameters). Hypothesis runs under the ``jinit`` profile: derandomized (the
same examples on every run, so CI cannot flake), a bounded number of examples and no deadline
(the first call of a shape compiles). ``HYPOTHESIS_PROFILE=jinit-deep`` draws many more.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.sharding import AxisType
from registry import CASES, HYPERS, Case, Hyper

import jinit

settings.register_profile(
    "jinit",
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("jinit-deep", parent=settings.get_profile("jinit"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "jinit"))

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
# Scalar wrappers a user may hand a factory: each must act exactly like the Python number.
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


def bits(x: jax.Array) -> np.ndarray:
    return np.asarray(x).view(np.uint8)


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
    target = getattr(got_init, "jinit_target", None)
    if target is not None:
        assert target(shape) == hyper.factory(**values).jinit_target(shape)


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
