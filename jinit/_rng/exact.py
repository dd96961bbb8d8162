r"""Matrix products whose float32 result does not depend on the machine: Ozaki's splitting.

A float32 ``a @ b`` is summed in whatever order the backend's kernel picks, and that kernel is
chosen at run time from the CPU's features (jax's CPU QR calls LAPACK from SciPy's OpenBLAS,
built ``DYNAMIC_ARCH``: an AVX-512 and an AVX2 machine run different kernels, and
``OPENBLAS_CORETYPE=Haswell`` turns one into the other). Rounded sums in another order give
other last bits. This module makes every product *exact*, so that the order cannot matter:

* each row of ``a`` (each column of ``b``) is scaled by a power of two to ``|x| < 2**BITS``,
  then cut into ``LIMBS`` integer-valued slices of at most ``BITS + 1`` bits each (round to the
  nearest integer, keep the remainder, scale it up by ``2**BITS``; every step is exact);
* a slice product sums integers of at most ``2 * BITS`` bits over at most ``CHUNK`` terms, so
  every partial sum is an integer below ``2**24``: exactly representable in float32, whatever
  the order, blocking, FMA use or vector width, and exact in bfloat16/TF32 input passes too;
* the slice products (longer contractions: the chunks) are scaled back by powers of two and
  added in one fixed order (element-wise additions, which no backend reassociates).

Only the pairs of slices whose weight is at least ``2**(-BITS * (LIMBS - 1))`` are multiplied
(``LIMBS * (LIMBS + 1) / 2 = 15`` products): what is dropped lies below float32's rounding of the
row-max times column-max scale. With 4 slices (10 products) a 1024-square Householder draw lost
orthogonality to ``2.5e-5``; with 5 it keeps ``max |Q^T Q - I|`` at ``2.6e-7`` (LAPACK's QR here:
``6e-7``), for about 6x the time of jax's QR at n = 1024 on a CPU (``python -m bench orthogonal``).

Reference: K. Ozaki, T. Ogita, S. Oishi, S. M. Rump, "Error-free transformations of matrix
multiplication by using fast routines of matrix multiplication and its applications",
Numerical Algorithms 59 (2012).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from jinit._typing import Array

BITS = 6  # significant bits per slice (a slice is an integer in [-2**BITS, 2**BITS])
LIMBS = 5  # slices per value: 5 * 6 = 30 bits, past float32's 24
CHUNK = 2 ** (24 - 2 * BITS)  # terms per exact sum: 4096 * 2**12 = 2**24


def _pow2(e: Array) -> Array:
    """``2.0**e`` for integer ``e`` in [-126, 127], built from the exponent bits (exact)."""
    return lax.bitcast_convert_type((e + 127).astype(np.int32) << 23, np.float32)


def _split(x: Array, axis: int) -> tuple[list[Array], Array]:
    """``x = 2**e * sum_i s_i * 2**(-BITS * i)`` with integer-valued slices ``s_i``.

    ``e`` is one exponent per index of the other axis (``axis`` is the contraction axis), the
    smallest with ``max |x| < 2**e`` there. What is below the last slice is dropped.
    """
    amax = jnp.max(jnp.abs(x), axis=axis, keepdims=True)  # a max: exact in any order
    biased = (lax.bitcast_convert_type(amax, np.int32) >> 23) & 0xFF
    e = jnp.clip(biased - 126, -126 + BITS, 127)  # amax < 2**(biased - 126) for normal amax
    y = x * _pow2(BITS - e)
    slices = []
    for _ in range(LIMBS):
        s = jnp.round(y)  # to nearest, ties to even
        slices.append(s)
        y = (y - s) * 2.0**BITS  # y - round(y) is exact in binary floating point
    return slices, e


def _chunked(a: Array, b: Array) -> Array:
    """``a @ b`` for integer-valued slices, exact per ``CHUNK`` of the contraction; the chunk
    sums added in order of their index. The default precision is enough: a slice is an integer
    of at most 7 bits, exact in a bfloat16 or TF32 input pass."""
    k = a.shape[1]
    if k <= CHUNK:
        return jnp.matmul(a, b)
    pad = -k % CHUNK
    a = jnp.pad(a, ((0, 0), (0, pad))).reshape(a.shape[0], -1, CHUNK)
    b = jnp.pad(b, ((0, pad), (0, 0))).reshape(-1, CHUNK, b.shape[1])
    parts = jnp.einsum("mck,ckn->cmn", a, b)
    out = parts[0]
    for c in range(1, parts.shape[0]):
        out = out + parts[c]
    return out


def matmul(a: Array, b: Array) -> Array:
    """float32 ``a @ b`` (2-D), the same bits on every machine and backend (see the module)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"`exact.matmul` needs (m, k) @ (k, n); got {a.shape} @ {b.shape}.")
    sa, ea = _split(a.astype(np.float32), axis=1)
    sb, eb = _split(b.astype(np.float32), axis=0)
    out = jnp.zeros((a.shape[0], b.shape[1]), np.float32)
    # smallest weights first; within a weight, in order of a's slice
    for w in reversed(range(LIMBS)):
        for i in range(w + 1):
            out = out + _chunked(sa[i], sb[w - i]) * 2.0 ** (-BITS * w)
    # 2**(ea + eb - 2 BITS) in two exact steps (each factor is within float32's range)
    return out * _pow2(ea - BITS) * _pow2(eb - BITS)
