"""Fans from explicit axes (equal to jax's arithmetic) and from einsum specs."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.nn.initializers import _compute_fans as jax_compute_fans

import jinit

GRID = [
    ((5, 7), {}),
    ((3, 3, 16, 32), {}),
    ((2, 3, 3, 8, 16), {}),
    ((8, 4, 16), dict(in_axis=0, out_axis=(1, 2))),
    ((4, 8, 16), dict(batch_axis=0, in_axis=1, out_axis=2)),
    ((2, 3, 4, 5), dict(in_axis=(0, 1), out_axis=(2, 3))),
    ((6, 10), dict(in_axis=-2, out_axis=0)),
    ((7,), dict(in_axis=0, out_axis=0)),
    ((3, 5, 7), dict(in_axis=-1, out_axis=-3)),
]


@pytest.mark.parametrize(("shape", "kwargs"), GRID)
def test_compute_fans_equals_jax(shape, kwargs):
    assert jinit.compute_fans(shape, **kwargs) == jax_compute_fans(shape, **kwargs)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("btd,dnh->btnh", ((0,), (1, 2), ())),
        ("btnh,nhd->btd", ((0, 1), (2,), ())),
        ("bhd,hdo->bho", ((1,), (2,), (0,))),
        ("bi,io->bo", ((0,), (1,), ())),
        ("b t d , d f -> b t f", ((0,), (1,), ())),
        ("nhd,btd->btnh", ((2,), (0, 1), ())),  # kernel first, with kernel_operand=0 below
    ],
)
def test_einsum_axes(spec, expected):
    operand = 0 if spec.startswith("nhd") else -1
    assert tuple(jinit.einsum_axes(spec, operand)) == expected


def test_einsum_variance_scaling_uses_spec_axes(key):
    shape = (512, 8, 64)
    by_spec = jinit.lecun_normal(einsum="btd,dnh->btnh")(key, shape)
    by_axes = jinit.lecun_normal(in_axis=0, out_axis=(1, 2))(key, shape)
    assert (by_spec == by_axes).all()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: jinit.compute_fans((5,)),
            ValueError,
            r"default `in_axis=-2` needs a weight of "
            r"rank >= 2; got shape \(5,\)",
        ),
        (
            lambda: jinit.compute_fans((4, 5), in_axis=2),
            ValueError,
            r"`compute_fans\(in_axis=2\)` is out of range for a 2-dimensional shape",
        ),
        (
            lambda: jinit.compute_fans((4, 5), out_axis=(1, 1)),
            ValueError,
            r"`compute_fans\(out_axis=\(1, 1\)\)` names the same axis twice",
        ),
        (
            lambda: jinit.compute_fans((4, 5), in_axis="0"),
            TypeError,
            r"`compute_fans\(in_axis=\.\.\.\)` must be an int or a sequence of ints; got '0'",
        ),
        (lambda: jinit.compute_fans((4, 0)), ValueError, r"zero-sized fan or batch axis"),
        (
            lambda: jinit.compute_fans((4, -1)),
            TypeError,
            r"`shape` must be a sequence of "
            r"non-negative ints; got \(4, -1\)",
        ),
        (lambda: jinit.einsum_axes("btd,dnh"), ValueError, r"expected an explicit spec"),
        (lambda: jinit.einsum_axes("btd->bt"), ValueError, r"at least two operands"),
        (lambda: jinit.einsum_axes("btd,dd->bt"), ValueError, r"distinct letters; got 'dd'"),
        (lambda: jinit.einsum_axes("btd,dnh->btx"), ValueError, r"output labels \['x'\]"),
        (lambda: jinit.einsum_axes("btd,dnh->bt"), ValueError, r"label 'n' is summed away"),
        (lambda: jinit.einsum_axes("btd,bt->d"), ValueError, r"one output \(fan-out\) label"),
        (
            lambda: jinit.einsum_axes("bd,dh->bh", 2),
            ValueError,
            r"`kernel_operand=2` is out "
            r"of range for 2 operands",
        ),
    ],
)
def test_fan_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_compute_fans_and_initializers_accept_numpy_axes(key):
    assert jinit.compute_fans((4, 6), in_axis=np.int64(1), out_axis=np.int64(0)) == (6.0, 4.0)
    assert jinit.compute_fans((4, 6), in_axis=jnp.array(1), out_axis=[np.int32(0)]) == (6.0, 4.0)
    for make in (jinit.lecun_normal, jinit.he_uniform, jinit.torch.kaiming_normal):
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
