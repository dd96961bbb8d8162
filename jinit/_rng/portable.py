"""Portable sampling: uniform, normal and truncated-normal values, the same bits on every backend.

jax promises the same random *bits* everywhere, not the same floats: ``erf_inv``, ``erf`` and
``log`` are each backend's own approximation, and a GPU compiler may fuse ``a * b + c`` into one
rounding (an FMA) where a CPU rounds twice. In portable mode jinit turns the bits into values with
operations whose results every backend must agree on:

* **integers only** for the normal quantile: the 32 hash bits give a sign and an odd integer
  ``m`` (the tail probability ``m / 2**33``); ``clz(m)`` picks the octave, the next 6 bits a
  segment, and a quadratic with integer coefficients (:mod:`jinit._rng.portable_table`) is
  evaluated by Horner's rule in 28-bit fixed point with exact integer products. The float32
  result is then *assembled* from the fixed-point integer (exponent from ``clz``, mantissa
  rounded to nearest even, by integer ops) and bit-cast: no floating-point operation touches it.
* **exact float products** elsewhere: the uniform ``minval + f * (maxval - minval)`` splits both
  factors into halves of at most 12 significant bits, so every product is exact and an FMA cannot
  change a result; the additions happen in a fixed order, which no backend may reassociate.
  Where ``maxval - minval`` is a power of two (``U[0, 1)``, ``U[-1, 1)``) this is
  ``jax.random.uniform``'s value, bit for bit.
  Mean-shifted finishes (``mean + spread * z``: Keras and Haiku ``RandomNormal(mean=...)``) are
  computed the same way (:func:`mul_add`). These float sums rely on IEEE semantics, which every
  XLA backend compiles by default; ``--xla_cpu_enable_fast_math=true`` licenses reassociation and
  may change them (the integer samplers and scale-only finishes keep their bits even then).
* the **truncated normal** draws an offset in ``[U_a, U_b)`` with 64 hash bits and an exact
  integer product, where ``U_a`` and ``U_b`` are found by bisection over the same integer
  quantile (so no host's ``erf`` decides them), then clips (an exact operation).

The counters and hash are jinit's threefry kernels (:mod:`jinit._rng.threefry`): mesh- and
process-invariant like every jinit sampler, and independent of ``jax_threefry_partitionable``.
The values are not jax's (that is the point); :mod:`tests.portable_reference` recomputes them in
NumPy alone.

Portable mode is switched on per initializer by :func:`portable` (and by ``portable=True`` in
:func:`jinit.init_tree` and the Flax helpers); it is a trace-time context read by the samplers in
:mod:`jinit._rng.distributions`, and every compiled jinit body keys its cache on it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jinit._rng import portable_table as _portable_table
from jinit._rng import threefry as _threefry
from jinit._typing import Array

U32, I32, F32 = np.dtype(np.uint32), np.dtype(np.int32), np.dtype(np.float32)
FRAC = _portable_table.FRAC
SEG = _portable_table.SEGMENT_BITS
XB = _portable_table.X_BITS
_NORMAL, _ERF_INV = 0, 1  # table forms: -Phi^-1(q), and the same divided by sqrt(2)

_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("jinit_portable", default=False)


def active() -> bool:
    """Whether the samplers are tracing in portable mode (a trace-time, static fact)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def mode(on: bool = True) -> Iterator[None]:
    """Traces the body of the ``with`` in portable mode (or, with ``on=False``, in jax mode)."""
    token = _ACTIVE.set(bool(on))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def check_key(where: str, key: Any) -> None:
    """Portable values come from jinit's own threefry hash: the key must be a threefry key."""
    if not _threefry.is_threefry_key(key):
        impl = getattr(getattr(key, "dtype", None), "name", type(key).__name__)
        raise ValueError(
            f"`{where}` in portable mode needs a threefry key (`jax.random.key(seed)`, or a "
            f"`uint32[2]` key under jax's default implementation); got {impl}."
        )


