r"""Haar-distributed (semi-)orthogonal matrices at matrix-multiply speed: blocked Householder.

``jax.random.orthogonal`` takes the QR of a Gaussian matrix. On CPU that QR runs far below the
machine's matmul rate (``python -m bench orthogonal``). This module draws the
same distribution with matmuls only.

**Why it is Haar.** Householder QR of a Gaussian ``m x k`` matrix ``Z`` applies reflectors
``H_1, ..., H_k``; reflector ``j`` is built from column ``j`` of ``H_{j-1} ... H_1 Z``, rows ``j:``.
Because ``Z``'s columns are independent and rotation invariant, that vector is a standard Gaussian
of length ``m - j`` independent of the earlier ones (Stewart 1980). So drawing the ``k`` vectors
*independently* gives the reflectors of the QR of a Gaussian matrix, in law; the Q factor with a
positive-diagonal R (Mezzadri's sign fix) is ``H_1 ... H_k [I; 0] diag(s)``, ``s_j = -sign(x_jj)``
(the reflector maps its vector to ``-sign(x_jj) |x_j| e_1``), which is Haar (uniform on the Stiefel
manifold for ``m > k``).

**Why it is fast.** The reflectors need no factorization: all are known up front. The product is
accumulated backwards in blocks of ``b`` reflectors, each block in compact WY form
``I - V T V^T`` with ``T^{-1} = striu(V^T V) + diag(V^T V) / 2`` (Joffrain et al. 2006, the UT
transform), and block ``j`` touches only the trailing ``(m - jb) x (k - jb)`` corner, as LAPACK's
``orgqr`` does: ``4/3 k^3`` flops for a square matrix, two thirds of one matmul, all of it in
matmuls of inner size ``b``.

**Accuracy.** ``I - V T V^T`` is orthogonal only if ``T`` matches ``V``'s Gram matrix; a float32
Gram summed over 4096 rows in one pass is off by about ``sqrt(4096)`` ulps, which shows as a
``2e-6`` loss of orthogonality. Summing the Gram over 64-row chunks, then pairwise, keeps
``max |Q^T Q - I|`` near ``1e-6`` at 4096 (jax's LAPACK QR: ``7e-7``).

**Portable mode** (:func:`exact_householder_haar`): the same reflectors and blocks, with every
sum an exact matmul (:mod:`jinit._rng.exact`) and ``T`` built column by column (LAPACK's
``larft`` recurrence) instead of by a triangular solve, whose kernel is the machine's own. What
is left is exact (maxima, signs, selections, powers of two) or one IEEE operation each
(``+ - * / sqrt``, rounded correctly on every CPU), so the result is the same on every CPU, and
``tests/portable_reference.py`` recomputes it bit for bit in NumPy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jinit._rng import distributions as _distributions
from jinit._rng import exact as _exact
from jinit._typing import Array, KeyArray

BLOCK = 128  # reflectors per block: large enough for matmul rate, small enough for T's cost
_CHUNK = 64  # rows per partial Gram sum


def _gram(v: Array) -> Array:
    """``v^T v`` summed over ``_CHUNK``-row chunks, then pairwise (a few ulps, not sqrt(rows))."""
    rows, cols = v.shape
    pad = -rows % _CHUNK
    g = jnp.einsum("cri,crj->cij", *2 * [jnp.pad(v, ((0, pad), (0, 0))).reshape(-1, _CHUNK, cols)])
    while g.shape[0] > 1:
        if g.shape[0] % 2:
            g = jnp.concatenate([g, jnp.zeros_like(g[:1])])
        g = g[0::2] + g[1::2]
    return g[0]


def _replicated(x: Array) -> Array:
    """``x`` kept whole on every device of the current mesh (no-op without one).

    Partitioning the matmuls would change their summation order, so a sharded draw would
    differ from an unsharded one in the last bits; like jax's QR, each device computes the
    whole matrix (the random bits are still generated shard by shard, then gathered).
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return x
    return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec())


