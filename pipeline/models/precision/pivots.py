"""Columns split, in order, into pivots and exact combinations of earlier pivots.

Used where a few directions carry weights ``2^1000`` heavier than the rest: the columns that
add nothing new are replaced by combinations whose heavy part is exactly zero, so the huge
weights never meet a roundoff that should have been zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = ["PIVOT_TOL", "PivotSplit", "dot", "pivot_split", "pivot_split_uncached"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

PIVOT_TOL = 1e-8  # a column adds a direction iff its residual exceeds this


@dataclass(frozen=True)
class PivotSplit:
    """Columns of a matrix ``C`` (Ku, D) split by whether they add a new direction.

    ``pivot[j]``: column ``j`` adds a new direction. ``X[k, j]`` (pivot ``k`` before ``j``,
    ``j`` not a pivot): ``C[:, j] = sum_k X[k, j] C[:, k]``, so ``B'_j = B_j - sum_k X[k, j] B_k``
    has an exactly zero image. ``Qc`` (Ku, r) is an orthonormal basis of the pivots' span in
    pivot order, ``Rc`` (r, r) with ``C[:, pivots] = Qc Rc``. The arrays of a cached split
    are read-only.
    """

    pivot: NDArray[np.bool_]  # (D,)
    X: FloatArray  # (D, D)
    Qc: FloatArray  # (Ku, r)
    Rc: FloatArray  # (r, r)

    @property
    def order(self) -> IntArray:
        """Indices of the pivot columns, in order, shape (r,)."""
        out: IntArray = np.flatnonzero(self.pivot).astype(np.int64)
        return out


def dot(a: FloatArray, b: FloatArray) -> float:
    """``sum_i a_i b_i`` of two vectors by one fixed-order reduction."""
    return float(np.einsum("i,i->", a, b))


def pivot_split(C: FloatArray, tol: float = PIVOT_TOL) -> PivotSplit:
    """Cached :func:`pivot_split_uncached` (keyed by the bits of ``C``; read-only arrays)."""
    C = np.ascontiguousarray(C, dtype=float)
    return _pivot_split_cached(C.tobytes(), C.shape, float(tol))


@lru_cache(maxsize=64)
def _pivot_split_cached(data: bytes, shape: tuple[int, ...], tol: float) -> PivotSplit:
    split = pivot_split_uncached(np.frombuffer(data, dtype=np.float64).reshape(shape), tol)
    for array in (split.pivot, split.X, split.Qc, split.Rc):
        array.setflags(write=False)
    return split


def pivot_split_uncached(C: FloatArray, tol: float = PIVOT_TOL) -> PivotSplit:
    """Split the columns of ``C`` (Ku, D) in order (Gram-Schmidt, twice) into pivots and
    combinations of earlier pivots (see :class:`PivotSplit`)."""
    Ku, D = C.shape
    pivot = np.zeros(D, dtype=bool)
    X = np.zeros((D, D))
    Q = np.zeros((Ku, min(Ku, D)))
    Rc = np.zeros((min(Ku, D), min(Ku, D)))
    piv_idx: list[int] = []
    r = 0
    for j in range(D):
        v = C[:, j].copy()
        coef = np.zeros(r)
        for _pass in range(2):
            if r == 0:
                break
            c = np.einsum("kr,k->r", Q[:, :r], v)
            v = v - np.einsum("kr,r->k", Q[:, :r], c)
            coef += c
        nv = math.sqrt(dot(v, v))
        if nv > tol and r < Ku:
            Q[:, r] = v / nv
            Rc[:r, r] = coef
            Rc[r, r] = nv
            pivot[j] = True
            piv_idx.append(j)
            r += 1
        elif r:
            from scipy.linalg import solve_triangular  # imported here: workers need it, the CLI does not

            x = solve_triangular(Rc[:r, :r], coef, lower=False)
            X[piv_idx, j] = x
    return PivotSplit(pivot, X, Q[:, :r].copy(), Rc[:r, :r].copy())
