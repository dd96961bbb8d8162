"""Sampling primitives used by every jinit initializer.

Each sampler returns values in the *compute dtype* (see :func:`compute_dtype`): float32 for
low-precision floats (bfloat16, float16, float8), the requested dtype otherwise. Initializers
scale in the compute dtype and round to the requested dtype once, at the end.
For float32 and wider the samplers return exactly the bits of the matching ``jax.random`` call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jinit._typing import Array, KeyArray, OutSharding, Shape


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype in which values of `dtype` are sampled: float32 for sub-32-bit floats."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


def real_dtype(dtype: np.dtype) -> np.dtype:
    """The real dtype of the same precision (float32 for complex64)."""
    return np.dtype(np.array(0, dtype).real.dtype)


def uniform(key: KeyArray, shape: Shape, dtype: np.dtype, minval: float = 0.0,
            maxval: float = 1.0, out_sharding: OutSharding = None) -> Array:
    """U[minval, maxval) in ``compute_dtype(dtype)``; same bits as ``jax.random.uniform``."""
    return jax.random.uniform(key, shape, compute_dtype(dtype), minval, maxval,
                              out_sharding=out_sharding)


def normal(key: KeyArray, shape: Shape, dtype: np.dtype, out_sharding: OutSharding = None) -> Array:
    """Standard normal (complex: unit E|z|^2) in ``compute_dtype(dtype)``; same bits as jax."""
    return jax.random.normal(key, shape, compute_dtype(dtype), out_sharding=out_sharding)


def truncated_normal(key: KeyArray, lower: float, upper: float, shape: Shape, dtype: np.dtype,
                     out_sharding: OutSharding = None) -> Array:
    """Standard normal truncated to (lower, upper) in ``compute_dtype(dtype)``; same bits as jax."""
    return jax.random.truncated_normal(key, lower, upper, shape, compute_dtype(dtype),
                                       out_sharding=out_sharding)


def complex_uniform(key: KeyArray, shape: Shape, dtype: np.dtype,
                    out_sharding: OutSharding = None) -> Array:
    """Uniform on the disk of radius sqrt(2): zero mean, E|z|^2 = 1 (jax's construction)."""
    key_r, key_theta = jax.random.split(key)
    real = real_dtype(dtype)
    r = jnp.sqrt(2 * uniform(key_r, shape, real, out_sharding=out_sharding)).astype(dtype)
    theta = 2 * np.pi * uniform(key_theta, shape, real, out_sharding=out_sharding).astype(dtype)
    return r * jnp.exp(1j * theta)


def complex_truncated_normal(key: KeyArray, upper: float, shape: Shape, dtype: np.dtype,
                             out_sharding: OutSharding = None) -> Array:
    """Circular complex normal (E|z|^2 = 1 before truncation) with modulus truncated to `upper`.

    The modulus is drawn by inverting the CDF of |z|^2 ~ Exp(1) restricted to [0, upper^2]
    (jax's construction).
    """
    key_r, key_theta = jax.random.split(key)
    real = real_dtype(dtype)
    t = (1 - jnp.exp(jnp.array(-(upper**2), dtype))) * uniform(
        key_r, shape, real, out_sharding=out_sharding).astype(dtype)
    r = jnp.sqrt(-jnp.log(1 - t))
    theta = 2 * np.pi * uniform(key_theta, shape, real, out_sharding=out_sharding).astype(dtype)
    return r * jnp.exp(1j * theta)


def complex_truncated_normal_std(upper: float) -> float:
    """sqrt(E|z|^2) of :func:`complex_truncated_normal`: |z|^2 ~ Exp(1) truncated to [0, upper^2].

    E[X | X <= c] for X ~ Exp(1) is (1 - (1 + c) e^-c) / (1 - e^-c). For upper = 2 this is
    0.961965..., not the 0.95311164380491208 that ``jax.nn.initializers`` divides by.
    """
    c = float(upper) ** 2
    return float(np.sqrt((1 - (1 + c) * np.exp(-c)) / (1 - np.exp(-c))))