def check_dtype(where: str, compute_dtype: np.dtype) -> None:
    """Portable values are float32 (rounded once to a lower-precision float dtype)."""
    if np.dtype(compute_dtype) != F32:
        raise ValueError(
            f"`{where}` in portable mode samples float32 (and rounds it to bfloat16, float16 or "
            f"float8); got dtype {np.dtype(compute_dtype).name}."
        )


@functools.cache
def _table() -> np.ndarray:
    return _portable_table.load()


@functools.cache
def _columns(form: int) -> tuple[np.ndarray, ...]:
    """The coefficient columns ``c0, c1, c2`` of one form (three table gathers per value)."""
    return tuple(np.ascontiguousarray(c) for c in _table()[form].T)


# ---------------------------------------------------------------------------------------------
# The integer quantile, in jax.


def _mul_x(a: Array, x: Array) -> Array:
    """``floor``-style ``a * x / 2**20`` for int32 ``|a| < 2**23`` and ``0 <= x < 2**20``.

    Exact integer products: ``(a >> 12) * x`` fits int32, ``(a & 0xFFF) * x`` fits uint32.
    """
    ah = lax.shift_right_arithmetic(a, np.int32(12))
    al = lax.convert_element_type(a & np.int32(0xFFF), U32)
    hi = lax.shift_right_arithmetic(ah * x, np.int32(8))
    lo = lax.shift_right_logical(al * lax.convert_element_type(x, U32), np.uint32(20))
    return hi + lax.convert_element_type(lo, I32)


def _mul_c2(c2: Array, x: Array) -> Array:
    """``floor(c2 * (x >> 4) / 2**16)``: one exact int32 product, as ``|c2| < 2**15``."""
    return lax.shift_right_arithmetic(c2 * lax.shift_right_logical(x, np.int32(4)), np.int32(16))


def _fixed_to_f32(a: Array, negative: Array) -> Array:
    """``(-1)**negative * a / 2**28`` as float32, for int32 ``a >= 0``: assembled by integer ops.

    The exponent comes from ``clz``, the 24-bit mantissa is rounded to nearest even, and a carry
    out of the mantissa moves into the exponent field by the addition itself.
    """
    a = lax.convert_element_type(a, U32)
    lz = lax.clz(a)
    n = lax.shift_left(a, lz)  # leading one at bit 31 (a > 0)
    mant = lax.shift_right_logical(n, np.uint32(8))
    rem = n & np.uint32(0xFF)
    up = (rem > 0x80) | ((rem == 0x80) & ((mant & np.uint32(1)) == 1))
    bits = (
        lax.shift_left(np.uint32(127 + 31 - FRAC) - lz, np.uint32(23))
        + (mant & np.uint32(0x7FFFFF))
        + up.astype(U32)
    )
    bits = jnp.where(a == 0, np.uint32(0), bits) | lax.shift_left(negative, np.uint32(31))
    return lax.bitcast_convert_type(bits, F32)


def quantile(u: Array, form: int = _NORMAL) -> Array:
    """float32 ``Phi^-1((u + 1/2) / 2**32)`` (``form=1``: divided by sqrt(2)) for uint32 ``u``.

    Symmetric by construction: ``u`` and ``2**32 - 1 - u`` give values of opposite sign and
    equal magnitude.
    """
    positive = lax.shift_right_logical(u, np.uint32(31))
    u2 = lax.shift_left(u, np.uint32(1))
    m = jnp.where(positive == 1, ~u2, u2 | np.uint32(1))  # odd: tail probability m / 2**33
    e = lax.clz(m)
    t = lax.shift_left(lax.shift_left(m, e), np.uint32(1))  # the fraction within the octave
    idx = lax.shift_left(e, np.uint32(SEG)) | lax.shift_right_logical(t, np.uint32(32 - SEG))
    x = lax.convert_element_type(
        lax.shift_right_logical(t, np.uint32(32 - SEG - XB)) & np.uint32(2**XB - 1), I32
    )
    idx = lax.convert_element_type(idx, I32)
    # Three gathers, each used once (XLA:CPU gives a gather with two users a loop of its own).
    c0, c1, c2 = (jnp.take(jnp.asarray(c), idx, mode="clip") for c in _columns(form))
    acc = c0 + _mul_x(c1 + _mul_c2(c2, x), x)
    return _fixed_to_f32(jnp.maximum(acc, np.int32(0)), positive ^ np.uint32(1))


