"""The one table of public initializers that the invariant tests sweep.

A new initializer is one `Case` row: how to build it, legal shapes, and what its values must
satisfy (a reference distribution for the Kolmogorov-Smirnov test, a variance target, or a
property check). `tests/test_invariants.py` turns every row into shape, dtype, determinism,
jit == eager, sharded == unsharded, no-recompile and statistics tests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from scipy import stats

import jinit

TN2_STD = 0.87962566103423978  # std of N(0, 1) truncated to (-2, 2)

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], jinit.Initializer]
    shapes: tuple[Shape, ...] = ((16, 32), (3, 3, 8, 16))
    # A large shape for the statistics tests (float32).
    stat_shape: Shape = (256, 512)
    dtypes: tuple = (jnp.float32, jnp.bfloat16, jnp.float16)
    random: bool = True
    # The distribution every entry follows, for a KS test: shape -> frozen scipy distribution.
    dist: Callable[[Shape], stats.rv_continuous] | None = None
    # A property of the float32 output that must hold: (array, shape) -> None (asserts).
    check: Callable[[np.ndarray, Shape], None] | None = None

    def __str__(self) -> str:
        return self.name


def _fan_in(shape: Shape) -> float:
    return jinit.compute_fans(shape)[0]


def _fan_avg(shape: Shape) -> float:
    fi, fo = jinit.compute_fans(shape)
    return (fi + fo) / 2


def _tn(scale: Callable[[Shape], float]) -> Callable[[Shape], stats.rv_continuous]:
    """Truncated normal at +-2 of the *pre-truncation* std, rescaled to variance `scale/n`."""
    return lambda s: stats.truncnorm(-2, 2, scale=math.sqrt(scale(s)) / TN2_STD)


def _n(std: Callable[[Shape], float]) -> Callable[[Shape], stats.rv_continuous]:
    return lambda s: stats.norm(scale=std(s))


def _u(bound: Callable[[Shape], float]) -> Callable[[Shape], stats.rv_continuous]:
    return lambda s: stats.uniform(-bound(s), 2 * bound(s))


def _constant(value: float) -> Callable[[np.ndarray, Shape], None]:
    def check(x: np.ndarray, shape: Shape) -> None:
        np.testing.assert_array_equal(x, np.full(shape, value, np.float32))

    return check


def _orthonormal(scale: float, column_axis: int = -1) -> Callable[[np.ndarray, Shape], None]:
    def check(x: np.ndarray, shape: Shape) -> None:
        m = np.moveaxis(x, column_axis, -1).reshape(-1, shape[column_axis]) / scale
        small = min(m.shape)
        gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        np.testing.assert_allclose(gram, np.eye(small), atol=2e-5)

    return check


def _delta_orthogonal(x: np.ndarray, shape: Shape) -> None:
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    mask = np.ones(shape, bool)
    mask[centre] = False
    assert not x[mask].any(), "delta_orthogonal: off-centre taps must be zero"
    _orthonormal(1.0)(x[centre], shape[-2:])


CASES: tuple[Case, ...] = (
    Case("zeros", lambda: jinit.zeros, random=False, check=_constant(0.0)),
    Case("ones", lambda: jinit.ones, random=False, check=_constant(1.0)),
    Case("constant", lambda: jinit.constant(-7.0), random=False, check=_constant(-7.0)),
    Case("uniform", lambda: jinit.uniform(3.0), dist=lambda s: stats.uniform(0, 3.0)),
    Case("normal", lambda: jinit.normal(0.5), dist=lambda s: stats.norm(scale=0.5)),
    Case(
        "truncated_normal",
        lambda: jinit.truncated_normal(0.5, lower=-1.0, upper=3.0),
        dist=lambda s: stats.truncnorm(-1.0, 3.0, scale=0.5),
    ),
    Case(
        "variance_scaling_fan_geo_avg_normal",
        lambda: jinit.variance_scaling(3.0, "fan_geo_avg", "normal"),
        dist=_n(lambda s: math.sqrt(3.0 / math.sqrt(math.prod(jinit.compute_fans(s))))),
    ),
    Case(
        "variance_scaling_fan_out_uniform",
        lambda: jinit.variance_scaling(0.5, "fan_out", "uniform"),
        dist=_u(lambda s: math.sqrt(3 * 0.5 / jinit.compute_fans(s)[1])),
    ),
    Case(
        "variance_scaling_einsum",
        lambda: jinit.variance_scaling(1.0, "fan_in", "normal", einsum="btd,dnh->btnh"),
        shapes=((16, 4, 8),),
        stat_shape=(512, 8, 64),
        dist=lambda s: stats.norm(scale=1 / math.sqrt(s[0])),
    ),
    Case("glorot_uniform", jinit.glorot_uniform, dist=_u(lambda s: math.sqrt(3 / _fan_avg(s)))),
    Case("glorot_normal", jinit.glorot_normal, dist=_tn(lambda s: 1 / _fan_avg(s))),
    Case("xavier_uniform", jinit.xavier_uniform, dist=_u(lambda s: math.sqrt(3 / _fan_avg(s)))),
    Case("xavier_normal", jinit.xavier_normal, dist=_tn(lambda s: 1 / _fan_avg(s))),
    Case("he_uniform", jinit.he_uniform, dist=_u(lambda s: math.sqrt(6 / _fan_in(s)))),
    Case("he_normal", jinit.he_normal, dist=_tn(lambda s: 2 / _fan_in(s))),
    Case("kaiming_uniform", jinit.kaiming_uniform, dist=_u(lambda s: math.sqrt(6 / _fan_in(s)))),
    Case("kaiming_normal", jinit.kaiming_normal, dist=_tn(lambda s: 2 / _fan_in(s))),
    Case("lecun_uniform", jinit.lecun_uniform, dist=_u(lambda s: math.sqrt(3 / _fan_in(s)))),
    Case("lecun_normal", jinit.lecun_normal, dist=_tn(lambda s: 1 / _fan_in(s))),
    Case(
        "orthogonal",
        lambda: jinit.orthogonal(2.0),
        shapes=((16, 32), (32, 16), (4, 4, 8)),
        stat_shape=(128, 64),
        check=_orthonormal(2.0),
    ),
    Case(
        "orthogonal_column_axis_0",
        lambda: jinit.orthogonal(1.0, column_axis=0),
        shapes=((16, 32), (8, 4, 4)),
        stat_shape=(64, 128),
        check=_orthonormal(1.0, 0),
    ),
    Case(
        "delta_orthogonal",
        jinit.delta_orthogonal,
        shapes=((3, 8, 16), (3, 3, 8, 8)),
        stat_shape=(3, 3, 32, 64),
        check=_delta_orthogonal,
    ),
    # --- rows for the torch/Keras-compatible, structured and research schemes start here ---
)

CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "duplicate registry names"
