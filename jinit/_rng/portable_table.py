"""How ``portable_table.npy`` (the portable normal sampler's coefficients) is made and checked.

The portable sampler (:mod:`jinit._rng.portable`) evaluates the normal quantile function with
integer arithmetic only. Its input is an odd 32-bit integer ``m``, the tail probability
``q = m / 2**33`` in (0, 1/2); its output is ``-Phi^-1(q)`` in fixed point with ``FRAC`` = 28
fractional bits. ``q`` is located by its *octave* ``e = clz(m)`` (``q`` in
``[2**-(e+2), 2**-(e+1))``) and by the ``SEGMENT_BITS`` = 6 bits that follow ``m``'s leading one
(64 segments per octave); within a segment a quadratic in the next ``X_BITS`` = 20 bits gives
the value. That is 32 x 64 segments x 3 coefficients per table, two tables: ``-Phi^-1(q)`` (for
``normal`` and ``truncated_normal``) and ``-Phi^-1(q) / sqrt(2)`` (the ``erf_inv`` form, the
draw that ``normal``'s grouped finish multiplies by ``sqrt(2) * stddev``).

The table is data, not code: it is computed once, here, from SciPy's double-precision
``ndtri`` (a development dependency), rounded to integers and shipped as ``portable_table.npy``,
so no host's ``libm`` can change a value. ``python -m jinit._rng.portable_table`` rebuilds it;
``tests/test_portable.py`` checks that the shipped file is what :func:`build` gives and that
every segment is accurate.
"""

from __future__ import annotations

import pathlib

import numpy as np

FRAC = 28  # fixed point of the output: value * 2**FRAC
SEGMENT_BITS = 6  # segments per octave: 2**SEGMENT_BITS
X_BITS = 20  # bits of the position within a segment that the quadratic sees
OCTAVES = 32
DEGREE = 2
PATH = pathlib.Path(__file__).with_name("portable_table.npy")
# |acc| bound of the Horner products (see _portable.mul_x): acc >> 12 times a 20-bit X < 2**31.
MUL_BOUND = 2**23


def _offset(e: int) -> float:
    """The mean of the 6 low bits of the octave fraction the quadratic does not see, in X units.

    ``t = m << (e + 1)`` (mod 2**32) with ``m`` odd: bit ``e + 1`` of ``t`` is set and bits
    ``0..e`` are clear. For ``e <= 4`` the unseen bits 0..5 average exactly 2**5 (half an X
    unit); for ``e >= 5`` they are all zero, so ``X`` is exact.
    """
    return 0.5 if e + 1 <= 32 - SEGMENT_BITS - X_BITS - 1 else 0.0


def build() -> np.ndarray:
    """The tables, int32 of shape (2, OCTAVES * 2**SEGMENT_BITS, DEGREE + 1): [form][segment][k].

    Each segment's quadratic interpolates the target at the three Chebyshev points of [0, 1] in the
    variable ``s = X / 2**X_BITS`` (shifted by :func:`_offset`), in double precision, and is
    rounded to ``FRAC`` fixed point.
    """
    from scipy.special import ndtri  # development dependency: only this builder needs it

    n = DEGREE + 1
    nodes = (np.cos((2 * np.arange(n) + 1) * np.pi / (2 * n)) + 1) / 2
    vander = np.vander(nodes, n, increasing=True)
    segs = 2**SEGMENT_BITS
    out = np.zeros((2, OCTAVES * segs, n), np.int64)
    for e in range(OCTAVES):
        off = _offset(e) / 2**X_BITS
        for j in range(segs):
            pos = (j + nodes + off) / segs  # position within the octave
            q = np.ldexp(1.0 + pos, -(e + 2))
            z = -ndtri(q)
            for form, values in enumerate((z, z / np.sqrt(2.0))):
                coef = np.linalg.solve(vander, values)
                out[form, e * segs + j] = np.rint(np.ldexp(coef, FRAC)).astype(np.int64)
    # Horner multiplies c1 + (...) by a 20-bit x: at most |c1| + |c2| < 2**23,
    # and c2 times a 16-bit x stays an exact int32 product.
    big = np.abs(out[..., 1:]).sum(-1).max() >= MUL_BOUND or np.abs(out[..., 2]).max() >= 2**15
    if big or np.abs(out).max() >= 2**31:
        raise AssertionError("portable table: a coefficient is outside the fixed-point bounds")
    return out.astype(np.int32)


def load() -> np.ndarray:
    """The shipped tables (see :func:`build`)."""
    return np.load(PATH)


if __name__ == "__main__":
    np.save(PATH, build())
    print(f"wrote {PATH}")