# ---------------------------------------------------------------------------------------------
# The truncation bounds: bisection over the same quantile, evaluated at trace time (portable too).


_quantile_jit = jax.jit(quantile)  # one compiled program for the whole bisection


def _quantile_at(u: int) -> float:
    """:func:`quantile` of one ``0 <= u < 2**32``, evaluated now (also while tracing)."""
    with jax.ensure_compile_time_eval():
        return float(_quantile_jit(np.uint32(u)))


def _first_above(bound: float, strict: bool) -> int:
    """The least ``u`` whose quantile is ``> bound`` (``strict``) or ``>= bound``; 2**32 if none."""
    lo, hi = 0, 2**32
    while lo < hi:
        mid = (lo + hi) // 2
        v = _quantile_at(mid)
        if v > bound or (not strict and v == bound):
            hi = mid
        else:
            lo = mid + 1
    return lo


@functools.cache
def truncation(lower: float, upper: float) -> tuple[int, int]:
    """``(U_a, W)``: the offsets ``U_a <= u < U_a + W`` whose quantile lies in (lower, upper)."""
    lo32, hi32 = float(np.float32(lower)), float(np.float32(upper))
    start = 0 if lo32 == -math.inf else _first_above(lo32, strict=True)
    stop = 2**32 if hi32 == math.inf else _first_above(hi32, strict=False)
    if stop <= start:
        raise ValueError(
            f"portable `truncated_normal`: no value of the portable normal lies in "
            f"(lower, upper) = ({lower!r}, {upper!r}); widen the interval."
        )
    return start, stop - start


# ---------------------------------------------------------------------------------------------
# Kernels: one key (typed or raw uint32[2]) -> float32 values of `shape`.


def _unit_bits(key: Array, shape: tuple[int, ...]) -> Array:
    """jax.random.bits' 32 bits of every element (the keys were checked by the callers)."""
    return _threefry.random_bits32(*_threefry.key_words(key), shape)


# Each kernel's body also runs on explicit counters (``_threefry.random_words``), the tree
# builder's blocks of many leaves: ``*_block(k0, k1, counters, *args)``.


@partial(jax.jit, static_argnames="shape")
def normal_kernel(key: Array, *, shape: tuple[int, ...]) -> Array:
    """Standard normal, float32, portable."""
    return quantile(_unit_bits(key, shape), _NORMAL)


@partial(jax.jit, static_argnames="shape")
def erf_inv_kernel(key: Array, *, shape: tuple[int, ...]) -> Array:
    """A standard normal divided by sqrt(2), float32, portable (the ``erf_inv`` draw's form)."""
    return quantile(_unit_bits(key, shape), _ERF_INV)


def erf_inv_block(k0: Array, k1: Array, counters: Array) -> Array:
    return quantile(_threefry.random_bits32(k0, k1, counters.shape, counters), _ERF_INV)


def _f32(x: Any) -> Any:
    """``x`` in float32: a NumPy scalar for a host number, an array for a traced one."""
    return jnp.asarray(x, F32) if isinstance(x, jax.core.Tracer) else np.float32(x)


def _split12(x: Any) -> tuple[Any, Any]:
    """float32 ``x`` as ``hi + lo``, each with at most 12 significant bits (exact)."""
    if isinstance(x, jax.Array):  # a traced hyperparameter: the same bits, by XLA
        bits = lax.bitcast_convert_type(x, U32) & np.uint32(0xFFFFF000)
        high = lax.bitcast_convert_type(bits, F32)
        return high, x - high
    x32 = np.float32(x)
    hi = np.float32((np.array(x32).view(np.uint32) & np.uint32(0xFFFFF000)).view(np.float32))
    return hi, np.float32(x32 - hi)


