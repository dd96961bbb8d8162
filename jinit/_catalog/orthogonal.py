"""Orthogonal and delta-orthogonal initializers, computed in float32 for low-precision outputs."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _checks
from jinit._core import formula_init, make_init, place
from jinit._rng import distributions as _distributions
from jinit._rng import haar as _haar
from jinit._rng import portable as _portable
from jinit._rng.distributions import F32
from jinit._rng.draws import Draw
from jinit._rng.formula import Formula
from jinit._typing import Array, DTypeLike, Initializer, KeyArray, OutSharding, Shape
from jinit._value import factory


def _check_column_axis(where: str, column_axis: Any) -> None:
    _checks.refuse_traced(where, "column_axis", column_axis, _checks.AXIS)
    if isinstance(column_axis, bool) or not isinstance(column_axis, (int, np.integer)):
        raise TypeError(f"`{where}(column_axis=...)` must be an int; got {column_axis!r}.")


METHODS = ("qr", "householder")


def _orthogonal_matrix(key: KeyArray, n: int, m: int, dtype: np.dtype, method: str = "qr") -> Array:
    """A Haar ``n x m`` matrix with orthonormal rows or columns (whichever are fewer).

    ``"qr"``: jax.random.orthogonal's algorithm (QR of a normal matrix with Mezzadri's sign fix),
    jax's bits. ``"householder"``: the same law from matmuls only (:mod:`jinit._rng.haar`).
    In portable mode, either method: the Householder law with exact matmuls, the same bits on
    every machine (:func:`jinit._rng.haar.exact_householder_haar`).
    """
    if _portable.active() and dtype == _distributions.F32:
        x = _haar.exact_householder_haar(key, max(n, m), min(n, m))
    elif method == "householder":
        x = _haar.householder_haar(key, max(n, m), min(n, m), dtype)
    else:
        z = _distributions.normal(key, (max(n, m), min(n, m)), dtype)
        q, r = jnp.linalg.qr(z)
        d = jnp.linalg.diagonal(r)
        x = q * jnp.expand_dims(jnp.sign(d), -2)
    return x.mT if n < m else x


def _as_weight(q: Array, shape: Shape, col: int) -> Array:
    """The ``(rows, shape[col])`` matrix laid out as ``shape`` with its columns on axis ``col``."""
    q = jnp.reshape(q, (*np.delete(shape, col).tolist(), shape[col]))
    return jnp.moveaxis(q, -1, col)


def _haar_weight(
    key: KeyArray,
    shape: tuple[int, ...],
    dtype: np.dtype,
    out_sharding: OutSharding,
    *,
    col: int,
    method: str,
) -> Array:
    """A Haar weight of ``shape`` (columns on axis ``col``) in the compute dtype of ``dtype``,
    computed whole and laid out as ``out_sharding``; zeros for an empty shape."""
    ct = _distributions.compute_dtype(dtype)
    if 0 in shape:
        return jnp.zeros(shape, ct, out_sharding=out_sharding)
    n_rows, n_cols = math.prod(shape) // shape[col], shape[col]
    q = _as_weight(_orthogonal_matrix(key, n_rows, n_cols, ct, method), shape, col)
    return place(q, out_sharding)


@partial(jax.jit, static_argnames=("col", "method", "portable", "shape"))
def _orthogonal_kernel(
    key: KeyArray, col: int, method: str = "qr", portable: bool = False, *, shape: tuple[int, ...]
) -> Array:
    """A float32 orthogonal weight of ``shape`` with its columns on axis ``col`` (scale 1);
    ``portable``: from the portable normal (:mod:`jinit._rng.portable`)."""
    n_rows, n_cols = math.prod(shape) // shape[col], shape[col]
    with _portable.mode(portable):
        q = _orthogonal_matrix(key, n_rows, n_cols, _distributions.F32, method)
    return _as_weight(q, shape, col)


@factory()
def orthogonal(
    scale: Any = 1.0,
    column_axis: int = -1,
    dtype: DTypeLike | None = None,
    *,
    method: str = "qr",
) -> Initializer:
    """Builds an initializer of (semi-)orthogonal matrices, uniform over the orthogonal group.

    The weight is viewed as a matrix with ``shape[column_axis]`` columns and the product of the
    other axes as rows; its rows or columns (whichever are fewer) are orthonormal, times
    ``scale``. Same float32 bits as ``jax.nn.initializers.orthogonal``. Unlike jax, bfloat16 and
    float16 work (the QR runs in float32, the result is rounded once) and ``out_sharding`` is
    honoured: QR is not partitionable, so each device computes the whole matrix and keeps its
    shard, a cost of one full matrix per device.

    ``method="householder"`` draws the same (Haar) distribution at matrix-multiply speed: a
    blocked product of Householder reflectors built from independent Gaussian vectors (Stewart
    1980), the law of the QR of a Gaussian matrix, accumulated as LAPACK's ``orgqr`` does but
    with matmuls only (:mod:`jinit._rng.haar`): a few matmuls' time where ``"qr"`` takes several
    times more (``python -m bench orthogonal``; figures in bench/RESULTS.md), with
    ``max |Q^T Q - I|`` about ``1e-6``. Different bits from jax's; choose it explicitly. Its
    matmuls are kept whole on every device of the current mesh (``jax.set_mesh``), so a sharded
    draw equals an unsharded one bit for bit; without a mesh context, XLA may partition them
    inside :func:`jinit.init_tree` and the last bits may differ.

    Args:
      scale: the multiplier (the gain); singular values all equal ``scale``. A number or
        a traced scalar (under ``jax.vmap``/``jit``, as in jax).
      column_axis: the axis holding the columns.
      dtype: the initializer's default dtype.
      method: ``"qr"`` (default, jax's bits) or ``"householder"`` (matmul speed, same law).

    Returns:
      An initializer for shapes of rank >= 2.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> w = jinit.orthogonal()(jax.random.key(0), (64, 64))
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(64), atol=1e-5))
      True
      >>> w = jinit.orthogonal(method="householder")(jax.random.key(0), (512, 256))
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(256), atol=1e-5))
      True

    References:
      Saxe et al. 2014, arXiv:1312.6120; Mezzadri 2007, arXiv:math-ph/0609050; Stewart 1980,
      'The efficient generation of random orthogonal matrices', SIAM J. Numer. Anal. 17(3).
    """
    where = "orthogonal"
    scale = _checks.check_real_or_traced(where, "scale", scale)
    _check_column_axis(where, column_axis)
    _checks.check_factory_dtype(where, dtype)
    _checks.check_one_of(where, "method", method, METHODS)
    traced = _checks.traced(scale)

    def column(shape: Shape) -> int:
        if len(shape) < 2:
            raise ValueError(f"`{where}` needs a shape of rank >= 2; got {shape}.")
        (col,) = _checks.normalize_axes(where, "column_axis", column_axis, len(shape))
        return col

    def formula(shape: tuple[int, ...], dtype: np.dtype) -> Formula:
        """``scale`` times a Haar weight; equal shapes share one batched QR (none if empty)."""
        col = column(shape)
        draw = Draw("orthogonal", _orthogonal_kernel, (col, method), F32, vmap=True)
        sample = partial(_haar_weight, col=col, method=method)
        return Formula(None if 0 in shape else draw, scale, sample=sample)

    def target(shape: tuple[int, ...]) -> tuple[None, None, float, float]:
        # min(n, m) orthonormal vectors of unit norm spread over n * m entries.
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        return None, None, 0.0, abs(scale) * (min(n_rows, n_cols) / (n_rows * n_cols)) ** 0.5

    return formula_init(where, formula, dtype, target=target, traced=traced)


@factory()
def delta_orthogonal(
    scale: Any = 1.0,
    column_axis: int = -1,
    dtype: DTypeLike | None = None,
    *,
    method: str = "qr",
) -> Initializer:
    """Builds a delta-orthogonal initializer for 1-D, 2-D and 3-D convolution kernels.

    The kernel (spatial axes first, then in and out channels) is zero except at the spatial
    centre ``(k - 1) // 2``, which holds an orthogonal ``(in, out)`` matrix times ``scale``: the
    convolution then starts as a norm-preserving map, which lets very deep CNNs train without
    normalisation. Same float32 bits as ``jax.nn.initializers.delta_orthogonal``; bfloat16,
    float16 and ``out_sharding`` work as in :func:`orthogonal`, and so does
    ``method="householder"`` (the central matrix at matmul speed, same law, other bits).

    Args:
      scale: the multiplier (the gain) of the central orthogonal matrix; a number or
        a traced scalar (under ``jax.vmap``/``jit``, as in jax).
      column_axis: the column axis of the central ``(in, out)`` matrix.
      dtype: the initializer's default dtype.
      method: ``"qr"`` (default, jax's bits) or ``"householder"``, as in :func:`orthogonal`.

    Returns:
      An initializer for shapes of rank 3, 4 or 5 with ``in <= out`` channels.

    Examples:
      >>> import jax, jinit
      >>> w = jinit.delta_orthogonal()(jax.random.key(0), (3, 3, 16, 16))
      >>> float(abs(w[0, 0]).max()), w[1, 1].shape
      (0.0, (16, 16))

    References:
      Xiao et al. 2018, 'Dynamical isometry and a mean field theory of CNNs', arXiv:1806.05393.
    """
    where = "delta_orthogonal"
    scale = _checks.check_real_or_traced(where, "scale", scale)
    _check_column_axis(where, column_axis)
    _checks.check_factory_dtype(where, dtype)
    _checks.check_one_of(where, "method", method, METHODS)
    ortho = orthogonal(scale=scale, column_axis=column_axis, dtype=dtype, method=method)

    def body(key: KeyArray, shape: Shape, dtype: np.dtype, out_sharding: OutSharding) -> Array:
        if len(shape) not in (3, 4, 5):
            raise ValueError(
                f"`{where}` needs a kernel of rank 3, 4 or 5 (spatial axes, in, out); "
                f"got shape {shape}."
            )
        if shape[-1] < shape[-2]:
            raise ValueError(
                f"`{where}` needs in-channels <= out-channels (shape[-2] <= "
                f"shape[-1]); got shape {shape}."
            )
        _checks.normalize_axes(where, "column_axis", column_axis, 2)
        if not math.prod(shape):  # an empty kernel: nothing to place
            return place(jnp.zeros(shape, dtype), out_sharding)
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        w = jnp.zeros(shape, dtype).at[centre].set(ortho(key, shape[-2:], dtype))
        return place(w, out_sharding)

    return make_init(where, body, dtype, traced=_checks.traced(scale))
