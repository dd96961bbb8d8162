"""Sampling primitives used by every jinit initializer: jax.random's bits, made faster
(``python -m bench kernels``; figures in bench/RESULTS.md).

Each sampler returns values in the *compute dtype* (see :func:`compute_dtype`): float32 for
low-precision floats (bfloat16, float16, float8), the requested dtype otherwise. Initializers
scale in the compute dtype and round to the requested dtype once, at the end.

For a float32 (or complex64) compute dtype and a threefry key (typed ``jax.random.key`` or legacy
``uint32[2]``), the samplers run jinit's own kernels (:mod:`jinit._rng.threefry`): the same
counters, hash and transforms as ``jax.random`` with ``jax_threefry_partitionable`` on (jax's
default), hence exactly the same bits, written as fusible element-wise ops instead of jax's
rolled CPU loop. Everything else falls back to the matching ``jax.random`` call, with its bits
and errors: ``jax_threefry_partitionable`` off (a different counter layout), float64 (64-bit
bits), keys of other implementations (rbg, unsafe_rbg, custom), and legacy keys that jax would
warn about.

In portable mode (:mod:`jinit._rng.portable`, a trace-time context) ``uniform``, ``normal`` and
``truncated_normal`` run the portable kernels instead, whose values are the same on every
backend; the complex samplers, which need ``exp`` and ``log``, refuse.

``out_sharding`` has ``jax.random``'s semantics (a ``NamedSharding``, or a ``PartitionSpec``
under ``jax.set_mesh``, explicit mesh axes): the kernel runs under ``jax.sharding.auto_axes`` and
its counters are per-axis iotas, so each device hashes only the counters of its own shard.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jinit import _checks, _jax_compat
from jinit._rng import portable as _portable
from jinit._rng import threefry as _threefry
from jinit._typing import Array, KeyArray, OutSharding, Shape

F32 = np.dtype(np.float32)
SQRT2 = np.array(np.sqrt(2), F32)
# Standard deviation of N(0, 1) truncated to (-2, 2), as in jax, Keras and haiku.
TN2_STD = 0.87962566103423978


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype in which values of `dtype` are sampled: float32 for sub-32-bit floats."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


def real_dtype(dtype: np.dtype) -> np.dtype:
    """The real dtype of the same precision (float32 for complex64)."""
    return np.dtype(np.array(0, dtype).real.dtype)


def use_kernels(key: Any, dtype: Any = F32, shape: Shape = ()) -> bool:
    """Whether jinit's kernels reproduce ``jax.random`` for this key, compute dtype and shape.

    False (so the caller uses ``jax.random``) with ``jax_threefry_partitionable`` off, a float64
    or complex128 compute dtype, a key that is not threefry, or an axis of ``2**32`` or more.
    """
    return (
        bool(_threefry.config("jax_threefry_partitionable"))
        and real_dtype(compute_dtype(dtype)) == F32
        and all(d < 2**32 for d in shape)
        and _threefry.is_threefry_key(key)
    )


def run_kernel(
    name: str, kernel: Any, shape: tuple[int, ...], out_sharding: OutSharding, *args: Any
) -> Array:
    """Calls ``kernel(*args, shape=shape)`` laid out as ``out_sharding`` (jax.random's rules)."""
    sharding = _jax_compat.canonicalize_sharding(out_sharding, name)
    mesh = jax.sharding.get_abstract_mesh()
    if sharding is None and not shape and mesh.are_all_axes_explicit:
        sharding = jax.NamedSharding(mesh, jax.P())
    f = partial(kernel, shape=shape)
    if sharding is not None:
        f = jax.sharding.auto_axes(f, out_sharding=sharding, axes=sharding.mesh.explicit_axes)
    return f(*args)


def _to_rank(x: Array, rank: int) -> Array:
    return jnp.reshape(x, (1,) * (rank - x.ndim) + x.shape)


def _uniform_f32(
    k0: Array,
    k1: Array,
    shape: tuple[int, ...],
    minval: Any,
    maxval: Any,
    counters: Array | None = None,
) -> Array:
    """jax.random's ``_uniform`` for float32: 23 random mantissa bits, scaled to the range."""
    bits = _threefry.random_bits32(k0, k1, shape, counters)
    float_bits = lax.shift_right_logical(bits, np.uint32(9)) | np.uint32(0x3F800000)
    floats = lax.bitcast_convert_type(float_bits, F32) - np.float32(1)
    minval = _to_rank(lax.convert_element_type(minval, F32), len(shape))
    maxval = _to_rank(lax.convert_element_type(maxval, F32), len(shape))
    return jnp.maximum(minval, floats * (maxval - minval) + minval)


def _erf_inv_f32(
    k0: Array, k1: Array, shape: tuple[int, ...], counters: Array | None = None
) -> Array:
    """erf_inv(U(nextafter(-1, 0), 1)): jax.random's normal before its factor sqrt(2)."""
    lo = np.nextafter(np.float32(-1), np.float32(0))
    return lax.erf_inv(_uniform_f32(k0, k1, shape, lo, np.float32(1), counters))


def _normal_f32(k0: Array, k1: Array, shape: tuple[int, ...]) -> Array:
    """jax.random's ``_normal_real`` for float32: sqrt(2) * erf_inv(U(nextafter(-1, 0), 1))."""
    return jnp.multiply(SQRT2, _erf_inv_f32(k0, k1, shape))


@partial(jax.jit, static_argnames="shape")
def uniform_kernel(key: Array, minval: Any, maxval: Any, *, shape: tuple[int, ...]) -> Array:
    return _uniform_f32(*_threefry.key_words(key), shape, minval, maxval)


@partial(jax.jit, static_argnames="shape")
def erf_inv_kernel(key: Array, *, shape: tuple[int, ...]) -> Array:
    return _erf_inv_f32(*_threefry.key_words(key), shape)


@partial(jax.jit, static_argnames="shape")
def _normal_kernel(key: Array, *, shape: tuple[int, ...]) -> Array:
    return _normal_f32(*_threefry.key_words(key), shape)


@partial(jax.jit, static_argnames="shape")
def _complex_normal_kernel(key: Array, *, shape: tuple[int, ...]) -> Array:
    key_re, key_im = _threefry.split2(*_threefry.key_words(key))
    re = _normal_f32(*key_re, shape).astype(np.complex64)
    im = _normal_f32(*key_im, shape).astype(np.complex64)
    return (re + 1j * im) / np.array(np.sqrt(2), np.complex64)


@partial(jax.jit, static_argnames="shape")
def truncated_normal_kernel(key: Array, lower: Any, upper: Any, *, shape: tuple[int, ...]) -> Array:
    return _truncated_normal_f32(*_threefry.key_words(key), shape, lower, upper)


def _truncated_normal_f32(
    k0: Array,
    k1: Array,
    shape: tuple[int, ...],
    lower: Any,
    upper: Any,
    counters: Array | None = None,
) -> Array:
    lower = _to_rank(lax.convert_element_type(lower, F32), len(shape))
    upper = _to_rank(lax.convert_element_type(upper, F32), len(shape))
    a = lax.erf(lower / SQRT2)
    b = lax.erf(upper / SQRT2)
    u = _uniform_f32(k0, k1, shape, a, b, counters)
    out = SQRT2 * lax.erf_inv(u)
    lo = lax.nextafter(lax.stop_gradient(lower), jnp.full_like(lower, np.inf))
    hi = lax.nextafter(lax.stop_gradient(upper), jnp.full_like(upper, -np.inf))
    return jnp.clip(out, lo, hi)


# The same draws for explicit counters (``_threefry.random_words``): every element of a block
# under the key its row broadcasts, as the tree builder draws many leaves at once. Jitted with
# the bounds as arguments, as the kernels are: XLA folds ``erf`` of a constant bound differently
# from ``erf`` of an argument (an ulp apart for some bounds), and the blocks must give the
# kernels' bits.


@jax.jit
def uniform_block(k0: Array, k1: Array, counters: Array, minval: Any, maxval: Any) -> Array:
    return _uniform_f32(k0, k1, counters.shape, minval, maxval, counters)


def erf_inv_block(k0: Array, k1: Array, counters: Array) -> Array:
    return _erf_inv_f32(k0, k1, counters.shape, counters)


@jax.jit
def truncated_normal_block(k0: Array, k1: Array, counters: Array, lower: Any, upper: Any) -> Array:
    return _truncated_normal_f32(k0, k1, counters.shape, lower, upper, counters)


@partial(jax.jit, static_argnames=("shape", "dtype"))
def _complex_uniform_kernel(key: Array, *, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    key_r, key_theta = _threefry.split2(*_threefry.key_words(key))
    r = jnp.sqrt(2 * _uniform_f32(*key_r, shape, 0.0, 1.0)).astype(dtype)
    theta = 2 * np.pi * _uniform_f32(*key_theta, shape, 0.0, 1.0).astype(dtype)
    return r * jnp.exp(1j * theta)


@partial(jax.jit, static_argnames=("upper", "shape", "dtype"))
def _complex_truncated_normal_kernel(
    key: Array, *, upper: float, shape: tuple[int, ...], dtype: np.dtype
) -> Array:
    key_r, key_theta = _threefry.split2(*_threefry.key_words(key))
    t = (1 - jnp.exp(jnp.array(-(upper**2), dtype))) * _uniform_f32(*key_r, shape, 0.0, 1.0).astype(
        dtype
    )
    r = jnp.sqrt(-jnp.log(1 - t))
    theta = 2 * np.pi * _uniform_f32(*key_theta, shape, 0.0, 1.0).astype(dtype)
    return r * jnp.exp(1j * theta)


def _portable_key(where: str, key: KeyArray, compute: np.dtype) -> KeyArray:
    """``key``, checked for a portable draw of compute dtype ``compute``."""
    _portable.check_key(where, key)
    _portable.check_dtype(where, compute)
    return key


def _static_bounds(where: str, a_name: str, a: Any, b_name: str, b: Any) -> tuple[float, float]:
    """Portable kernels take their bounds as static floats (they are hyperparameters)."""
    lo, hi = _checks.static_float(a), _checks.static_float(b)
    if lo is None or hi is None:
        raise ValueError(
            f"`{where}` in portable mode needs static scalar bounds (Python or NumPy numbers); "
            f"got {a_name}={a!r}, {b_name}={b!r}."
        )
    return lo, hi


def uniform(
    key: KeyArray,
    shape: Shape,
    dtype: np.dtype,
    minval: Any = 0.0,
    maxval: Any = 1.0,
    out_sharding: OutSharding = None,
) -> Array:
    """U[minval, maxval) in ``compute_dtype(dtype)``; same bits as ``jax.random.uniform``."""
    shape, ct = tuple(shape), compute_dtype(dtype)
    if _portable.active():
        lo, hi = _static_bounds("uniform", "minval", minval, "maxval", maxval)
        kernel = partial(_portable.uniform_kernel, minval=lo, maxval=hi)
        return run_kernel("uniform", kernel, shape, out_sharding, _portable_key("uniform", key, ct))
    if not use_kernels(key, ct, shape) or jnp.issubdtype(ct, jnp.complexfloating):
        return jax.random.uniform(key, shape, ct, minval, maxval, out_sharding=out_sharding)
    return run_kernel("uniform", uniform_kernel, shape, out_sharding, key, minval, maxval)


def normal(key: KeyArray, shape: Shape, dtype: np.dtype, out_sharding: OutSharding = None) -> Array:
    """Standard normal (complex: unit E|z|^2) in ``compute_dtype(dtype)``; same bits as jax."""
    shape, ct = tuple(shape), compute_dtype(dtype)
    if _portable.active():
        key = _portable_key("normal", key, ct)
        return run_kernel("normal", _portable.normal_kernel, shape, out_sharding, key)
    if not use_kernels(key, ct, shape):
        return jax.random.normal(key, shape, ct, out_sharding=out_sharding)
    kernel = _complex_normal_kernel if ct == np.complex64 else _normal_kernel
    return run_kernel("normal", kernel, shape, out_sharding, key)


def truncated_normal(
    key: KeyArray,
    lower: Any,
    upper: Any,
    shape: Shape,
    dtype: np.dtype,
    out_sharding: OutSharding = None,
) -> Array:
    """Standard normal truncated to (lower, upper) in ``compute_dtype(dtype)``; same bits as jax."""
    shape, ct = tuple(shape), compute_dtype(dtype)
    if _portable.active():
        lo, hi = _static_bounds("truncated_normal", "lower", lower, "upper", upper)
        kernel = partial(_portable.truncated_normal_kernel, lower=lo, upper=hi)
        key = _portable_key("truncated_normal", key, ct)
        return run_kernel("truncated_normal", kernel, shape, out_sharding, key)
    if not use_kernels(key, ct, shape) or jnp.issubdtype(ct, jnp.complexfloating):
        return jax.random.truncated_normal(key, lower, upper, shape, ct, out_sharding=out_sharding)
    try:
        ok = jnp.broadcast_shapes(np.shape(lower), np.shape(upper), shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"`truncated_normal`: the shapes of `lower` {np.shape(lower)} and "
            f"`upper` {np.shape(upper)} must broadcast to `shape` {shape}."
        )
    return run_kernel(
        "truncated_normal", truncated_normal_kernel, shape, out_sharding, key, lower, upper
    )


def complex_uniform(
    key: KeyArray, shape: Shape, dtype: np.dtype, out_sharding: OutSharding = None
) -> Array:
    """Uniform on the disk of radius sqrt(2): zero mean, E|z|^2 = 1 (jax's construction)."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    if _portable.active():
        # refuses: complex values need exp and log
        _portable.check_dtype("complex_uniform", dtype)
    if use_kernels(key, dtype, shape):
        return run_kernel(
            "complex_uniform",
            partial(_complex_uniform_kernel, dtype=dtype),
            shape,
            out_sharding,
            key,
        )
    key_r, key_theta = jax.random.split(key)
    real = real_dtype(dtype)
    r = jnp.sqrt(2 * uniform(key_r, shape, real, out_sharding=out_sharding)).astype(dtype)
    theta = 2 * np.pi * uniform(key_theta, shape, real, out_sharding=out_sharding).astype(dtype)
    return r * jnp.exp(1j * theta)


def complex_truncated_normal(
    key: KeyArray, upper: float, shape: Shape, dtype: np.dtype, out_sharding: OutSharding = None
) -> Array:
    """Circular complex normal (E|z|^2 = 1 before truncation) with modulus truncated to `upper`.

    The modulus is drawn by inverting the CDF of |z|^2 ~ Exp(1) restricted to [0, upper^2]
    (jax's construction).
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    if _portable.active():
        # refuses: complex values need exp and log
        _portable.check_dtype("complex_truncated_normal", dtype)
    if use_kernels(key, dtype, shape):
        kernel = partial(_complex_truncated_normal_kernel, upper=float(upper), dtype=dtype)
        return run_kernel("complex_truncated_normal", kernel, shape, out_sharding, key)
    key_r, key_theta = jax.random.split(key)
    real = real_dtype(dtype)
    t = (1 - jnp.exp(jnp.array(-(upper**2), dtype))) * uniform(
        key_r, shape, real, out_sharding=out_sharding
    ).astype(dtype)
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
