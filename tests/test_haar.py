"""`orthogonal(method="householder")`: orthogonal to float32 precision and Haar distributed.

Haar is tested three ways: against the exact law of a projection (``w^T Q u`` of a Haar ``Q`` is
the first coordinate of a uniform point on the sphere), against jax's QR-based sampler (two-sample
KS of the eigenvalue angles), and by the Diaconis-Shahshahani trace moments.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jinit

P_MIN = 1e-3  # fixed keys: a pass or a fail is reproducible


def draws(init, key, shape, n) -> np.ndarray:
    keys = jax.random.split(key, n)
    return np.asarray(jax.vmap(lambda k: init(k, shape))(keys), np.float64)


@pytest.mark.parametrize("shape", [(1024, 1024), (1000, 300), (300, 1000), (64, 8, 48)])
def test_orthonormal_to_float32_precision(shape, key):
    w = np.asarray(jinit.orthogonal(method="householder")(key, shape), np.float64)
    m = w.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    assert np.abs(gram - np.eye(len(gram))).max() <= 2e-6


def sphere_coordinate(dim: int) -> stats.rv_continuous:
    """Law of one coordinate of a uniform point on the unit sphere in R^dim."""
    a = (dim - 1) / 2
    return stats.beta(a, a, loc=-1, scale=2)


@pytest.mark.parametrize("shape", [(24, 24), (40, 12), (12, 40)])
def test_projections_follow_the_sphere_law(shape, key):
    """``w^T Q u`` for fixed unit ``u``, ``w``: Q u is uniform on the sphere (Haar, Stiefel)."""
    qs = draws(jinit.orthogonal(method="householder"), key, shape, 3000)
    n_rows, n_cols = shape
    rng = np.random.default_rng(0)
    u, w = rng.normal(size=n_cols), rng.normal(size=n_rows)
    u, w = u / np.linalg.norm(u), w / np.linalg.norm(w)
    if n_rows >= n_cols:  # orthonormal columns: Q u uniform on the sphere of R^rows
        dim, x, corner = n_rows, qs @ u @ w, qs[:, 0, 0]
    else:  # orthonormal rows: w^T Q uniform on the sphere of R^cols
        dim, x, corner = n_cols, w @ qs @ u, qs[:, 0, 0]
    law = sphere_coordinate(dim)
    assert stats.kstest(x, law.cdf).pvalue > P_MIN
    # Q_00 too: without Mezzadri's sign fix the diagonal is biased towards positive values.
    assert stats.kstest(corner, law.cdf).pvalue > P_MIN
    assert abs(corner.mean()) < 4 * law.std() / math.sqrt(corner.size)


def test_entries_have_variance_one_over_n(key):
    """Each fixed entry, across draws, has mean 0 and variance 1/n (the sphere law's)."""
    n, count = 32, 2000
    qs = draws(jinit.orthogonal(method="householder"), key, (n, n), count)
    for i, j in ((0, 0), (0, n - 1), (n - 1, 0), (n // 2, n // 3), (n - 1, n - 1)):
        x = qs[:, i, j]
        se_var = math.sqrt((sphere_coordinate(n).moment(4) - 1 / n**2) / count)
        assert abs(x.var() - 1 / n) < 4 * se_var, (i, j, x.var() * n)
        assert abs(x.mean()) < 4 / math.sqrt(n * count), (i, j, x.mean())


def eigen_angles(qs: np.ndarray) -> np.ndarray:
    """|angle| of the eigenvalues, in float64 (the atoms at 0 and pi must compare equal)."""
    return np.abs(np.angle(np.linalg.eigvals(np.asarray(qs, np.float64)))).ravel()


def test_eigenvalue_angles_match_jax_qr_sampler(key):
    """Two-sample KS of |angle| of the eigenvalues, against ``jax.random.orthogonal`` (QR)."""
    n, count = 12, 1500
    ours = eigen_angles(draws(jinit.orthogonal(method="householder"), key, (n, n), count))
    keys = jax.random.split(jax.random.fold_in(key, 1), count)
    ref = eigen_angles(np.asarray(jax.vmap(lambda k: jax.random.orthogonal(k, n))(keys)))
    assert stats.ks_2samp(ours, ref).pvalue > P_MIN
    # And close to uniform on [0, pi] (exactly uniform only as n grows).
    assert abs(ours.mean() / (math.pi / 2) - 1) < 0.02


def test_trace_moments_diaconis_shahshahani(key):
    """For Haar O(n), n >= 2j: E tr(Q^j) = [j even], Var tr(Q^j) = j (exact)."""
    n, count = 16, 4000
    qs = draws(jinit.orthogonal(method="householder"), key, (n, n), count)
    power = np.eye(n)[None]
    for j in (1, 2, 3):
        power = power @ qs
        tr = np.trace(power, axis1=1, axis2=2)
        mean = 1.0 if j % 2 == 0 else 0.0
        assert abs(tr.mean() - mean) < 4 * math.sqrt(j / count), (j, tr.mean())
        assert abs(tr.var() / j - 1) < 4 * math.sqrt(2 / count) + 0.02, (j, tr.var())


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_computed_in_float32(dtype, key):
    init = jinit.orthogonal(1.0, method="householder")
    w = init(key, (256, 256), dtype)
    assert w.dtype == dtype
    f32 = init(key, (256, 256), jnp.float32)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(f32.astype(dtype)))  # rounded once


def test_delta_orthogonal_householder(key):
    w = np.array(jinit.delta_orthogonal(2.0, method="householder")(key, (3, 3, 64, 128)))
    centre = w[1, 1] / 2
    np.testing.assert_allclose(centre @ centre.T, np.eye(64), atol=2e-6)
    w[1, 1] = 0
    assert not w.any()


def test_method_is_validated_and_qr_keeps_jax_bits(key):
    with pytest.raises(ValueError, match=r"`orthogonal\(method=...\)` must be one of 'qr', "):
        jinit.orthogonal(method="cholesky")
    with pytest.raises(ValueError, match=r"`delta_orthogonal\(method=...\)` must be one of"):
        jinit.delta_orthogonal(method="svd")
    ours = jinit.orthogonal(method="qr")(key, (32, 32))
    np.testing.assert_array_equal(ours, jax.nn.initializers.orthogonal()(key, (32, 32)))


@pytest.mark.parametrize(
    "init",
    [
        jinit.orthogonal(2.0, method="householder"),
        jinit.orthogonal(1.0, column_axis=0, method="householder"),
    ],
    ids=["orthogonal", "column_axis_0"],
)
def test_tree_batches_equal_shapes_bit_exactly(init, key):
    """The sampling protocol: equal shapes are one vmapped draw; each leaf keeps its own bits."""
    shape = (3, 3, 16, 32)
    s = init.sampling(shape, jnp.float32)
    assert s is not None and s.draw.vmap
    tree = {f"w{i}": jax.ShapeDtypeStruct(shape, jnp.float32) for i in range(3)}
    tree |= {"low": jax.ShapeDtypeStruct(shape, jnp.bfloat16)}
    out = jinit.init_tree(key, tree, [(".*", init)])
    for path, x in out.items():
        alone = init(jinit.key_for_path(key, path), x.shape, x.dtype)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(alone), err_msg=path)


@pytest.mark.parametrize("mesh_shape", [(2, 4), (8, 1)])
def test_out_sharding_equals_unsharded(mesh_shape, key):
    init = jinit.orthogonal(method="householder")
    mesh = jax.make_mesh(mesh_shape, ("a", "b"))
    sharding = jax.NamedSharding(mesh, jax.P("a", "b"))
    with jax.set_mesh(mesh):
        got = init(key, (64, 128), None, sharding)
    assert got.sharding.is_equivalent_to(sharding, 2)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(init(key, (64, 128))))