def mul_add(x: Array, factor: Any, shift: Any) -> Array:
    """``x * factor + shift`` (host or traced scalars); in portable mode with exact products, so
    that no backend can fuse the multiply and the add into one rounding (an FMA) where another
    rounds twice. ``x`` and ``factor`` are split into 12-bit halves; the four products are exact and
    are added in a fixed order. Outside portable mode: ``x * factor + shift``, as written.
    """
    f, m = _f32(factor), _f32(shift)
    if not active():
        return x * f + m
    if not isinstance(m, jax.Array) and m == 0:
        return x * f  # one rounding: nothing to fuse
    f_hi, f_lo = _split12(f)
    x_hi = lax.bitcast_convert_type(lax.bitcast_convert_type(x, U32) & np.uint32(0xFFFFF000), F32)
    x_lo = x - x_hi  # exact
    return (((x_hi * f_hi + x_hi * f_lo) + x_lo * f_hi) + x_lo * f_lo) + m


@partial(jax.jit, static_argnames=("minval", "maxval", "shape"))
def uniform_kernel(key: Array, minval: float, maxval: float, *, shape: tuple[int, ...]) -> Array:
    """U[minval, maxval) in float32, portable: ``max(a, a + f * w)`` with exact products.

    ``f`` is jax's 23-bit uniform on [0, 1); where ``w = maxval - minval`` is a power of two this
    is ``jax.random.uniform``'s value.
    """
    return _uniform(_unit_bits(key, shape), minval, maxval)


def uniform_block(k0: Array, k1: Array, counters: Array, minval: float, maxval: float) -> Array:
    return _uniform(_threefry.random_bits32(k0, k1, counters.shape, counters), minval, maxval)


def _uniform(bits: Array, minval: float, maxval: float) -> Array:
    a = np.float32(minval)
    w_hi, w_lo = _split12(np.float32(np.float32(maxval) - a))
    k = lax.shift_right_logical(bits, np.uint32(9))  # f = k / 2**23
    scale = np.float32(2.0**-23)
    f_hi = lax.convert_element_type(k & np.uint32(0x7FF800), F32) * scale  # 12 bits: exact
    f_lo = lax.convert_element_type(k & np.uint32(0x7FF), F32) * scale  # 11 bits: exact
    fw = ((f_hi * w_hi + f_hi * w_lo) + f_lo * w_hi) + f_lo * w_lo
    return jnp.maximum(a, fw + a)


@partial(jax.jit, static_argnames=("lower", "upper", "shape"))
def truncated_normal_kernel(
    key: Array, lower: float, upper: float, *, shape: tuple[int, ...]
) -> Array:
    """A standard normal truncated to (lower, upper), float32, portable."""
    words = _threefry.random_words(*_threefry.key_words(key), shape)
    return _truncated_normal(words, lower, upper)


def truncated_normal_block(
    k0: Array, k1: Array, counters: Array, lower: float, upper: float
) -> Array:
    return _truncated_normal(_threefry.random_words(k0, k1, counters.shape, counters), lower, upper)


def _truncated_normal(words: tuple[Array, Array], lower: float, upper: float) -> Array:
    start, width = truncation(lower, upper)
    out0, out1 = words
    if width == 2**32:
        u = out0
    else:  # floor((out0 * 2**32 + out1) * width / 2**64), exactly
        ph, pl = _threefry._mul_wide(out0, width)
        qh, _ = _threefry._mul_wide(out1, width)
        s = pl + qh
        u = np.uint32(start) + ph + (s < pl).astype(U32)
    z = quantile(u, _NORMAL)
    lo = np.nextafter(np.float32(lower), np.float32(np.inf))
    hi = np.nextafter(np.float32(upper), np.float32(-np.inf))
    return jnp.clip(z, lo, hi)