def householder_haar(key: KeyArray, m: int, k: int, dtype: np.dtype) -> Array:
    """An ``m x k`` (``m >= k``) matrix with orthonormal columns, Haar distributed, in ``dtype``."""
    x = _replicated(_distributions.normal(key, (m, k), dtype))
    rows = lax.broadcasted_iota(np.int32, (m, k), 0)
    cols = lax.broadcasted_iota(np.int32, (m, k), 1)
    norm = jnp.sqrt(jnp.sum(jnp.where(rows >= cols, x * x, 0), axis=0))
    d = jnp.diagonal(x)
    sign = jnp.where(d >= 0, 1, -1).astype(dtype)
    # v_j = x_j + sign(x_jj) |x_j| e_j (no cancellation), scaled to unit norm; a zero vector
    # (probability 0, or an exact 0.0 draw of length 1) becomes e_j, a plain sign flip.
    head = jnp.where(norm == 0, 1, d + sign * norm)
    v = jnp.where(rows > cols, x, 0) + jnp.where(rows == cols, head[None, :], 0)
    v = v / jnp.sqrt(jnp.sum(v * v, axis=0))[None, :]
    q = jnp.eye(m, k, dtype=dtype)
    for a in reversed(range(0, k, BLOCK)):
        e = min(a + BLOCK, k)
        vb = v[a:, a:e]
        g = _gram(vb)
        s = jnp.triu(g, 1) + jnp.diag(jnp.diagonal(g) / 2)
        t = lax.linalg.triangular_solve(
            s, jnp.eye(e - a, dtype=dtype), left_side=True, lower=False
        )  # T = S^{-1}: b x b, cheap
        corner = q[a:, a:]
        q = _replicated(q.at[a:, a:].set(corner - vb @ (t @ (vb.T @ corner))))
    return _replicated(q * (-sign)[None, :])


def _colsum(x: Array) -> Array:
    """Column sums of ``x`` as one exact matmul (the same bits on every machine)."""
    return _exact.matmul(jnp.ones((1, x.shape[0]), x.dtype), x)[0]


def _t_factor(g: Array) -> Array:
    """``T`` with ``I - V T V^T`` orthogonal, from the Gram ``G = V^T V``: LAPACK's ``larft``
    recurrence ``T[:j, j] = -tau_j T[:j, :j] G[:j, j]``, ``tau_j = 2 / G[j, j]`` (the inverse of
    ``striu(G) + diag(G) / 2`` column by column), every product exact."""
    b = g.shape[0]
    idx = jnp.arange(b)
    tau = 2.0 / jnp.diagonal(g)

    def column(j: Array, t: Array) -> Array:
        above = jnp.where(idx < j, g[:, j], 0)
        col = jnp.where(idx < j, -tau[j] * _exact.matmul(t, above[:, None])[:, 0], 0)
        return t.at[:, j].set(jnp.where(idx == j, tau[j], col))

    return lax.fori_loop(0, b, column, jnp.zeros((b, b), g.dtype))


def exact_householder_haar(key: KeyArray, m: int, k: int) -> Array:
    """:func:`householder_haar` in float32 with machine-independent arithmetic (portable mode)."""
    f32 = np.dtype(np.float32)
    x = _replicated(_distributions.normal(key, (m, k), f32))
    rows = lax.broadcasted_iota(np.int32, (m, k), 0)
    cols = lax.broadcasted_iota(np.int32, (m, k), 1)
    norm = jnp.sqrt(_colsum(jnp.where(rows >= cols, x * x, 0)))
    d = jnp.diagonal(x)
    sign = jnp.where(d >= 0, 1, -1).astype(f32)
    head = jnp.where(norm == 0, 1, d + sign * norm)
    v = jnp.where(rows > cols, x, 0) + jnp.where(rows == cols, head[None, :], 0)
    # v is left unnormalised (T's tau_j = 2 / |v_j|^2 absorbs the scale): XLA rewrites a
    # division by a sqrt into a multiplication by rsqrt, whose CPU kernel is the ISA's own.
    q = jnp.eye(m, k, dtype=f32)
    for a in reversed(range(0, k, BLOCK)):
        e = min(a + BLOCK, k)
        vb = v[a:, a:e]
        t = _t_factor(_exact.matmul(vb.T, vb))
        corner = q[a:, a:]
        w = _exact.matmul(t, _exact.matmul(vb.T, corner))
        q = _replicated(q.at[a:, a:].set(corner - _exact.matmul(vb, w)))
    return _replicated(q * (-sign)[None, :])
