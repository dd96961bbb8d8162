"""The portable samplers rewritten in NumPy alone (no jax): the reference their bits must match.

Written from the algorithm's description in ``jinit/_rng/portable.py``, not from its code: 64-bit
integer arithmetic where the kernels juggle 32-bit halves, a loop where they use ``clz``,
NumPy's own int -> float32 rounding where they assemble the bits. Only the shipped coefficient
table is shared (it is data).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from jinit._rng import portable_table as table_mod

M32 = (1 << 32) - 1
_ROT = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0: int, k1: int, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32, 20 rounds (Salmon et al. 2011), on uint64 arrays holding 32-bit words."""
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0 = (x0 + ks[0]) & M32
    x1 = (x1 + ks[1]) & M32
    for block in range(5):
        for r in _ROT[block % 2]:
            x0 = (x0 + x1) & M32
            x1 = (((x1 << r) | (x1 >> (32 - r))) & M32) ^ x0
        x0 = (x0 + ks[(block + 1) % 3]) & M32
        x1 = (x1 + ks[(block + 2) % 3] + block + 1) & M32
    return x0, x1


def words(key: tuple[int, int], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The hash of every element's row-major index (high word, low word), as uint64 arrays."""
    n = int(np.prod(shape, dtype=np.int64))
    idx = np.arange(n, dtype=np.uint64)
    out0, out1 = threefry2x32(int(key[0]), int(key[1]), idx >> np.uint64(32), idx & np.uint64(M32))
    return out0.reshape(shape), out1.reshape(shape)


def _clz32(m: np.ndarray) -> np.ndarray:
    """Leading zeros of 32-bit values: 31 minus the position of the highest set bit."""
    hb = np.full(m.shape, -1, np.int64)
    for b in range(32):
        hb = np.where((m >> np.uint64(b)) & np.uint64(1) == 1, b, hb)
    return 31 - hb


def quantile(u: np.ndarray, form: int = 0) -> np.ndarray:
    """float32 ``Phi^-1((u + 1/2) / 2**32)`` (``form=1``: over sqrt(2)) for 32-bit ``u``."""
    tab = table_mod.load()[form].astype(np.int64)
    u = u.astype(np.uint64)
    positive = u >= 2**31
    # tail probability m / 2**33 with m odd
    m = np.where(positive, 2**33 - 2 * u - 1, 2 * u + 1).astype(np.uint64)
    e = _clz32(m)
    frac = ((m << e.astype(np.uint64)) << np.uint64(1)) & np.uint64(M32)  # position in octave
    seg = frac >> np.uint64(32 - table_mod.SEGMENT_BITS)
    x = (
        (frac >> np.uint64(32 - table_mod.SEGMENT_BITS - table_mod.X_BITS))
        & np.uint64(2**table_mod.X_BITS - 1)
    ).astype(np.int64)
    c = tab[(e << table_mod.SEGMENT_BITS) + seg.astype(np.int64)]
    quad = (c[..., 2] * (x >> 4)) >> 16  # floor division (NumPy's >> on int64 is arithmetic)
    lin = c[..., 1] + quad
    acc = c[..., 0] + (((lin >> 12) * x) >> 8) + (((lin & 0xFFF) * x) >> 20)
    value = np.ldexp(np.maximum(acc, 0).astype(np.float64), -table_mod.FRAC).astype(np.float32)
    return np.where(positive, value, -value).astype(np.float32)


def normal(key: tuple[int, int], shape: tuple[int, ...], form: int = 0) -> np.ndarray:
    out0, out1 = words(key, shape)
    return quantile(out0 ^ out1, form)


def round_f32(x: Fraction) -> np.float32:
    """The float32 nearest the exact rational ``x``, ties to even (IEEE's default rounding)."""
    f = np.float32(float(x))  # within one float32 step of the answer
    cands = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
    best = min(abs(Fraction(float(c)) - x) for c in cands)
    ties = [c for c in cands if abs(Fraction(float(c)) - x) == best]
    return min(ties, key=lambda c: int(np.array(c).view(np.uint32)) & 1)


def uniform(
    key: tuple[int, int], shape: tuple[int, ...], minval: float, maxval: float
) -> np.ndarray:
    """``max(a, ((p_hh + p_hl) + p_lh) + p_ll + a)``, every partial sum rounded to float32.

    ``f = k / 2**23`` (jax's 23-bit uniform) and ``w = maxval - minval`` are split into parts of
    at most 12 significant bits, so the four products are exact; the sums are done exactly with
    fractions and rounded once each, in the order the kernel fixes.
    """
    out0, out1 = words(key, shape)
    a = np.float32(minval)
    w = np.float32(np.float32(maxval) - a)
    w_hi = (np.array(w).view(np.uint32) & np.uint32(0xFFFFF000)).view(np.float32)
    w_lo = np.float32(w - w_hi)
    wh, wl, fa = Fraction(float(w_hi)), Fraction(float(w_lo)), Fraction(float(a))
    out = []
    for k in ((out0 ^ out1) >> np.uint64(9)).ravel().tolist():
        f_hi, f_lo = Fraction((k >> 11) << 11, 2**23), Fraction(k & 0x7FF, 2**23)
        acc = round_f32(f_hi * wh + f_hi * wl)
        acc = round_f32(Fraction(float(acc)) + f_lo * wh)
        acc = round_f32(Fraction(float(acc)) + f_lo * wl)
        out.append(max(a, round_f32(Fraction(float(acc)) + fa)))
    return np.array(out, np.float32).reshape(shape)


def _first_above(bound: float, strict: bool) -> int:
    lo, hi = 0, 2**32
    while lo < hi:
        mid = (lo + hi) // 2
        v = float(quantile(np.array([mid]))[0])
        if v > bound or (not strict and v == bound):
            hi = mid
        else:
            lo = mid + 1
    return lo


def truncated_normal(
    key: tuple[int, int], shape: tuple[int, ...], lower: float, upper: float
) -> np.ndarray:
    lo32, hi32 = float(np.float32(lower)), float(np.float32(upper))
    start = 0 if lo32 == -np.inf else _first_above(lo32, True)
    stop = 2**32 if hi32 == np.inf else _first_above(hi32, False)
    width = stop - start
    out0, out1 = words(key, shape)
    if width == 2**32:
        u = out0
    else:  # floor(64-bit word * width / 2**64), with Python's exact integers
        flat = [
            start + (((int(a) << 32) | int(b)) * width >> 64)
            for a, b in zip(out0.ravel(), out1.ravel(), strict=True)
        ]
        u = np.array(flat, np.uint64).reshape(shape)
    z = quantile(u)
    lo = np.nextafter(np.float32(lower), np.float32(np.inf))
    hi = np.nextafter(np.float32(upper), np.float32(-np.inf))
    return np.clip(z, lo, hi)


def mul_add(x: np.ndarray, factor: float, shift: float) -> np.ndarray:
    """``x * factor + shift`` as the portable kernels compute it: both factors split into halves
    of at most 12 significant bits, the four exact products summed in order, then the shift,
    every sum rounded to float32."""

    def halves(v: np.float32) -> tuple[Fraction, Fraction]:
        hi = (np.array(v, np.float32).view(np.uint32) & np.uint32(0xFFFFF000)).view(np.float32)
        return Fraction(float(hi)), Fraction(float(v)) - Fraction(float(hi))

    f_hi, f_lo = halves(np.float32(factor))
    m = Fraction(float(np.float32(shift)))
    out = []
    for v in np.asarray(x, np.float32).ravel():
        x_hi, x_lo = halves(v)
        acc = round_f32(x_hi * f_hi + x_hi * f_lo)
        acc = round_f32(Fraction(float(acc)) + x_lo * f_hi)
        acc = round_f32(Fraction(float(acc)) + x_lo * f_lo)
        out.append(round_f32(Fraction(float(acc)) + m))
    return np.array(out, np.float32).reshape(np.shape(x))


# --- portable orthogonal: Householder reflectors with exact (Ozaki-split) products ---

BITS, LIMBS, CHUNK, BLOCK = 6, 5, 4096, 128
F32 = np.float32


def _split(x: np.ndarray, axis: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Slices of ``x``: powers of two put each row (``axis=1``) or column (``axis=0``) below
    ``2**BITS``; then ``LIMBS`` rounds of round-to-nearest-even and scale the rest up."""
    amax = np.max(np.abs(x), axis=axis, keepdims=True)
    _, e = np.frexp(amax)  # amax = f * 2**e, 0.5 <= f < 1 (e = 0 for amax = 0)
    e = np.where(amax == 0, -126, e)
    e = np.clip(e, -126 + BITS, 127)
    y = x * np.ldexp(F32(1), BITS - e).astype(F32)
    slices = []
    for _ in range(LIMBS):
        s = np.round(y)
        slices.append(s)
        y = ((y - s) * F32(2**BITS)).astype(F32)
    return slices, e


def _slice_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matmul per chunk of ``CHUNK`` terms (exact), the chunk sums added in float32."""
    out = None
    for c in range(0, a.shape[1], CHUNK):
        ints = a[:, c : c + CHUNK].astype(np.int64) @ b[c : c + CHUNK].astype(np.int64)
        part = ints.astype(F32)  # below 2**24: exact
        out = part if out is None else (out + part).astype(F32)
    return out


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sa, ea = _split(a, 1)
    sb, eb = _split(b, 0)
    out = np.zeros((a.shape[0], b.shape[1]), F32)
    for w in reversed(range(LIMBS)):
        for i in range(w + 1):
            out = (out + _slice_product(sa[i], sb[w - i]) * F32(2.0 ** (-BITS * w))).astype(F32)
    out = (out * np.ldexp(F32(1), ea - BITS).astype(F32)).astype(F32)
    return (out * np.ldexp(F32(1), eb - BITS).astype(F32)).astype(F32)


def orthogonal(key: tuple[int, int], m: int, k: int) -> np.ndarray:
    """The portable ``m x k`` (``m >= k``) Haar matrix: reflectors from the portable normal,
    accumulated backwards in blocks of ``BLOCK`` in compact WY form, ``T`` by LAPACK's
    ``larft`` recurrence; every product exact, every other operation one float32 rounding."""
    x = normal(key, (m, k))
    rows, cols = np.indices((m, k))
    ones = np.ones((1, m), F32)
    norm = np.sqrt(exact_matmul(ones, np.where(rows >= cols, x * x, F32(0)))[0])
    d = np.diagonal(x)
    sign = np.where(d >= 0, F32(1), F32(-1))
    head = np.where(norm == 0, F32(1), d + sign * norm)
    v = np.where(rows > cols, x, F32(0)) + np.where(rows == cols, head[None, :], F32(0))
    q = np.eye(m, k, dtype=F32)
    for a in reversed(range(0, k, BLOCK)):
        e = min(a + BLOCK, k)
        vb = v[a:, a:e]
        g = exact_matmul(vb.T, vb)
        b = g.shape[0]
        tau = F32(2) / np.diagonal(g)
        t = np.zeros((b, b), F32)
        for j in range(b):
            above = np.where(np.arange(b) < j, g[:, j], F32(0))
            t[:j, j] = (-tau[j] * exact_matmul(t, above[:, None])[:, 0])[:j]
            t[j, j] = tau[j]
        corner = q[a:, a:]
        w = exact_matmul(t, exact_matmul(vb.T, corner))
        q[a:, a:] = corner - exact_matmul(vb, w)
    return q * (-sign)[None, :]
