"""Hadamard matrices and ZerO initialization (deterministic, only zeros and +-c)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _checks
from jinit._core import make_init, place
from jinit._rng import distributions as _distributions
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding
from jinit._value import factory


def _sylvester_signs(n_rows: int, n_cols: int) -> Array:
    """The top-left (n_rows, n_cols) block of a Sylvester Hadamard matrix: (-1)^popcount(i & j)."""
    i = jax.lax.broadcasted_iota(jnp.uint32, (n_rows, n_cols), 0)
    j = jax.lax.broadcasted_iota(jnp.uint32, (n_rows, n_cols), 1)
    odd = jax.lax.population_count(i & j) & jnp.uint32(1)
    return 1 - 2 * odd.astype(jnp.int32)


def _ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


@factory()
def hadamard(scale: Any = 1.0, dtype: DTypeLike | None = None) -> Initializer:
    r"""Builds an initializer of (truncated) normalised Sylvester-Hadamard matrices.

    The weight is viewed as a matrix with ``shape[-1]`` columns and the product of the other axes
    as rows (like :func:`jinit.orthogonal`). With :math:`n = 2^{\lceil\log_2 \max(r, c)\rceil}`,

    .. math::
       W_{ij} = \frac{\text{scale}}{\sqrt n}\,(-1)^{\operatorname{popcount}(i \,\&\, j)},
       \quad i < r,\ j < c,

    the top-left block of :math:`H_n/\sqrt n`, with :math:`H_1 = [1]`,
    :math:`H_{2k} = \begin{bmatrix} H_k & H_k\\ H_k & -H_k\end{bmatrix}`. When the larger of
    ``r`` and ``c`` is a power of two the result is semi-orthogonal with every singular value
    equal to ``scale`` (a deterministic stand-in for :func:`jinit.orthogonal`, with no QR and no
    key); otherwise the truncated rows or columns are only approximately orthogonal.

    Args:
      scale: the multiplier; a number or a traced scalar (under ``jax.vmap``/``jit``), which
        gives the concrete scale's bits (``scale / sqrt(n)`` is one division in the compute
        dtype either way).
      dtype: the initializer's default dtype.

    Returns:
      An initializer for shapes of rank >= 2; the key is ignored.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.hadamard()(jax.random.key(0), (4, 4))
      >>> (w * 2).tolist()
      [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]

    References:
      Sylvester 1867; Hadamard 1893.
    """
    where = "hadamard"
    scale = _checks.check_real_or_traced(where, "scale", scale)
    traced = _checks.traced(scale)
    _checks.check_factory_dtype(where, dtype)

    def body(
        key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
    ) -> Array:
        if len(shape) < 2:
            raise ValueError(f"`{where}` needs a shape of rank >= 2; got {shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        if rows == 0 or cols == 0:
            return jnp.zeros(shape, dtype, out_sharding=out_sharding)
        ct = _distributions.compute_dtype(dtype)
        n = 2 ** _ceil_log2(max(rows, cols))
        c = jnp.asarray(_checks.quotient(scale, math.sqrt(n), ct), ct)
        w = _sylvester_signs(rows, cols).astype(ct) * c
        return place(w.reshape(shape).astype(dtype), out_sharding)

    magnitude = lambda shape: abs(scale)
    return make_init(where, body, dtype, magnitude=magnitude, uses_key=False, traced=traced)


@factory()
def zero_init(dtype: DTypeLike | None = None) -> Initializer:
    r"""Builds the ZerO initializer (Zhao et al. 2021): only zeros, ones and scaled Hadamard signs.

    Algorithm 1 of the paper, for a layer :math:`x \mapsto Wx` with
    :math:`W \in \mathbb{R}^{P\times Q}` (``P = out``, ``Q = in``):

    * :math:`P = Q`: :math:`W = I`;
    * :math:`P < Q` (the dimension shrinks): :math:`W = I^*`, the partial identity that keeps the
      first :math:`P` inputs;
    * :math:`P > Q` (the dimension grows): :math:`W = c\,I^* H_m I^*` with
      :math:`m = \lceil\log_2 P\rceil`, :math:`c = 2^{-(m-1)/2}` and :math:`H_m` the
      :math:`2^m\times 2^m` Sylvester Hadamard matrix, i.e. :math:`W = c\,H_m[{:}P, {:}Q]`. A
      partial identity here would leave the extra outputs at zero and confine training to a
      low-rank subspace (the paper's "training degeneracy", Theorem 1); the Hadamard block breaks
      that symmetry.

    On the Flax kernel ``(in, out)`` this is ``eye(in, out)`` when ``out <= in`` and
    :math:`c\,H_m[{:}\text{in}, {:}\text{out}]` (``m = ceil(log2(out))``) when ``out > in``
    (:math:`H_m` is symmetric). For a convolution kernel ``(*spatial, in, out)`` the matrix sits at
    the spatial centre ``k // 2`` and every other tap is zero, as for :func:`jinit.dirac`. The
    paper also zero-initialises the last layer of each residual branch: use :func:`jinit.zeros`.

    Note: the paper's :math:`c = 2^{-(m-1)/2}` makes :math:`c H_m` have singular values
    :math:`\sqrt 2` (a ReLU gain); the authors' MNIST notebook divides by :math:`2^{m/2}` instead
    (singular values 1). This follows the paper; compose with :func:`jinit.scaled` for the other.

    Args:
      dtype: the initializer's default dtype.

    Returns:
      An initializer for shapes of rank >= 2; the key is ignored.

    Examples:
      >>> import jax, jinit
      >>> jinit.zero_init()(jax.random.key(0), (3, 2)).tolist()  # shrinking: partial identity
      [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
      >>> w = jinit.zero_init()(jax.random.key(0), (2, 4))  # growing: m = 2, c = 2 ** -0.5
      >>> jax.numpy.sign(w).tolist(), round(float(abs(w).max()) ** 2, 4)
      ([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]], 0.5)

    References:
      Zhao et al. 2021, 'ZerO initialization: initializing neural networks with only zeros and
      ones', arXiv:2110.12661, Algorithm 1.
    """
    where = "zero_init"
    _checks.check_factory_dtype(where, dtype)

    def body(
        key: KeyArray, shape: tuple[int, ...], dtype: np.dtype, out_sharding: OutSharding
    ) -> Array:
        if len(shape) < 2:
            raise ValueError(f"`{where}` needs a kernel of rank >= 2 (..., in, out); got {shape}.")
        if not math.prod(shape):  # an empty kernel: nothing to place
            return place(jnp.zeros(shape, dtype), out_sharding)
        n_in, n_out = shape[-2:]
        ct = _distributions.compute_dtype(dtype)
        if n_out <= n_in:
            mat = jnp.eye(n_in, n_out, dtype=ct)
        else:
            m = _ceil_log2(n_out)
            c = 2.0 ** (-(m - 1) / 2)
            mat = _sylvester_signs(n_in, n_out).astype(ct) * jnp.array(c, ct)
        if len(shape) == 2:
            w = mat.astype(dtype)
        else:
            centre = tuple(k // 2 for k in shape[:-2])
            w = jnp.zeros(shape, dtype).at[centre].set(mat.astype(dtype))
        return place(w, out_sharding)

    return make_init(where, body, dtype, uses_key=False)
