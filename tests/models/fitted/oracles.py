"""Independent oracles for fitted learners: mpmath solves of the same statistics, an
mpmath ``Sigmabar`` by doubling, and the explicit design matrix in system coordinates."""

from __future__ import annotations

import mpmath as mp
import numpy as np

from pipeline.models.fitted.problem import FitProblem
from pipeline.models.fitted.statistics import Moments
from pipeline.models.simulation.fitted_states import trajectories
from tests.oracles import observed_mp


def mp_statistics(mo: Moments, j: int, i: int) -> tuple[mp.matrix, mp.matrix]:
    """``S``, ``W`` of cell ``(j, i)`` exactly (``hi + lo`` and the exponents) as mpmath matrices."""
    n = mo.n
    e = [int(x) for x in mo.e[j]]
    S = mp.matrix(n, n)
    W = mp.matrix(n, n)
    for a in range(n):
        for b in range(n):
            S[a, b] = mp.ldexp(mp.mpf(mo.S_hi[j, i, a, b]) + mp.mpf(mo.S_lo[j, i, a, b]), e[a] + e[b])
            W[a, b] = mp.ldexp(mp.mpf(mo.W_hi[j, i, a, b]) + mp.mpf(mo.W_lo[j, i, a, b]), e[b])
    return S, W


def _mpm(x: np.ndarray) -> mp.matrix:
    x = np.atleast_2d(np.asarray(x, dtype=float))
    M = mp.matrix(*x.shape)
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            M[a, b] = mp.mpf(float(x[a, b]))
    return M


def mp_fit(problem: FitProblem, S: mp.matrix, W: mp.matrix, d: int) -> tuple[list, mp.matrix]:
    """``phi`` (list of mpf) and ``Delta = J - Ahat`` (n x n) by the normal equations
    ``G_ab = <B_a, B_b S>``, ``b_a = <B_a, H0 S + W>`` built matrix by matrix."""
    n = problem.n
    Bs = [_combine(problem, problem.P[:, i]) for i in range(d)]
    H0 = _combine(problem, problem.h)
    R = H0 * S + W

    def inner(X: mp.matrix, Y: mp.matrix) -> mp.mpf:
        return mp.fsum(X[a, b] * Y[a, b] for a in range(n) for b in range(n))

    BS = [B * S for B in Bs]
    G = mp.matrix(d, d)
    rhs = mp.matrix(d, 1)
    for a in range(d):
        rhs[a] = inner(Bs[a], R)
        for c in range(d):
            G[a, c] = inner(Bs[a], BS[c])
    phi = mp.lu_solve(G, rhs) if d else mp.matrix(0, 1)
    Delta = H0.copy()
    for i in range(d):
        Delta = Delta - phi[i] * Bs[i]
    return [phi[i] for i in range(d)], Delta


def _combine(problem: FitProblem, coeffs: np.ndarray) -> mp.matrix:
    """``sum_k coeffs_k E_k`` exactly in mpmath (no float rounding of the combination)."""
    n = problem.n
    out = mp.matrix(n, n)
    for k, c in enumerate(coeffs):
        if c == 0.0:
            continue
        if problem.E is None:
            out[k // n, k % n] += mp.mpf(float(c))
            continue
        for a in range(n):
            for b in range(n):
                if problem.E[k, a, b] != 0.0:
                    out[a, b] += mp.mpf(float(c)) * mp.mpf(float(problem.E[k, a, b]))
    return out


def mp_sigmabar(J: np.ndarray, T: int) -> mp.matrix:
    """``(1/T) sum_{s<T} (T-1-s) J^s J^s'`` by doubling in mpmath (independent of flint)."""
    return observed_mp.mp_sigmabar(_mpm(J), int(T))


def mp_risk(J: np.ndarray, T: int, Delta: mp.matrix) -> mp.mpf:
    """``trace(Delta Sigmabar_T Delta')`` in mpmath."""
    M = Delta * mp_sigmabar(J, T) * Delta.T
    return mp.fsum(M[i, i] for i in range(M.rows))


def system_design(
    spectrum: str, seed: int, key: tuple, m: int, T: int, Q: np.ndarray, B: np.ndarray, A0: np.ndarray, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """The explicit regression in the system's coordinates, as a researcher would write it:
    rows ``(trajectory, t, r)``, columns ``(B_i x_t)[r]``, targets ``(x_(t+1) - A0 x_t)[r]``,
    with ``x_t = Q z_t``, ``x_(t+1) = A x_t + w_t``, ``w_t = Q v_t`` (floats)."""
    z, v = trajectories(spectrum, seed, key, m, T)
    from pipeline.models.spectra import parse_spectrum

    J = parse_spectrum(spectrum).jordan_matrix()
    A = Q @ J @ Q.T
    x = z[:, :T] @ Q.T  # (m, T, n)
    w = v @ Q.T
    y = x @ A.T + w - x @ A0.T
    X = np.einsum("irc,mtc->mtri", B[:d], x).reshape(-1, d)
    return X, y.reshape(-1)
