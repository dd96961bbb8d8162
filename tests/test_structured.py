"""Structured initializers: exact constructions, torch parity (dirac_, eye_, sparse_), ZerO."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from scipy.linalg import hadamard as scipy_hadamard

import jinit


def to_flax(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (*range(2, w.ndim), 1, 0))


@pytest.mark.parametrize(
    ("torch_shape", "groups"),
    [
        ((16, 8, 3), 1),
        ((8, 16, 5), 1),
        ((16, 4, 3, 3), 2),
        ((12, 8, 3, 4), 3),
        ((8, 8, 3, 3, 3), 1),
        ((16, 4, 2, 3, 5), 4),
    ],
)
def test_dirac_equals_torch_exactly(torch_shape, groups, key):
    torch = pytest.importorskip("torch")
    expected = to_flax(torch.nn.init.dirac_(torch.empty(torch_shape), groups).numpy())
    for dtype in (jnp.float32, jnp.bfloat16):
        got = jinit.dirac(groups)(key, expected.shape, dtype)
        np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), expected)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_identity_equals_torch_eye(shape, key):
    torch = pytest.importorskip("torch")
    expected = torch.nn.init.eye_(torch.empty(shape[::-1])).numpy().T  # torch (out, in)
    np.testing.assert_array_equal(np.asarray(jinit.identity()(key, shape)), expected)


def test_identity_batched_like_haiku(key):
    w = np.asarray(jinit.identity(0.5)(key, (2, 3, 4, 4)))
    np.testing.assert_array_equal(w, np.broadcast_to(0.5 * np.eye(4), (2, 3, 4, 4)))


def test_sparse_zero_counts_match_torch(key):
    torch = pytest.importorskip("torch")
    out_features, in_features, sparsity = 50, 40, 0.3
    t = torch.nn.init.sparse_(torch.empty(out_features, in_features), sparsity, std=0.5).numpy()
    torch_zeros_per_column = (t == 0).sum(axis=0)  # per input unit
    w = np.asarray(jinit.sparse(sparsity, std=0.5)(key, (in_features, out_features)))
    ours_zeros_per_row = (w == 0).sum(axis=-1)  # per input unit, Flax layout
    np.testing.assert_array_equal(ours_zeros_per_row, torch_zeros_per_column)
    assert (ours_zeros_per_row == math.ceil(sparsity * out_features)).all()


def test_sparse_values_and_purity(key):
    init = jinit.sparse(0.9, std=0.01)
    w = np.asarray(init(key, (256, 400)))
    assert ((w == 0).sum(-1) == 360).all()
    assert abs(w[w != 0].std() / 0.01 - 1) < 0.05
    np.testing.assert_array_equal(w, np.asarray(init(key, (256, 400))))
    assert not np.array_equal(w, np.asarray(init(jax.random.key(1), (256, 400))))
    assert not np.array_equal(w[0] == 0, w[1] == 0)  # rows get different patterns


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_hadamard_is_orthogonal_for_powers_of_two(n, key):
    w = np.asarray(jinit.hadamard(3.0)(key, (n, n)), np.float64)
    np.testing.assert_allclose(w @ w.T, 9.0 * np.eye(n), atol=1e-5)
    np.testing.assert_allclose(w, 3.0 / math.sqrt(n) * scipy_hadamard(n), rtol=1e-6)


def test_hadamard_semi_orthogonal(key):
    w = np.asarray(jinit.hadamard()(key, (16, 64)), np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(16), atol=1e-6)
    w = np.asarray(jinit.hadamard()(key, (2, 32, 16)), np.float64).reshape(64, 16)
    np.testing.assert_allclose(w.T @ w, np.eye(16), atol=1e-6)


@pytest.mark.parametrize("n", [1, 7, 64])
def test_zero_init_square_is_exact_identity(n, key):
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        w = jinit.zero_init()(key, (n, n), dtype)
        np.testing.assert_array_equal(np.asarray(w.astype(jnp.float32)), np.eye(n))


def test_zero_init_shrinking_is_partial_identity(key):
    w = np.asarray(jinit.zero_init()(key, (10, 4)))  # in=10 -> out=4: keep the first 4 inputs
    np.testing.assert_array_equal(w, np.eye(10, 4))


@pytest.mark.parametrize(("n_in", "n_out"), [(3, 4), (4, 16), (5, 12), (100, 300)])
def test_zero_init_growing_is_scaled_hadamard(n_in, n_out, key):
    """P = out > Q = in: W = c I* H_m I*, m = ceil(log2 P), c = 2^(-(m-1)/2)  (Algorithm 1)."""
    w = np.asarray(jinit.zero_init()(key, (n_in, n_out)), np.float64)
    m = math.ceil(math.log2(n_out))
    c = 2 ** (-(m - 1) / 2)
    np.testing.assert_allclose(abs(w), c, rtol=1e-6)  # only +-c: "zeros and ones" up to c
    paper = c * np.eye(n_out, 2**m) @ scipy_hadamard(2**m) @ np.eye(2**m, n_in)  # (P, Q)
    np.testing.assert_allclose(w, paper.T, rtol=1e-6)
    # Rows of a Hadamard block are orthogonal when out is a power of two: W W^T = c^2 2^m I.
    if n_out == 2**m:
        np.testing.assert_allclose(w @ w.T, c**2 * 2**m * np.eye(n_in), atol=1e-5)


def test_zero_init_conv_uses_centre_tap(key):
    w = np.asarray(jinit.zero_init()(key, (3, 3, 8, 8)))
    np.testing.assert_array_equal(w[1, 1], np.eye(8))
    assert w.sum() == 8


@pytest.mark.parametrize(
    "make",
    [
        lambda: jinit.identity(),
        lambda: jinit.dirac(2),
        lambda: jinit.sparse(0.5),
        jinit.zero_init,
        lambda: jinit.hadamard(),
    ],
)
def test_sharded_matches_unsharded(make, key):
    shape = (3, 8, 16) if make().name == "dirac" else (16, 32)
    mesh = jax.make_mesh((2, 4), ("a", "b"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
    sharding = NamedSharding(mesh, P(*([None] * (len(shape) - 2)), "a", "b"))
    init = make()
    expected = np.asarray(init(key, shape))
    with jax.set_mesh(mesh):
        got = init(key, shape, None, sharding)
    assert got.sharding.is_equivalent_to(sharding, len(shape))
    np.testing.assert_array_equal(np.asarray(got), expected)


def test_errors(key):
    with pytest.raises(ValueError, match=r"`dirac\(groups=...\)` must be a positive int; got 0"):
        jinit.dirac(0)
    with pytest.raises(ValueError, match=r"must be divisible by groups"):
        jinit.dirac(3)(key, (3, 4, 8))
    with pytest.raises(ValueError, match=r"`dirac` needs a convolution kernel of rank >= 3"):
        jinit.dirac()(key, (4, 8))
    with pytest.raises(ValueError, match=r"`sparse\(sparsity=...\)` must be in \[0, 1\]; got 1.5"):
        jinit.sparse(1.5)
    with pytest.raises(ValueError, match=r"`sparse` needs a 2-D kernel"):
        jinit.sparse(0.1)(key, (3, 4, 5))
    with pytest.raises(ValueError, match=r"`identity` needs a shape of rank >= 2"):
        jinit.identity()(key, (4,))
    with pytest.raises(ValueError, match=r"`zero_init` needs a kernel of rank >= 2"):
        jinit.zero_init()(key, (4,))


def test_dirac_beyond_int32_axes_traces(key):
    """An axis of 2**32 + 2 outputs: shape-only tracing works (no int32 index overflows)."""
    out = jax.eval_shape(lambda k: jinit.dirac()(k, (1, 1, 2, 2**32 + 2), jnp.bfloat16), key)
    assert (out.shape, out.dtype) == ((1, 1, 2, 2**32 + 2), jnp.bfloat16)
    out = jax.eval_shape(lambda k: jinit.dirac(2)(k, (1, 2**31 + 5, 2**31 + 6), jnp.float32), key)
    assert out.shape == (1, 2**31 + 5, 2**31 + 6)
