"""The one table of public initializers that the invariant tests sweep.

A new initializer is one `Case` row: how to build it, legal shapes, and what its values must
satisfy (a reference distribution for the Kolmogorov-Smirnov test, a variance target, or a
property check). `tests/test_invariants.py` turns every row into shape, dtype, determinism,
jit == eager, sharded == unsharded, no-recompile and statistics tests.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from scipy import stats

import jinit

TN2_STD = 0.87962566103423978  # std of N(0, 1) truncated to (-2, 2)

# The family namespaces, whose names count as public as `torch.kaiming_uniform`.
NAMESPACES = ("torch", "keras", "haiku", "mup")


def lookup(name: str) -> Any:
    """`jinit.<name>` for a top-level (`lecun_normal`) or namespaced (`torch.kaiming_uniform`)
    name."""
    obj: Any = jinit
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def catalog_modules() -> list[Any]:
    """The modules the catalog's names are written in: jinit's private modules (a component
    after ``jinit`` starts with ``_``: ``jinit._catalog.variance``, ``jinit.torch._initializers``),
    less muP's optimizers (``jinit.mup._optimizers``), which are on the docs' modules page."""
    return [
        m
        for name, m in sorted(sys.modules.items())
        if name.startswith("jinit.")
        and any(p.startswith("_") for p in name.split(".")[1:])
        and name != "jinit.mup._optimizers"
    ]


def public_callables() -> list[str]:
    """Every public callable of jinit by the name users write after `jinit.`: the top level's
    and each family namespace's (`"torch.kaiming_uniform"`, `"mup.adam"`)."""
    top = [n for n in dir(jinit) if not n.startswith("_") and callable(getattr(jinit, n))]
    spaced = [f"{ns}.{n}" for ns in NAMESPACES for n in lookup(ns).__all__]
    return sorted(top + [n for n in spaced if callable(lookup(n))])


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


def _eye_check(gain: float) -> Callable[[np.ndarray, Shape], None]:
    def check(x: np.ndarray, shape: Shape) -> None:
        want = np.broadcast_to(gain * np.eye(shape[-2], shape[-1], dtype=np.float32), shape)
        np.testing.assert_array_equal(x, want)

    return check


