"""Threefry-2x32 in straight-line ``jnp``: the bits of ``jax.random`` without its CPU loop.

``jax.random`` hashes a 64-bit row-major counter with the ``threefry2x32`` primitive, which jax
lowers on CPU as a rolled ``while`` loop in an out-of-line function: each of its five iterations
streams two whole arrays through memory and nothing fuses with the consumer. Written as plain
element-wise ``lax`` ops the same hash fuses into one loop with its consumer (uniform, erf_inv,
the initializer's scale and cast), and the SPMD partitioner sees per-axis iotas, so each device
hashes only the counters of its own shard.

Everything here works on raw key words ``(k0, k1)`` (uint32 scalars); which keys qualify is
decided by :func:`is_threefry_key`.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax import lax

from jinit import _jax_compat
from jinit._typing import Array

_U32 = np.dtype(np.uint32)
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def config(name: str) -> Any:
    """The current value of a jax flag, context managers included (``jax.config.<name>``)."""
    return getattr(jax.config, name)


def is_threefry_key(key: object) -> bool:
    """Whether jinit's kernels produce ``jax.random``'s bits for ``key`` (a static check).

    True for a typed key (``jax.random.key``) whose implementation is ``threefry2x32`` and for a
    legacy ``uint32[2]`` key (``jax.random.PRNGKey``) when jax's default implementation is
    threefry and ``jax_legacy_prng_key`` is ``"allow"`` (otherwise jax's warning or error is the
    contract). Anything else (rbg / unsafe_rbg / custom keys, batched keys, non-arrays) is False
    and the caller falls back to ``jax.random``, which also raises jax's errors.
    """
    dtype = getattr(key, "dtype", None)
    shape = getattr(key, "shape", None)
    if dtype is None or shape is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return shape == () and str(jax.random.key_impl(key)) == "threefry2x32"  # type: ignore[arg-type]
    return (
        np.dtype(dtype) == _U32
        and tuple(shape) == (2,)
        and config("jax_default_prng_impl") == "threefry2x32"
        and config("jax_legacy_prng_key") == "allow"
    )


def key_words(key: Array) -> tuple[Array, Array]:
    """The two uint32 words of a key accepted by :func:`is_threefry_key`."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return key[0], key[1]


def _rotl(x: Array, d: int) -> Array:
    return lax.shift_left(x, np.uint32(d)) | lax.shift_right_logical(x, np.uint32(32 - d))


