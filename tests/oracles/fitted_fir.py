"""Test oracles of pipeline.models.fitted_fir (MATH §6.2), independent of its derivation.

* :func:`exact_normal_equations` — ``G``, ``b`` of the zero-padded least-squares problem in the
  ORIGINAL lag basis, summed exactly: every float output becomes an integer times a common power
  of two, lagged products and their prefix sums are Python integers (no rounding at all).
* :func:`mp_theta` — ``G^-1 b`` in mpmath at a precision that covers the condition number.
* :func:`design_matrix` — the explicit zero-padded design ``(X, y)`` for statsmodels ``OLS``.
* :func:`float_normal_equations` — what a researcher would write: float64 ``X' X`` and
  ``np.linalg.solve`` (the method that fails on marginal systems).
* :func:`mp_scalar_identity` — the literal O(T) ``D_u`` identity of MATH §2.3 in mpmath for the
  scalar system, with an mpmath Kalman solution.
"""

from __future__ import annotations

import itertools
import math

import mpmath as mp
import numpy as np


def _integers(Y: np.ndarray) -> tuple[list[list[int]], int]:
    """``Y = I 2^e`` exactly: integer rows and the common exponent ``e``."""
    mant, ex = np.frexp(Y)
    nz = mant != 0
    e = int(np.min(ex[nz]) - 53) if nz.any() else 0
    rows = []
    for mr, er in zip(mant, ex, strict=True):
        rows.append(
            [int(float(mm) * 2.0**53) << (int(ee) - 53 - e) if mm else 0 for mm, ee in zip(mr, er, strict=True)]
        )
    return rows, e


def exact_normal_equations(Y: np.ndarray, k: int, T: int) -> tuple[list[list[int]], list[int], int]:
    """``(G, b, scale)`` with the exact ``G_jl = sum_i sum_{t=1..T} y_{t-j} y_{t-l}`` and
    ``b_j = sum_i sum_t y_t y_{t-j}`` equal to ``G 2^scale``, ``b 2^scale`` (Python integers).

    ``Y`` (m, >= T + 1) the float outputs ``y_0 ..`` of ``m`` trajectories; ``k <= T``.
    """
    I, e = _integers(np.asarray(Y, dtype=np.float64)[:, : T + 1])
    # P[l][N] = sum_i sum_{u=0..N} y_u y_{u+l}
    P = []
    for l in range(k + 1):
        tot = [0] * (T + 1 - l)
        for row in I:
            prods = itertools.accumulate(row[u] * row[u + l] for u in range(T + 1 - l))
            tot = [a + b for a, b in zip(tot, prods, strict=True)]
        P.append(tot)
    G = [[P[abs(j - l)][T - max(j, l)] for l in range(1, k + 1)] for j in range(1, k + 1)]
    b = [P[j][T - j] for j in range(1, k + 1)]
    return G, b, 2 * e


def mp_theta(Y: np.ndarray, k: int, T: int, dps: int = 0) -> list[mp.mpf]:
    """The exact least-squares filter of the float data, solved in mpmath (``k <= T``)."""
    G, b, _ = exact_normal_equations(Y, k, T)
    dps = dps or 60 + 8 * k + int(6 * math.log10(T + 1))
    with mp.workdps(dps):
        th = mp.lu_solve(mp.matrix(G), mp.matrix(b))
        return [+th[i] for i in range(k)]


def design_matrix(Y: np.ndarray, k: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """The explicit zero-padded design: rows ``(y_{t-1}, .., y_{t-k})`` and targets ``y_t``,
    ``t = 1 .. T``, stacked over trajectories: ``X`` (m T, k), ``z`` (m T,)."""
    rows, targets = [], []
    for y in np.asarray(Y, dtype=np.float64):
        X = np.zeros((T, k))
        for j in range(1, min(k, T) + 1):  # columns j > T stay zero
            X[j - 1 :, j - 1] = y[: T + 1 - j]
        rows.append(X)
        targets.append(y[1 : T + 1])
    return np.concatenate(rows), np.concatenate(targets)


def float_normal_equations(Y: np.ndarray, k: int, T: int) -> np.ndarray:
    """float64 normal equations ``(X'X) theta = X'y`` solved by ``numpy.linalg.solve``."""
    X, z = design_matrix(Y, k, T)
    return np.linalg.solve(X.T @ X, X.T @ z)


def mp_scalar_kalman(lam: float, r: float) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    lam_, r_ = mp.mpf(lam), mp.mpf(r)
    b = r_ * (1 - lam_**2) - 1
    P = (-b + mp.sqrt(b * b + 4 * r_)) / 2
    K = lam_ * P / (P + r_)
    return P, K, lam_ - K


def mp_scalar_identity(lam: float, r: float, theta: list, T: int) -> mp.mpf:
    """``R_T(theta)`` of the scalar system by the literal O(T) identity of MATH §2.3 (mpmath)."""
    P, K, a = mp_scalar_kalman(lam, r)
    lam_, r_ = mp.mpf(lam), mp.mpf(r)
    th = [mp.mpf(t) for t in theta]
    tot_d = tot_c = D = mp.mpf(0)
    g = K
    for j in range(1, T + 1):
        c = g - (th[j - 1] if j <= len(th) else 0)
        D = lam_ * D + c
        tot_d += (P + (T - j)) * D * D
        tot_c += (T - j + 1) * c * c
        g *= a
    return (tot_d + r_ * tot_c) / T
