"""Ball (python-flint ``arb``) matrices: conversions to and from numpy, and factors.

Every function that does arithmetic must run inside
:func:`pipeline.models.precision.context.working_precision` (conversions of float64 values
are exact at any precision; :func:`log10` sets its own).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from flint import arb, arb_mat

from pipeline.models.precision.context import DEFAULT_BITS, working_precision

__all__ = ["amat", "eye", "log10", "max_abs", "row_scaled", "to_np", "upper_cholesky"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def amat(X: npt.ArrayLike) -> arb_mat:
    """The exact ball matrix of a float64 array (a 1-D array is one row)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    return arb_mat([[float(v) for v in row] for row in X])


def eye(n: int) -> arb_mat:
    """The ``n x n`` identity as a ball matrix."""
    out = arb_mat(n, n)
    for i in range(n):
        out[i, i] = 1
    return out


def to_np(M: arb_mat) -> FloatArray:
    """The float64 midpoints of a ball matrix, shape ``(nrows, ncols)``."""
    return np.array([[float(M[i, j].mid()) for j in range(M.ncols())] for i in range(M.nrows())])


def max_abs(M: arb_mat) -> float:
    """The largest absolute midpoint of a ball matrix (a float64 number)."""
    return max(abs(float(M[i, j].mid())) for i in range(M.nrows()) for j in range(M.ncols()))


def log10(v: arb) -> float:
    """``log10`` of a non-negative ball's value as float64 (``-inf`` for an exact zero),
    evaluated at :data:`DEFAULT_BITS`."""
    if v.is_zero():
        return -math.inf
    with working_precision(DEFAULT_BITS):
        return float((v.log() / arb(10).log()).mid())


def upper_cholesky(S: arb_mat) -> list[list[arb]] | None:
    """Rows of the upper Cholesky factor ``R`` (``S = R' R``) of a symmetric ball matrix
    ``S`` (s, s) at the current precision; ``None`` when a pivot is not certainly positive."""
    s = S.nrows()
    R: list[list[arb]] = [[arb(0) for _ in range(s)] for _ in range(s)]
    for i in range(s):
        d = S[i, i] - sum((R[k][i] * R[k][i] for k in range(i)), arb(0))
        if not d > 0:
            return None
        R[i][i] = d.sqrt()
        for j in range(i + 1, s):
            R[i][j] = (S[i, j] - sum((R[k][i] * R[k][j] for k in range(i)), arb(0))) / R[i][i]
    return R


def _man_exp(x: Any) -> tuple[int, int]:
    m, e = x.mid().man_exp()
    return int(m), int(e)


def row_scaled(rows: list[list[arb]], certain_bits: int) -> tuple[FloatArray, IntArray, bool]:
    """Ball rows (s, s) as float64 mantissas and per-row power-of-two exponents.

    Returns ``mant`` (s, s) with every row's largest entry in ``[0.5, 1)``, ``exps`` (s,) with
    ``row[i] = mant[i] 2^exps[i]``, and whether every entry is certain to ``certain_bits``
    relative to its row's largest. An all-zero row raises ``ArithmeticError``.
    """
    s = len(rows)
    mant = np.zeros((s, s))
    exps = np.zeros(s, dtype=np.int64)
    ok = True
    for i, row in enumerate(rows):
        me = [_man_exp(x) for x in row]
        top = max((e + m.bit_length() for m, e in me if m), default=None)
        if top is None:
            raise ArithmeticError(f"row {i} of the factor is exactly zero (a singular matrix)")
        exps[i] = top
        for j, (m, e) in enumerate(me):
            if m:
                shift = max(0, m.bit_length() - 62)
                mant[i, j] = math.ldexp(float(m >> shift), e + shift - top)
        for x in row:
            rad_m, rad_e = _man_exp(x.rad())
            if rad_m and rad_e + rad_m.bit_length() > top - certain_bits:
                ok = False
    return mant, exps, ok