def _torch_dirac_flax(shape: Shape, groups: int) -> np.ndarray:
    """torch.nn.init.dirac_'s loop, written out on the torch layout and permuted to Flax's."""
    *spatial, n_in, n_out = shape
    w = np.zeros((n_out, n_in, *spatial), np.float32)
    per_group = n_out // groups
    for g in range(groups):
        for d in range(min(per_group, n_in)):
            w[(g * per_group + d, d, *(k // 2 for k in spatial))] = 1
    return np.transpose(w, (*range(2, len(shape)), 1, 0))


def _dirac_check(groups: int) -> Callable[[np.ndarray, Shape], None]:
    def check(x: np.ndarray, shape: Shape) -> None:
        np.testing.assert_array_equal(x, _torch_dirac_flax(shape, groups))

    return check


def _sparse_check(sparsity: float, std: float) -> Callable[[np.ndarray, Shape], None]:
    def check(x: np.ndarray, shape: Shape) -> None:
        zeros_per_row = (x == 0).sum(axis=-1)
        np.testing.assert_array_equal(zeros_per_row, math.ceil(sparsity * shape[-1]))
        nonzero = x[x != 0]
        if nonzero.size >= 10_000:
            assert abs(nonzero.std() / std - 1) < 0.05, nonzero.std()

    return check


def _zero_init_reference(shape: Shape) -> np.ndarray:
    """ZerO's Algorithm 1 on W (P = out, Q = in), with scipy's Hadamard, transposed to (in, out)."""
    from scipy.linalg import hadamard

    n_in, n_out = shape[-2:]
    if n_out <= n_in:
        w = np.eye(n_out, n_in)  # I* (P x Q)
    else:
        m = math.ceil(math.log2(n_out))
        c = 2 ** (-(m - 1) / 2)
        w = c * np.eye(n_out, 2**m) @ hadamard(2**m) @ np.eye(2**m, n_in)
    mat = w.T.astype(np.float32)
    if len(shape) == 2:
        return mat
    out = np.zeros(shape, np.float32)
    out[tuple(k // 2 for k in shape[:-2])] = mat
    return out


def _zero_init_check(x: np.ndarray, shape: Shape) -> None:
    np.testing.assert_allclose(x, _zero_init_reference(shape), rtol=1e-6, atol=0)


def _hadamard_check(scale: float) -> Callable[[np.ndarray, Shape], None]:
    def check(x: np.ndarray, shape: Shape) -> None:
        from scipy.linalg import hadamard

        rows, cols = math.prod(shape[:-1]), shape[-1]
        n = 2 ** math.ceil(math.log2(max(rows, cols)))
        want = scale / math.sqrt(n) * hadamard(n)[:rows, :cols]
        np.testing.assert_allclose(x.reshape(rows, cols), want, rtol=1e-6, atol=0)

    return check


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
    Case(
        "torch.kaiming_uniform",
        jinit.torch.kaiming_uniform,
        dist=_u(lambda s: math.sqrt(2.0) * math.sqrt(3 / _fan_in(s))),
    ),
    Case(
        "torch.kaiming_uniform_fan_out_tanh",
        lambda: jinit.torch.kaiming_uniform(mode="fan_out", nonlinearity="tanh"),
        dist=_u(lambda s: 5 / 3 * math.sqrt(3 / jinit.compute_fans(s)[1])),
    ),
    Case(
        "torch.kaiming_normal",
        lambda: jinit.torch.kaiming_normal(a=0.2),
        dist=_n(lambda s: math.sqrt(2 / 1.04) / math.sqrt(_fan_in(s))),
    ),
    Case(
        "torch.xavier_uniform",
        lambda: jinit.torch.xavier_uniform(gain=2.0),
        dist=_u(lambda s: 2.0 * math.sqrt(3 / _fan_avg(s))),
    ),
    Case(
        "torch.xavier_normal",
        jinit.torch.xavier_normal,
        dist=_n(lambda s: math.sqrt(1 / _fan_avg(s))),
    ),
    Case(
        "torch.trunc_normal",
        lambda: jinit.torch.trunc_normal(mean=0.5, std=2.0, a=-1.0, b=3.0),
        dist=lambda s: stats.truncnorm((-1.0 - 0.5) / 2.0, (3.0 - 0.5) / 2.0, loc=0.5, scale=2.0),
    ),
    Case(
        "torch.linear_default",
        jinit.torch.linear_default,
        dist=_u(lambda s: 1 / math.sqrt(_fan_in(s))),
    ),
    Case(
        "torch.bias_default",
        lambda: jinit.torch.bias_default(fan_in=64),
        shapes=((16, 32), (32,)),
        stat_shape=(131072,),
        dist=lambda s: stats.uniform(-1 / 8, 2 / 8),
    ),
    Case(
        "torch.embedding_default",
        jinit.torch.embedding_default,
        dist=lambda s: stats.norm(scale=1.0),
    ),
    Case(
        "identity",
        lambda: jinit.identity(2.0),
        shapes=((16, 32), (32, 16), (4, 16, 16)),
        stat_shape=(256, 128),
        random=False,
        check=_eye_check(2.0),
    ),
    Case(
        "dirac",
        jinit.dirac,
        shapes=((3, 8, 16), (3, 3, 16, 8), (3, 2, 3, 8, 8)),
        stat_shape=(5, 5, 32, 64),
        random=False,
        check=_dirac_check(1),
    ),
    Case(
        "dirac_groups_4",
        lambda: jinit.dirac(groups=4),
        shapes=((3, 8, 16), (3, 3, 4, 32), (3, 3, 3, 2, 16)),
        stat_shape=(3, 3, 32, 64),
        random=False,
        check=_dirac_check(4),
    ),
    Case(
        "sparse",
        lambda: jinit.sparse(0.3, std=0.5),
        shapes=((16, 32), (32, 16)),
        stat_shape=(256, 512),
        check=_sparse_check(0.3, 0.5),
    ),
    Case(
        "zero_init",
        jinit.zero_init,
        shapes=((16, 16), (32, 16), (16, 32), (8, 24), (3, 3, 8, 16)),
        stat_shape=(256, 1000),
        random=False,
        check=_zero_init_check,
    ),
    Case(
        "hadamard",
        lambda: jinit.hadamard(2.0),
        shapes=((16, 32), (32, 16), (4, 4, 16), (16, 24)),
        stat_shape=(512, 256),
        random=False,
        check=_hadamard_check(2.0),
    ),
    Case(
        "scaled_residual",
        lambda: jinit.scaled_residual(n_layers=8),
        dist=lambda s: stats.norm(scale=0.02 / 4),
    ),
    # Portable mode (issue 13): the same rows' distributions, from the integer samplers.
    Case(
        "portable_lecun_normal",
        lambda: jinit.portable(jinit.lecun_normal()),
        dist=_tn(lambda s: 1 / _fan_in(s)),
    ),
    Case(
        "portable_normal",
        lambda: jinit.portable(jinit.normal(0.5)),
        dist=lambda s: stats.norm(scale=0.5),
    ),
    Case(
        "portable_keras_random_normal",
        lambda: jinit.portable(jinit.keras.random_normal(mean=0.5, stddev=0.3)),
        dist=lambda s: stats.norm(loc=0.5, scale=0.3),
    ),
    Case(
        "portable_orthogonal",
        lambda: jinit.portable(jinit.orthogonal(2.0)),
        shapes=((16, 32), (32, 16), (4, 4, 8)),
        check=_orthonormal(2.0),
    ),
    Case(
        "scaled_normal",
        lambda: jinit.scaled(jinit.normal(1.0), -3.0),
        dist=lambda s: stats.norm(scale=3.0),
    ),
    Case(
        "deepnorm",
        lambda: jinit.deepnorm(6),
        dist=_n(lambda s: (8 * 6) ** -0.25 * math.sqrt(1 / _fan_avg(s))),
    ),
    Case(
        "deepnorm_encoder_decoder_encoder",
        lambda: jinit.deepnorm(6, decoder_layers=12, part="encoder"),
        dist=_n(lambda s: 0.87 * (6**4 * 12) ** (-1 / 16) * math.sqrt(1 / _fan_avg(s))),
    ),
    Case(
        "fixup",
        lambda: jinit.fixup(16, 2),
        dist=_tn(lambda s: 2 / _fan_in(s) / 16),
    ),
    Case(
        "t_fixup",
        lambda: jinit.t_fixup(6, "encoder"),
        dist=_u(lambda s: 0.67 * 6**-0.25 * math.sqrt(3 / _fan_avg(s))),
    ),
    Case(
        "t_fixup_embedding",
        lambda: jinit.t_fixup_embedding(6),
        dist=_n(lambda s: s[-1] ** -0.5 * 54**-0.25),
    ),
    Case(
        "mup.hidden",
        lambda: jinit.mup.hidden(2.0),
        dist=_n(lambda s: math.sqrt(2 / _fan_in(s))),
    ),
    Case(
        "mup.readout",
        lambda: jinit.mup.readout(4.0),
        dist=_n(lambda s: math.sqrt(1 / (4 * _fan_in(s)))),
    ),
    Case(
        "mup.readout_zero",
        lambda: jinit.mup.readout(4.0, zero=True),
        random=False,
        check=_constant(0.0),
    ),
    Case("rezero", jinit.rezero, shapes=((8, 16), (16,)), random=False, check=_constant(0.0)),
    Case(
        "skipinit",
        lambda: jinit.skipinit(0.125),
        shapes=((8, 16), (16,)),
        random=False,
        check=_constant(0.125),
    ),
    # --- Keras 3 and Haiku semantics (compared with the libraries in test_keras_haiku.py) ---
    Case(
        "keras.variance_scaling_normal_is_truncated",
        lambda: jinit.keras.variance_scaling(2.0, "fan_in", "normal"),
        dist=_tn(lambda s: 2 / _fan_in(s)),
    ),
    Case(
        "keras.variance_scaling_untruncated_fan_out",
        lambda: jinit.keras.variance_scaling(0.5, "fan_out", "untruncated_normal"),
        dist=_n(lambda s: math.sqrt(0.5 / jinit.compute_fans(s)[1])),
    ),
    Case(
        "keras.variance_scaling_uniform_axes",
        lambda: jinit.keras.variance_scaling(
            1.0, "fan_avg", "uniform", input_axes=0, output_axes=(1, 2)
        ),
        shapes=((16, 4, 8),),
        stat_shape=(512, 8, 64),
        dist=_u(lambda s: math.sqrt(3 / ((s[0] + s[1] * s[2]) / 2))),
    ),
    Case(
        "keras.random_uniform",
        lambda: jinit.keras.random_uniform(-0.5, 1.5),
        dist=lambda s: stats.uniform(-0.5, 2.0),
    ),
    Case(
        "keras.random_normal",
        lambda: jinit.keras.random_normal(1.0, 0.5),
        dist=lambda s: stats.norm(1.0, 0.5),
    ),
    Case(
        "keras.truncated_normal",
        lambda: jinit.keras.truncated_normal(-1.0, 2.0),
        dist=lambda s: stats.truncnorm(-2, 2, loc=-1.0, scale=2.0),
    ),
    Case(
        "keras.identity",
        lambda: jinit.keras.identity(3.0),
        shapes=((16, 32), (32, 16)),
        stat_shape=(256, 128),
        random=False,
        check=_eye_check(3.0),
    ),
    Case(
        "keras.orthogonal",
        lambda: jinit.keras.orthogonal(2.0),
        shapes=((16, 32), (32, 16), (4, 4, 8)),
        stat_shape=(128, 64),
        check=_orthonormal(2.0),
    ),
    Case(
        "keras.dense_default",
        jinit.keras.dense_default,
        dist=_u(lambda s: (3 / _fan_avg(s)) ** 0.5),
    ),
    Case(
        "keras.conv_default",
        jinit.keras.conv_default,
        shapes=((3, 3, 8, 16), (5, 8, 4)),
        stat_shape=(3, 3, 64, 128),
        dist=_u(lambda s: (3 / _fan_avg(s)) ** 0.5),
    ),
    Case(
        "keras.embedding_default",
        jinit.keras.embedding_default,
        dist=lambda s: stats.uniform(-0.05, 0.1),
    ),
    Case(
        "haiku.variance_scaling",
        lambda: jinit.haiku.variance_scaling(2.0, "fan_avg"),
        dist=_tn(lambda s: 2 / _fan_avg(s)),
    ),
    Case(
        "haiku.variance_scaling_normal_fan_in_axes",
        lambda: jinit.haiku.variance_scaling(1.0, "fan_in", "normal", fan_in_axes=(0,)),
        shapes=((16, 4, 8),),
        stat_shape=(512, 8, 64),
        dist=lambda s: stats.norm(scale=1 / math.sqrt(s[0])),
    ),
    Case(
        "haiku.variance_scaling_uniform_fan_out",
        lambda: jinit.haiku.variance_scaling(3.0, "fan_out", "uniform"),
        dist=_u(lambda s: math.sqrt(9 / jinit.compute_fans(s)[1])),
    ),
    Case(
        "haiku.linear_default",
        jinit.haiku.linear_default,
        dist=lambda s: stats.truncnorm(-2, 2, scale=1 / math.sqrt(math.prod(s[:-1]))),
    ),
    Case(
        "haiku.conv_default",
        jinit.haiku.conv_default,
        shapes=((3, 3, 8, 16), (5, 8, 4)),
        stat_shape=(3, 3, 64, 128),
        dist=lambda s: stats.truncnorm(-2, 2, scale=1 / math.sqrt(math.prod(s[:-1]))),
    ),
    Case(
        "haiku.embed_default",
        jinit.haiku.embed_default,
        dist=lambda s: stats.truncnorm(-2, 2),
    ),
    Case(
        "haiku.orthogonal",
        lambda: jinit.haiku.orthogonal(0.5, axis=0),
        shapes=((16, 32), (8, 4, 4)),
        stat_shape=(64, 128),
        check=_orthonormal(0.5, 0),
    ),
)

CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "duplicate registry names"


@dataclasses.dataclass(frozen=True)
class Hyper:
    """A factory whose hyperparameters the property tests draw (tests/test_invariants.py,
    tests/test_validation.py).

    ``params`` maps each hyperparameter to its ``(low, high)`` range of valid values; ``ints``
    are integer-valued, ``nonneg`` refuse negative values. Every shape in ``shapes`` is legal for
    every drawn value.
    """

    name: str
    factory: Callable[..., jinit.Initializer]
    params: dict[str, tuple[float, float]]
    shapes: tuple[Shape, ...] = ((8, 16), (3, 3, 4, 8))
    ints: tuple[str, ...] = ()
    nonneg: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name


HYPERS: tuple[Hyper, ...] = (
    Hyper("normal", jinit.normal, {"stddev": (0.0, 10.0)}, nonneg=("stddev",)),
    Hyper("uniform", jinit.uniform, {"scale": (-5.0, 5.0)}),
    Hyper(
        "truncated_normal",
        jinit.truncated_normal,
        {"stddev": (0.0, 5.0), "lower": (-3.0, -0.5), "upper": (0.5, 3.0)},
        nonneg=("stddev",),
    ),
    Hyper("constant", jinit.constant, {"value": (-100.0, 100.0)}),
    Hyper(
        "variance_scaling",
        lambda scale: jinit.variance_scaling(scale, "fan_avg", "truncated_normal"),
        {"scale": (0.0, 10.0)},
        nonneg=("scale",),
    ),
    Hyper("orthogonal", jinit.orthogonal, {"scale": (-3.0, 3.0)}, shapes=((8, 16), (16, 8))),
    Hyper("identity", jinit.identity, {"gain": (-3.0, 3.0)}),
    Hyper("hadamard", jinit.hadamard, {"scale": (-3.0, 3.0)}),
    Hyper(
        "sparse",
        jinit.sparse,
        {"sparsity": (0.0, 1.0), "std": (0.0, 2.0)},
        shapes=((8, 16), (16, 8)),
        nonneg=("sparsity", "std"),
    ),
    Hyper(
        "scaled_residual",
        jinit.scaled_residual,
        {"n_layers": (1, 64), "stddev": (0.0, 1.0)},
        ints=("n_layers",),
        nonneg=("n_layers", "stddev"),
    ),
    Hyper("torch.kaiming_normal", jinit.torch.kaiming_normal, {"a": (-1.0, 1.0)}),
    Hyper(
        "torch.xavier_uniform", jinit.torch.xavier_uniform, {"gain": (0.0, 3.0)}, nonneg=("gain",)
    ),
    Hyper(
        "torch.trunc_normal",
        jinit.torch.trunc_normal,
        {"mean": (-1.0, 1.0), "std": (0.01, 2.0), "a": (-5.0, -2.0), "b": (2.0, 5.0)},
        nonneg=("std",),
    ),
    Hyper(
        "mup.readout",
        jinit.mup.readout,
        {"width_mult": (0.5, 8.0), "scale": (0.0, 2.0)},
        nonneg=("width_mult", "scale"),
    ),
    Hyper(
        "scaled", lambda factor: jinit.scaled(jinit.normal(1.0), factor), {"factor": (-3.0, 3.0)}
    ),
    Hyper(
        "t_fixup", jinit.t_fixup, {"n_layers": (1, 48)}, ints=("n_layers",), nonneg=("n_layers",)
    ),
    Hyper(
        "deepnorm", jinit.deepnorm, {"n_layers": (1, 48)}, ints=("n_layers",), nonneg=("n_layers",)
    ),
    Hyper(
        "fixup",
        jinit.fixup,
        {"n_branches": (1, 32), "layers_per_branch": (2, 4)},
        ints=("n_branches", "layers_per_branch"),
        nonneg=("n_branches", "layers_per_branch"),
    ),
    Hyper(
        "dirac",
        jinit.dirac,
        {"groups": (1, 2)},
        shapes=((3, 3, 4, 8), (3, 2, 8)),
        ints=("groups",),
        nonneg=("groups",),
    ),
    Hyper(
        "torch.bias_default",
        jinit.torch.bias_default,
        {"fan_in": (0, 1000)},
        shapes=((16,), (8, 16)),
        ints=("fan_in",),
        nonneg=("fan_in",),
    ),
)
