"""Bad input gets a clear, early error: every message is pinned here."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit

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
