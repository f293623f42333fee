"""Householder QR of a matrix whose rows carry their own power-of-two exponents.

``Y = diag(2^e) Y0``: row ``i`` is the float64 mantissa row ``Y0[i]`` times ``2^e[i]``, so
rows ``2^1000`` apart in scale live side by side without overflow. The QR works in the
given column order with row pivoting on the absolute magnitude, renormalising a row's
exponent as it shrinks or grows: row-wise backward stable, so light rows keep their
relative accuracy next to heavy ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.models.precision.pivots import dot

__all__ = ["RENORM", "Reflection", "apply_reflections", "householder", "renormalise"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

RENORM = 2.0**64  # rows are renormalised when their mantissas leave [2^-64, 2^64]


@dataclass(frozen=True)
class Reflection:
    """One Householder step: rows ``rows`` (with exponents ``exps`` then), scaled
    vector ``sv`` (units ``2^emax``), denominator ``den``, local vector ``vloc``."""

    rows: IntArray
    exps: IntArray
    emax: int
    sv: FloatArray
    den: float
    vloc: FloatArray
    pivot_row: int


def renormalise(Y: FloatArray, e: IntArray, rows: IntArray, start: int) -> None:
    """Move the scale of ``rows`` of ``Y[:, start:]`` whose largest mantissa left
    ``[1/RENORM, RENORM]`` into their exponents ``e`` (in place)."""
    if rows.size == 0 or start >= Y.shape[1]:
        return
    blk = Y[rows, start:]
    mx = np.max(np.abs(blk), axis=1)
    bad = (mx > RENORM) | ((mx < 1.0 / RENORM) & (mx > 0))
    if not bad.any():
        return
    sel = rows[bad]
    _, ex = np.frexp(mx[bad])
    Y[sel, start:] = np.ldexp(Y[sel, start:], -ex[:, None])
    e[sel] += ex.astype(np.int64)


def householder(Y0: FloatArray, e0: IntArray) -> tuple[FloatArray, IntArray, IntArray, list[Reflection]]:
    """QR of ``Y = diag(2^e0) Y0`` (m, D) in column order with row pivoting.

    Returns ``mant`` (D, D) and ``exp2`` (D,) with ``R[i, :] = mant[i, :] 2^exp2[i]``
    (upper, ``Y' Y = R' R``), the pivot row of every step (D,), and the reflections.
    ``ArithmeticError`` if a column depends on the earlier ones or the scales overflow.
    """
    Y = np.array(Y0, dtype=float)
    e = np.array(e0, dtype=np.int64)
    m, D = Y.shape
    active = np.ones(m, dtype=bool)
    mant = np.zeros((D, D))
    exp2 = np.zeros(D, dtype=np.int64)
    prow = np.zeros(D, dtype=np.int64)
    refl: list[Reflection] = []
    for j in range(D):
        col = Y[:, j]
        rows = np.flatnonzero(active & (col != 0.0)).astype(np.int64)
        if rows.size == 0:
            raise ArithmeticError(f"column {j} depends on the earlier columns in the row-weighted metric")
        cI = col[rows]
        _, ex = np.frexp(cI)
        emax = int(np.max(ex.astype(np.int64) + e[rows]))
        s = np.ldexp(cI, (e[rows] - emax).astype(np.int64))
        ip = int(np.argmax(np.abs(s)))
        p = int(rows[ip])
        sig = math.copysign(math.sqrt(dot(s, s)), float(s[ip]))
        sv = s.copy()
        sv[ip] += sig
        den = sig * float(sv[ip])
        vloc = cI.copy()
        vloc[ip] = math.ldexp(float(sv[ip]), emax - int(e[p]))
        if j + 1 < D:
            sub = Y[rows, j + 1 :]
            w = sv * np.ldexp(1.0, (e[rows] - emax).astype(np.int64))
            if np.all(np.isfinite(w)):
                gam = np.einsum("i,ij->j", w, sub) / den
            else:  # rows far heavier than this column's entries: scale the block instead
                t = sub * np.ldexp(1.0, (e[rows] - emax).astype(np.int64))[:, None]
                gam = np.einsum("i,ij->j", sv, t) / den
            sub -= np.multiply.outer(vloc, gam)
            Y[rows, j + 1 :] = sub
        Y[rows, j] = 0.0
        Y[p, j] = math.ldexp(-sig, emax - int(e[p]))
        refl.append(Reflection(rows, e[rows].copy(), emax, sv, den, vloc, p))
        row = Y[p, j:]
        mx = float(np.max(np.abs(row)))
        _, rex = math.frexp(mx)
        mant[j, j:] = np.ldexp(row, -rex)
        exp2[j] = int(e[p]) + rex
        prow[j] = p
        active[p] = False
        renormalise(Y, e, rows[rows != p], j + 1)
    if not (np.all(np.isfinite(mant)) and np.all(np.isfinite(Y))):
        raise ArithmeticError("weighted QR over- or underflowed")
    return mant, exp2, prow, refl


def apply_reflections(refl: list[Reflection], y: FloatArray, ey: IntArray) -> None:
    """Apply the reflections to one vector ``diag(2^ey) y`` in place (renormalised)."""
    for rf in refl:
        yI = y[rf.rows]
        t = np.ldexp(yI, (ey[rf.rows] - rf.emax).astype(np.int64))
        gam = dot(rf.sv, t) / rf.den
        if gam == 0.0:
            continue
        new = yI - gam * np.ldexp(rf.vloc, (rf.exps - ey[rf.rows]).astype(np.int64))
        fr, ex = np.frexp(new)
        y[rf.rows] = fr
        ey[rf.rows] += ex.astype(np.int64)
