"""Every numeric hyperparameter of every public initializer factory, traced.

A hyperparameter that only scales or shifts values (a gain, scale, factor, mean, std, bound)
accepts a traced value under ``jax.jit`` and ``jax.vmap``, and every slice of a sweep is bit for
bit the concrete call with that number, for any float32 number and any fan (the shapes' fans are
not powers of two). One exception, ``truncated_normal``'s bounds, is close rather than exact
(``CLOSE`` below says why). One that changes what is built (a count, an axis) refuses a tracer
with an error that names it and says why. ``ROWS`` classifies
each numeric argument of each factory that ``registry.public_callables()`` lists, so a new
factory or a new argument fails ``test_every_numeric_hyperparameter_is_classified`` until it
has its place here.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import registry

import jinit

# float32 values, so each concrete call gets exactly the number its slice traced.
SIGNED = (0.3, 1.7, -2.1)
POSITIVE = (0.3, 1.7, 2.1)
LOWER, UPPER = (-1.3, -2.0, -0.7), (1.1, 2.0, 0.6)

# Arguments that are not numbers: strings, flags, initializers, dtypes, einsum specs.
NOT_NUMERIC = {
    "dtype",
    "mode",
    "distribution",
    "nonlinearity",
    "einsum",
    "method",
    "part",
    "init",
    "zero",
    "unroll",
}

# The fan axes of the variance-scaling family, each a structural int (an axis of the shape).
FAN_AXES = {"in_axis": 0, "out_axis": 0, "batch_axis": 0}


@dataclasses.dataclass(frozen=True)
class Row:
    """One factory: its other arguments, a legal shape, and its numeric hyperparameters.

    ``scales``: swept values of each hyperparameter that accepts a tracer (bit for bit);
    ``close``: the same for ``truncated_normal``'s bounds (within ``BOUND_ATOL``);
    ``structural``: a legal concrete value of each one that refuses a tracer, or
    ``(value, extra arguments)``.
    """

    base: dict[str, Any] = dataclasses.field(default_factory=dict)
    shape: tuple[int, ...] = (7, 6)  # fans 7, 6, 6.5: no power of two
    scales: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    close: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    structural: dict[str, Any] = dataclasses.field(default_factory=dict)


_SCHEMES = (
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "xavier_normal",
    "xavier_uniform",
)

ROWS: dict[str, Row] = {
    "constant": Row(base={"value": 1.0}, scales={"value": SIGNED}),
    "normal": Row(scales={"stddev": POSITIVE}),
    "uniform": Row(scales={"scale": SIGNED}),
    "truncated_normal": Row(
        base={"stddev": 1.0}, scales={"stddev": POSITIVE}, close={"lower": LOWER, "upper": UPPER}
    ),
    "variance_scaling": Row(
        base={"scale": 1.0, "mode": "fan_in", "distribution": "normal"},
        scales={"scale": POSITIVE},
        structural={**FAN_AXES, "kernel_operand": (1, {"einsum": "ij,jk->ik"})},
    ),
    **{name: Row(structural=FAN_AXES) for name in _SCHEMES},
    "orthogonal": Row(scales={"scale": SIGNED}, structural={"column_axis": 0}),
    "delta_orthogonal": Row(
        shape=(3, 4, 6), scales={"scale": SIGNED}, structural={"column_axis": -1}
    ),
    "identity": Row(scales={"gain": SIGNED}),
    "hadamard": Row(shape=(4, 8), scales={"scale": SIGNED}),  # sqrt(8) is not a float32
    "dirac": Row(shape=(3, 4, 6), structural={"groups": 2}),
    "sparse": Row(base={"sparsity": 0.25}, scales={"std": POSITIVE}, structural={"sparsity": 0.5}),
    "zero_init": Row(),
    "rezero": Row(),
    "skipinit": Row(scales={"value": SIGNED}),
    "scaled": Row(base={"init": jinit.normal(1.0), "factor": 1.0}, scales={"factor": SIGNED}),
    "portable": Row(base={"init": jinit.normal(1.0)}),
    "stacked": Row(base={"init": jinit.normal(1.0), "unroll": "layers"}, structural={"axes": 1}),
    "scaled_residual": Row(  # sqrt(2 * 12) is not a float32
        base={"n_layers": 12}, scales={"stddev": POSITIVE}, structural={"n_layers": 2}
    ),
    "fixup": Row(
        base={"n_branches": 4, "layers_per_branch": 2},
        structural={"n_branches": 2, "layers_per_branch": 3},
    ),
    "t_fixup": Row(base={"n_layers": 4}, structural={"n_layers": 2}),
    "t_fixup_embedding": Row(base={"decoder_layers": 4}, structural={"decoder_layers": 2}),
    "deepnorm": Row(
        base={"n_layers": 4}, structural={"n_layers": 2, "decoder_layers": 2, **FAN_AXES}
    ),
    "torch.kaiming_normal": Row(scales={"a": (0.0, 0.3, -2.1)}, structural=FAN_AXES),
    "torch.kaiming_uniform": Row(scales={"a": (0.0, 0.3, -2.1)}, structural=FAN_AXES),
    "torch.xavier_normal": Row(scales={"gain": POSITIVE}, structural=FAN_AXES),
    "torch.xavier_uniform": Row(scales={"gain": POSITIVE}, structural=FAN_AXES),
    "torch.trunc_normal": Row(
        scales={"mean": (0.3, 0.7, -0.4), "std": POSITIVE, "a": LOWER, "b": UPPER}
    ),
    "torch.linear_default": Row(structural=FAN_AXES),
    "torch.bias_default": Row(base={"fan_in": 4}, shape=(6,), structural={"fan_in": 8}),
    "torch.embedding_default": Row(),
    "keras.variance_scaling": Row(
        scales={"scale": POSITIVE},
        structural={"input_axes": (0, {"output_axes": 1}), "output_axes": (1, {"input_axes": 0})},
    ),
    "keras.random_normal": Row(scales={"mean": SIGNED, "stddev": POSITIVE}),
    "keras.random_uniform": Row(
        scales={"minval": (-0.3, -1.7, -2.1), "maxval": POSITIVE},
    ),
    "keras.truncated_normal": Row(scales={"mean": SIGNED, "stddev": POSITIVE}),
    "keras.identity": Row(scales={"gain": SIGNED}),
    "keras.orthogonal": Row(scales={"gain": SIGNED}),
    "keras.dense_default": Row(),
    "keras.conv_default": Row(),
    "keras.embedding_default": Row(),
    "haiku.variance_scaling": Row(scales={"scale": POSITIVE}, structural={"fan_in_axes": 0}),
    "haiku.orthogonal": Row(scales={"scale": SIGNED}, structural={"axis": 0}),
    "haiku.linear_default": Row(),
    "haiku.conv_default": Row(),
    "haiku.embed_default": Row(),
    "mup.hidden": Row(scales={"scale": POSITIVE}, structural=FAN_AXES),
    "mup.readout": Row(
        base={"width_mult": 3.0},
        scales={"width_mult": (0.3, 1.7, 3.0), "scale": POSITIVE},
        structural=FAN_AXES,
    ),
}


def _factories() -> list[str]:
    """The public names that build an initializer from hyperparameters (not `jinit.zeros`, an
    initializer itself, nor helpers such as `compute_fans`)."""
    out = []
    for name in registry.public_callables():
        obj = registry.lookup(name)
        if isinstance(obj, jinit.Init) or inspect.isclass(obj):
            continue
        returns = str(inspect.signature(obj).return_annotation)
        if "Initializer" in returns or "Stacked" in returns or returns.endswith("Init"):
            out.append(name)
    return out


def _numeric_parameters(name: str) -> list[str]:
    params = inspect.signature(registry.lookup(name)).parameters
    return [p for p in params if p not in NOT_NUMERIC]


def _bits(x: jax.Array) -> np.ndarray:
    return np.asarray(x.astype(jnp.float32)).view(np.uint32)


def _make(name: str, base: dict[str, Any], **kwargs: Any) -> Any:
    return registry.lookup(name)(**{**base, **kwargs})


def test_every_numeric_hyperparameter_is_classified():
    factories = _factories()
    assert sorted(ROWS) == sorted(factories), set(ROWS) ^ set(factories)
    for name in factories:
        row = ROWS[name]
        # (every scale-like hyperparameter accepts a tracer: none is left unclassified)
        kinds = (row.scales, row.close, row.structural)
        assert sorted(p for kind in kinds for p in kind) == sorted(_numeric_parameters(name)), name


SCALES = [(name, p) for name, row in ROWS.items() for p in row.scales]


@pytest.mark.parametrize("name, param", SCALES, ids=[f"{n}({p})" for n, p in SCALES])
def test_a_traced_scale_gives_the_concrete_bits(name, param, key):
    row = ROWS[name]
    values = jnp.array(row.scales[param], jnp.float32)
    concrete = [float(v) for v in values]

    def call(v: Any, dtype: Any = jnp.float32) -> jax.Array:
        return _make(name, row.base, **{param: v})(key, row.shape, dtype)

    jitted = jax.jit(call)(values[1])
    np.testing.assert_array_equal(_bits(jitted), _bits(call(concrete[1])))
    for dtype in (jnp.float32, jnp.bfloat16):
        eager = jax.vmap(lambda v, dtype=dtype: call(v, dtype))
        for sweep in (eager, jax.jit(eager)):
            got = sweep(values)
            assert (got.shape, got.dtype) == ((len(concrete), *row.shape), dtype)
            for i, v in enumerate(concrete):
                want = call(v, dtype)
                np.testing.assert_array_equal(_bits(got[i]), _bits(want), err_msg=f"{v}, {dtype}")


# `truncated_normal`'s bounds are the one exception to bit-identity. jinit keeps jax's bits for
# a number (tests/test_jax_parity.py pins `truncated_normal(lower=-1.0, upper=3.0)`): jax's
# sampler computes `erf(bound / sqrt(2))`, which XLA folds on the host (the float32 of the exact
# erf) for a number and computes on the device (a polynomial, a few ulps off) for a traced bound.
# Both cannot hold; jax's bits win. Measured on CPU: at most 1.05e-5 * stddev apart, sweeping each
# bound over 57 points of [0.2, 3] in size (tolerance: twice that). `torch.trunc_normal`, with no
# jax twin, computes its bounds' erf at run time for numbers too, and is exact.
BOUND_ATOL = 2e-5  # times stddev, for bounds within 3 standard deviations

CLOSE = [(name, p) for name, row in ROWS.items() for p in row.close]


@pytest.mark.parametrize("name, param", CLOSE, ids=[f"{n}({p})" for n, p in CLOSE])
def test_a_traced_bound_gives_the_concrete_values_within_bound_atol(name, param, key):
    row = ROWS[name]
    values = jnp.array(row.close[param], jnp.float32)
    atol = BOUND_ATOL * row.base["stddev"]
    call = lambda v: _make(name, row.base, **{param: v})(key, (64, 64))
    for got in (jax.vmap(call)(values), jax.jit(jax.vmap(call))(values)):
        for i, v in enumerate(values.tolist()):
            np.testing.assert_allclose(got[i], np.asarray(call(v)), rtol=0, atol=atol)
    want = np.asarray(call(values[0].item()))
    np.testing.assert_allclose(jax.jit(call)(values[0]), want, rtol=0, atol=atol)


STRUCTURAL = [(name, p) for name, row in ROWS.items() for p in row.structural]


@pytest.mark.parametrize("name, param", STRUCTURAL, ids=[f"{n}({p})" for n, p in STRUCTURAL])
def test_a_traced_structural_hyperparameter_is_refused_by_name(name, param, key):
    row = ROWS[name]
    value = row.structural[param]
    value, extra = value if isinstance(value, tuple) else (value, {})
    _make(name, row.base, **extra, **{param: value})  # the concrete value is legal
    # The argument by name; the call may be the one the factory delegates to (`glorot_normal`
    # checks its axes as `variance_scaling`).
    said = rf"\({param}=\.\.\.\)` must be a concrete \w+, not a traced value: it "
    for trace in (jax.jit, jax.vmap):
        with pytest.raises((TypeError, ValueError), match=said):
            trace(lambda v: _make(name, row.base, **extra, **{param: v}))(jnp.array([value] * 2))


def test_scaled_sweeps_keys_and_factors_together(key):
    """``scaled`` with a traced factor under ``vmap`` over keys and factors at once."""
    keys = jax.random.split(key, 3)
    factors = jnp.array(SIGNED, jnp.float32)
    got = jax.vmap(lambda k, f: jinit.scaled(jinit.normal(1.7), f)(k, (4, 6)))(keys, factors)
    for i in range(3):
        want = jinit.scaled(jinit.normal(1.7), float(factors[i]))(keys[i], (4, 6))
        np.testing.assert_array_equal(_bits(got[i]), _bits(want))


def test_scaled_overflow_names_the_factor(key):
    with pytest.raises(ValueError, match=r"`scaled\(factor=1e\+39\)`: values up to about"):
        jinit.scaled(jinit.normal(1.0), 1e39)(key, (4, 6))
