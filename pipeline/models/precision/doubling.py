"""Sums of matrix powers by doubling, and the filter Riccati equation by doubling.

Each sum is formed from its halves (``O(n^3 log N)``) and only ever adds positive
semidefinite terms, so nothing cancels. The ball versions run at the current python-flint
precision (call them inside :func:`pipeline.models.precision.context.working_precision`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from flint import arb, arb_mat

from pipeline.models.precision.balls import amat, eye, max_abs
from pipeline.models.precision.context import PrecisionError

__all__ = ["ball_sigmabar", "ramp_sums", "riccati_doubling", "sigmabar", "sigmabar_loop"]

FloatArray = npt.NDArray[np.float64]


def sigmabar(A: npt.ArrayLike, T: int) -> FloatArray:
    """``Sigmabar_T = (1/T) sum_{s<T} (T-1-s) A^s A^s'`` by doubling (float64), (n, n).

    The time-averaged state covariance of ``x_{t+1} = A x_t + w_t`` from ``x_0 = 0`` over
    ``t = 0..T-1`` (units of the process-noise variance). Only sums of positive
    semidefinite terms are formed (no cancellation).
    """
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    T = int(T)
    if T < 1:
        raise ValueError("T must be >= 1")
    P, W, V, a = np.eye(n), np.zeros((n, n)), np.zeros((n, n)), 0
    for bit in bin(T)[2:]:
        if a:
            V = V + a * W + P @ V @ P.T
            W = W + P @ W @ P.T
            P = P @ P
            a *= 2
        if bit == "1":
            V = V + W
            W = W + P @ P.T
            P = P @ A
            a += 1
    out: FloatArray = V / T
    return out


def sigmabar_loop(A: npt.ArrayLike, T: int) -> FloatArray:
    """``Sigmabar_T`` by its O(T) definition (the oracle of :func:`sigmabar`), (n, n)."""
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    S, acc, P = np.zeros((n, n)), np.zeros((n, n)), np.eye(n)
    for _t in range(T):
        acc = acc + S  # sum_t Sigma_t, Sigma_0 = 0
        S = S + P @ P.T
        P = P @ A
    out: FloatArray = acc / T
    return out


def ball_sigmabar(J: FloatArray, T: int) -> arb_mat:
    """:func:`sigmabar` of a float64 matrix ``J`` (s, s) as a ball matrix at the current precision."""
    s = J.shape[0]
    Ja = arb_mat([[float(x) for x in row] for row in J])
    I = arb_mat([[1.0 if i == j else 0.0 for j in range(s)] for i in range(s)])
    P, W, V, a = I, arb_mat(s, s), arb_mat(s, s), 0
    for bit in bin(int(T))[2:]:
        if a:
            PT = P.transpose()
            V = V + W * a + P * V * PT
            W = W + P * W * PT
            P = P * P
            a *= 2
        if bit == "1":
            V = V + W
            W = W + P * P.transpose()
            P = P * Ja
            a += 1
    out: arb_mat = V / int(T)
    return out


def ramp_sums(A: arb_mat, K: arb_mat, S: arb, N: int) -> tuple[arb_mat, arb_mat, arb_mat]:
    """``(A^N K, X_N, Z_N)`` by doubling, for ``A`` (n, n), ``K`` (n, 1) and a scalar ``S``:

        X_N = sum_{i<N} A^i K S K' A^i',     Z_N = sum_{s=1..N} X_s = sum_{i<N} (N - i) A^i K S K' A^i'

    (the covariance of ``xhat_N`` and its running sum for ``xhat_{t+1} = A xhat_t + K e_t``,
    ``Var e = S``). Balls at the current precision.
    """
    n = A.nrows()
    P, X, Z = eye(n), arb_mat(n, n), arb_mat(n, n)
    L = 0
    for bit in bin(N)[2:] if N else "":
        if L:
            PT = P.transpose()
            Z = Z + X * L + P * Z * PT
            X = X + P * X * PT
            P = P * P
            L *= 2
        if bit == "1":
            u = P * K
            X = X + u * u.transpose() * S
            Z = Z + X
            P = A * P
            L += 1
    return P * K, X, Z


def riccati_doubling(A: FloatArray, C: FloatArray, r: float, bits: int) -> arb_mat:
    """Stabilising solution ``P`` (n, n) of ``P = A P A' - A P C' (C P C' + r)^-1 C P A' + I`` (midpoints).

    Structure-preserving doubling (Chu, Fan, Lin 2005) for ``X = Ad' X (I + G X)^-1 Ad + H``
    with ``Ad = A'``, ``G = C'C / r``, ``H = I``: ``H_j -> P`` with error ``~rho(F)^(2^(j+1))``.
    ``A`` (n, n), ``C`` (n,) the observation row, ``r > 0`` the observation-noise variance.
    Run at the current precision, ``bits``, on midpoints (a floating-point iteration; the
    caller checks accuracy through the Riccati residual). :class:`PrecisionError` if it does
    not converge in 200 steps.
    """
    n = A.shape[0]
    Ak = amat(A.T)
    G = amat(np.outer(C, C)) * (arb(1) / arb(r))
    H = eye(n)
    I = eye(n)
    tol = 2.0 ** (-(bits - 24))
    for _ in range(200):
        Minv = (I + G * H).inv()
        AM = Ak * Minv
        An = AM * Ak
        Gn = G + AM * G * Ak.transpose()
        Hn = H + Ak.transpose() * H * Minv * Ak
        diff = max_abs(Hn - H)
        Ak, G, H = An.mid(), Gn.mid(), Hn.mid()
        # symmetrise (the doubling preserves symmetry exactly only in exact arithmetic)
        G = ((G + G.transpose()) * arb(0.5)).mid()
        H = ((H + H.transpose()) * arb(0.5)).mid()
        if diff <= tol * max_abs(H):
            return H
    raise PrecisionError(f"Riccati doubling did not converge (noise_ratio = {r!r})")