def test_benchmark_reports_ratios_and_orthogonality():
    from bench import orthogonal as bench_orthogonal

    (row,) = bench_orthogonal.run([64], repeats=1)
    cases = {"matmul", "jinit qr", "jinit householder", "jinit portable", "jax"}
    assert set(row["ratio_to_matmul"]) == cases
    assert row["ratio_to_matmul"]["matmul"] == 1.0
    for method in ("jinit qr", "jinit householder", "jinit portable"):
        assert row["max_abs_QtQ_minus_I"][method] < 1e-5


def test_sharded_tree_under_a_mesh_context_is_bit_exact(key):
    """Under ``jax.set_mesh`` the draw is kept whole on each device, so sharding changes no bit."""
    init = jinit.orthogonal(2.0, method="householder")
    tree = {f"w{i}": jax.ShapeDtypeStruct((16, 32), jnp.float32) for i in range(3)}
    mesh = jax.make_mesh((2, 4), ("a", "b"))
    shardings = {p: jax.NamedSharding(mesh, jax.P(None, "b")) for p in tree}
    with jax.set_mesh(mesh):
        out = jinit.init_tree(key, tree, [(".*", init)], shardings=shardings)
    for path, x in out.items():
        assert x.sharding.is_equivalent_to(shardings[path], 2)
        alone = init(jinit.key_for_path(key, path), x.shape, x.dtype)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(alone), err_msg=path)