def _rotl_host(x: np.ndarray, d: int) -> np.ndarray:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(
    k0: Array, k1: Array, x0: Array, x1: Array, rotl: Callable[[Any, int], Any] = _rotl
) -> tuple[Array, Array]:
    """The Threefry-2x32 hash (20 rounds) of counter words ``(x0, x1)`` under key ``(k0, k1)``.

    The same rounds, rotations and key schedule as jax's ``threefry2x32_p``, unrolled, so the
    result is bit-identical and fuses with whatever consumes it. With ``rotl=_rotl_host`` and
    numpy ``uint32`` arrays, the same function on the host (:func:`host_fold`).
    """
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = x0 ^ rotl(x1, r)
        x0 = x0 + ks[(block + 1) % 3]
        x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def block_hash(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """:func:`threefry2x32` of a block of counters (a stream's step), by jax's GPU hash kernel
    where there is one.

    On CUDA (ROCm) this is jaxlib's ``threefry2x32`` kernel (:func:`jinit._jax_compat.
    gpu_hash_targets`), a custom call with nothing to generate: XLA:GPU compiles no copy of the
    twenty rounds for it (each copy costs LLVM and ptxas time), and the block's words go through
    memory once, a step's worth (a few MiB). Elsewhere, and where no kernel is registered, the
    unrolled rounds. Both are the same function of the same words: the same bits.
    """
    branches = {
        platform: functools.partial(kernel_hash, functools.partial(_ffi_hash, target))
        for platform, target in _jax_compat.gpu_hash_targets().items()
    }
    if not branches:
        return threefry2x32(k0, k1, x0, x1)
    return lax.platform_dependent(k0, k1, x0, x1, default=threefry2x32, **branches)


def kernel_hash(
    call: Callable[..., tuple[Array, Array]], k0: Array, k1: Array, x0: Array, x1: Array
) -> tuple[Array, Array]:
    """Threefry-2x32 by a kernel with ``threefry2x32_p``'s contract: ``call`` takes the four
    words broadcast to one shape and returns the two hashed words of that shape."""
    shape = jax.numpy.broadcast_shapes(*(jax.numpy.shape(w) for w in (k0, k1, x0, x1)))
    if math.prod(shape) == 0:
        zero = jax.numpy.zeros(shape, _U32)
        return zero, zero
    words = [jax.numpy.broadcast_to(w, shape) for w in (k0, k1, x0, x1)]
    out0, out1 = call(*words)
    return out0, out1


def _ffi_hash(target: str, *words: Array) -> tuple[Array, Array]:
    out = jax.ShapeDtypeStruct(words[0].shape, _U32)
    out0, out1 = jax.ffi.ffi_call(target, (out, out), vmap_method="broadcast_all")(*words)
    return out0, out1


def fold_step(
    i: Array, key: tuple[Array, Array], words: tuple[Array, Array]
) -> tuple[Array, Array]:
    """Step ``i`` (0 or 1) of ``fold_in(fold_in(key, words[0]), words[1])`` for arrays of key
    words: ``fold_in(k, d)`` is the hash of the counter ``(0, d)`` under ``k``. As a loop of two
    steps, the hash is compiled once (the two unrolled are one kernel twice its size)."""
    w = jax.numpy.where(i == 0, words[0], words[1])
    return block_hash(key[0], key[1], jax.numpy.zeros_like(w), w)


def host_fold(key: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``fold_in(fold_in(key, words[:, 0]), words[:, 1])`` on the host, for a threefry key's
    ``uint32[2]`` data and ``uint32[n, 2]`` words: the keys' ``uint32[n, 2]`` data, the same as
    :func:`fold_step`'s twice (integer arithmetic: the same bits everywhere)."""
    k0: Any
    k1: Any
    k0, k1 = (np.full(len(words), w, _U32) for w in np.asarray(key, _U32))
    zero: Any = np.zeros(len(words), _U32)
    with np.errstate(over="ignore"):
        for j in range(2):
            w: Any = words[:, j].astype(_U32)
            k0, k1 = threefry2x32(k0, k1, zero, w, rotl=_rotl_host)
    return np.stack([k0, k1], axis=1)


def _mul_wide(a: Array, b: int) -> tuple[Array, Array]:
    """(hi, lo) words of the 64-bit product of uint32 array ``a`` and the constant ``b < 2**32``."""
    a1, a0 = lax.shift_right_logical(a, np.uint32(16)), a & np.uint32(0xFFFF)
    b1, b0 = np.uint32(b >> 16), np.uint32(b & 0xFFFF)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = p01 + p10
    mid_carry = (mid < p01).astype(_U32)
    lo = p00 + lax.shift_left(mid, np.uint32(16))
    carry = (lo < p00).astype(_U32)
    hi = (
        p11
        + lax.shift_right_logical(mid, np.uint32(16))
        + lax.shift_left(mid_carry, np.uint32(16))
        + carry
    )
    return hi, lo


def counter_words(indices: list[Array], shape: tuple[int, ...]) -> tuple[Array | None, Array]:
    """(hi, lo) uint32 words of the row-major flat index ``sum(indices[d] * stride[d])``.

    ``indices[d]`` holds (broadcastable) uint32 positions along axis ``d`` of ``shape``; this is
    the counter that ``jax._src.random.prng.iota_2x32_shape`` builds as a uint64 iota. ``hi`` is
    ``None`` (all zero) when the array has at most ``2**32`` elements, the common case.
    """
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    if math.prod(shape) <= 2**32:  # every flat index fits the low word: hi == 0
        terms = [i if s == 1 else i * np.uint32(s) for i, s in zip(indices, strides, strict=True)]
        return None, functools.reduce(operator.add, terms)
    hi_acc, lo_acc = _times_stride(indices[0], strides[0])
    for i, s in zip(indices[1:], strides[1:], strict=True):
        hi, lo = _times_stride(i, s)
        lo_sum = lo_acc + lo
        hi_acc = hi_acc + hi + (lo_sum < lo_acc).astype(_U32)
        lo_acc = lo_sum
    return hi_acc, lo_acc


def _times_stride(i: Array, stride: int) -> tuple[Array, Array]:
    """(hi, lo) words of ``i * stride mod 2**64`` for a static ``stride < 2**64``."""
    hi, lo = _mul_wide(i, stride & 0xFFFFFFFF)
    if stride >> 32:
        hi = hi + i * np.uint32(stride >> 32)
    return hi, lo


def iota_counters(shape: tuple[int, ...], zero: Array | None = None) -> tuple[Array | None, Array]:
    """The counters of every element of ``shape``, from one broadcasted iota per axis (plus
    ``zero``, a traced uint32 0, which makes them depend on it)."""
    if not shape:
        return None, jax.numpy.zeros((), _U32)
    if max(shape) > 2**32 - 1:
        raise ValueError(f"jinit's threefry counters need every axis below 2**32; got {shape}.")
    idx = [lax.broadcasted_iota(_U32, shape, d) for d in range(len(shape))]
    if zero is not None:
        idx = [i + zero for i in idx]
    return counter_words(idx, shape)


def _counter_zero(k0: Array) -> Array:
    """A uint32 0 for the counters: on a CPU tied to the key, elsewhere a constant.

    On XLA:CPU, in a loop over keys (the tree builder's), counters that do not depend on the key
    are hoisted out as a loop invariant, a stored uint32 array of the draw's size read back on
    every iteration; tied to the key they are not. On TPU and GPU there is no such loop, and
    untied counters are one iota that every draw of a shape shares: XLA then fuses the draws of
    one shape into one kernel with several outputs, as it does jax.random's, which is fewer
    kernels to compile. (``lax.platform_dependent``: jax lowers the branch of the platform it
    compiles for.) The values are the same either way.
    """
    tied = lambda k: zero_from(lax.shift_right_logical(k, np.uint32(31)), _U32)
    return lax.platform_dependent(k0, cpu=tied, default=lambda k: jax.numpy.zeros((), _U32))


def random_words(
    k0: Array, k1: Array, shape: tuple[int, ...], counters: Array | None = None
) -> tuple[Array, Array]:
    """Both output words of the hash of every element's counter (jax's partitionable layout).

    ``counters``: the low counter words to hash instead of the row-major indices of ``shape``
    (uint32, of shape ``shape``; the high words are zero), with ``k0`` and ``k1`` broadcasting
    to them: the elements of several arrays, each under its own key, drawn as one block
    (an element gets the value it has at row-major index ``counters`` of an array of at most
    ``2**32`` elements under its key).
    """
    if counters is not None:
        return block_hash(k0, k1, jax.numpy.zeros(shape, _U32), counters)
    hi, lo = iota_counters(shape, _counter_zero(k0))
    x0 = jax.numpy.zeros(shape, _U32) if hi is None else hi
    return threefry2x32(k0, k1, x0, lo)


def zero_from(n: Array, dtype: Any) -> Array:
    """``float(n) * 0.0`` as ``dtype``: a zero that XLA does not fold (``x * 0.0`` is NaN for NaN
    ``x``), so whatever uses it waits for ``n`` and is not a constant to XLA."""
    n = lax.convert_element_type(n, np.float32)
    return lax.convert_element_type(n * np.float32(0), dtype)


def random_bits32(
    k0: Array, k1: Array, shape: tuple[int, ...], counters: Array | None = None
) -> Array:
    """uint32 bits equal to ``jax.random.bits(key, shape)`` with partitionable threefry
    (``counters``: as in :func:`random_words`)."""
    out0, out1 = random_words(k0, k1, shape, counters)
    return out0 ^ out1


def split2(k0: Array, k1: Array) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """The two keys of ``jax.random.split(key)`` (partitionable threefry), as word pairs."""
    counters = jax.numpy.arange(2, dtype=_U32)
    out0, out1 = threefry2x32(k0, k1, jax.numpy.zeros_like(counters), counters)
    return (out0[0], out1[0]), (out0[1], out1[1])
