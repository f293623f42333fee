"""Exact least squares on the sufficient statistics (MATH.md sections 6.1 and 6.4).

``phi_hat = argmin sum ||y_t - Ahat(phi) z_t||^2`` over the data ``(z_t, y_t = J z_t + v_t)``
(:mod:`pipeline.models.fitted.statistics`) solves the normal equations

    G phi = b,   G_ab = trace(B_a' B_b S),   b_a = trace(B_a' ((J - A0) S + W))

(Jordan coordinates; ``C = J S + W``, so ``C - A0 S = (J - A0) S + W``). ``S`` has the
condition number of ``Sigmabar_T`` (``T^(2m)``, ``rho^(2T)``), and what the risk needs is
the fitted error ``Delta = J - Ahat``, ~``1 / scale`` in the unstable columns: float64
normal equations return garbage exactly there. So everything from the statistics on is
ball arithmetic (python-flint): the statistics enter exactly, the precision starts from
their dynamic range and is doubled until every ``phi`` and the risk carry
:data:`TARGET_BITS` certain bits, and ``phi`` and ``Delta`` stay balls for the risk (at
``1.1^70`` and beyond the risk depends on digits of ``phi`` far below float64's).

* Learners whose every ``B_i`` is one matrix unit in Jordan coordinates (``leading`` in a
  Jordan basis) separate into one small regression per row of ``Ahat``; others solve the
  ``d x d`` system of every requested prefix ``d`` (LU in balls).
* With fewer non-zero regressors than coordinates (``m (T - 1) < n``) the design can be
  rank deficient for a given basis (decided exactly, in rational arithmetic on the
  data): the fit is then the minimum-norm solution, computed exactly from the stored
  first steps, and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from flint import arb, arb_mat, fmpq, fmpq_mat
from numpy.typing import NDArray

from pipeline.models.fitted.problem import FitProblem
from pipeline.models.fitted.statistics import Moments
from pipeline.models.precision.context import PrecisionError

FloatArray = NDArray[np.float64]

TARGET_BITS = 64  # certain bits of every phi (relative to the largest) and of the risk
MAX_BITS = 1 << 16  # beyond this working precision a cell raises PrecisionError
MIN_BITS = 128

__all__ = [
    "MAX_BITS",
    "MIN_BITS",
    "TARGET_BITS",
    "ExactFit",
    "MinNorm",
    "PrecisionError",
    "arb_matrix",
    "delta",
    "design",
    "min_norm",
    "start_bits",
    "statistics",
]


def arb_matrix(x: FloatArray) -> Any:
    """An exact ``arb_mat`` of a 2-D float64 array."""
    rows, cols = x.shape
    return arb_mat(rows, cols, [float(v) for v in np.asarray(x, dtype=float).ravel()])


def _pow2(e: NDArray[np.int64]) -> Any:
    """``diag(2^e)`` as an exact ``arb_mat``."""
    n = int(e.size)
    D = arb_mat(n, n)
    for i, v in enumerate(e.tolist()):
        D[i, i] = arb(2) ** int(v)
    return D


def statistics(mo: Moments, j: int, i: int) -> tuple[Any, Any]:
    """``S`` and ``W`` of grid cell ``(T[j], m[i])`` as ``arb_mat`` (n x n), exact up to the
    current precision (``hi + lo`` may round when ``lo`` is far below ``hi``)."""
    D = _pow2(mo.e[j])
    S = D * (arb_matrix(mo.S_hi[j, i]) + arb_matrix(mo.S_lo[j, i])) * D
    W = (arb_matrix(mo.W_hi[j, i]) + arb_matrix(mo.W_lo[j, i])) * D
    return S, W


def start_bits(mo: Moments, j: int, i: int) -> int:
    """First working precision for cell ``(j, i)``: twice the dynamic range of ``diag(S)``
    in bits, plus margin (the condition number of ``S`` is at least that range). Integer
    exponents only, so the choice is the same on every machine."""
    d = np.diag(mo.S_hi[j, i])
    pos = d > 0
    if not np.any(pos):
        return MIN_BITS
    lg = np.frexp(d[pos])[1].astype(np.int64) + 2 * mo.e[j][pos]
    return int(MIN_BITS + 2 * int(lg.max() - lg.min()))


class ExactFit:
    """The normal equations of one problem at one ``(S, W)`` (``arb_mat``), for every prefix."""

    def __init__(self, problem: FitProblem, S: Any, W: Any):
        self.problem = problem
        n = problem.n
        self.n = n
        self.h = arb_matrix(problem.h.reshape(1, -1))
        if problem.E is None:
            H0 = arb_matrix(problem.h.reshape(n, n))
            self.R = H0 * S + W  # (J - A0) S + W, row r holds the right-hand sides of row r of Ahat
            self.S = S
            if problem.units is None:
                self.Pm = arb_matrix(problem.P)
                SP = _block_apply(S, problem.P, n)  # (I kron S) P
                self.G = self.Pm.transpose() * SP
                self.b = self.Pm.transpose() * _vec(self.R)
        else:
            E = problem.E
            K = E.shape[0]
            self.Pm = arb_matrix(problem.P)
            Ef = arb_matrix(E.reshape(K, n * n))
            ES = arb_mat(K, n * n)
            for r in range(n):  # (E_k S) rows: M_S[k, l] = sum_r E_k[r, :] S E_l[r, :]'
                Er = arb_matrix(E[:, r, :])
                block = Er * S
                for k in range(K):
                    for c in range(n):
                        ES[k, r * n + c] = block[k, c]
            MS = ES * Ef.transpose()
            w = Ef * _vec(W)
            self.G = self.Pm.transpose() * MS * self.Pm
            self.b = self.Pm.transpose() * (MS * self.h.transpose() + w)

    def solve(self, d: int) -> tuple[Any, Any]:
        """``(phi (d x 1), Delta (n x n))`` of the first ``d`` parameters; raises
        ``ZeroDivisionError`` when the balls cannot exclude a singular system."""
        p = self.problem
        if d == 0:
            return arb_mat(0, 1), self._delta(arb_mat(0, 1), 0)
        if p.E is None and p.units is not None:
            return self._solve_units(d)
        G = arb_mat(d, d, [self.G[a, c] for a in range(d) for c in range(d)])
        b = arb_mat(d, 1, [self.b[a, 0] for a in range(d)])
        phi = G.solve(b, algorithm="lu")
        return phi, self._delta(phi, d)

    def _solve_units(self, d: int) -> tuple[Any, Any]:
        assert self.problem.units is not None
        units = self.problem.units[:d]
        n = self.n
        Delta = arb_matrix(self.problem.h.reshape(n, n))
        phi = arb_mat(d, 1)
        groups: dict[tuple[int, ...], list[int]] = {}
        for r in range(n):
            cols = tuple(int(c) for c in units[units[:, 0] == r, 1])
            if cols:
                groups.setdefault(cols, []).append(r)
        index = {(int(r), int(c)): i for i, (r, c) in enumerate(units)}
        for cols, rows in groups.items():
            k = len(cols)
            Sc = arb_mat(k, k, [self.S[a, c] for a in cols for c in cols])
            rhs = arb_mat(k, len(rows), [self.R[r, a] for a in cols for r in rows])
            x = Sc.solve(rhs, algorithm="lu")
            for q, r in enumerate(rows):
                for a, c in enumerate(cols):
                    phi[index[(r, c)], 0] = x[a, q]
                    Delta[r, c] = Delta[r, c] - x[a, q]
        return phi, Delta

    def _delta(self, phi: Any, d: int) -> Any:
        return delta(self.problem, phi, d)


def delta(problem: FitProblem, phi: Any, d: int) -> Any:
    """``J - Ahat = sum_k (h - P[:, :d] phi)_k E_k`` (n x n ``arb_mat``) for ``phi`` (d x 1)."""
    n = problem.n
    coef = arb_matrix(problem.h.reshape(-1, 1))
    if d:
        coef = coef - arb_matrix(problem.P[:, :d]) * phi
    if problem.E is None:
        return arb_mat(n, n, [coef[k, 0] for k in range(n * n)])
    flat = arb_matrix(problem.E.reshape(problem.K, n * n)).transpose() * coef
    return arb_mat(n, n, [flat[k, 0] for k in range(n * n)])


def _vec(M: Any) -> Any:
    n = M.nrows()
    return arb_mat(n * M.ncols(), 1, [M[r, c] for r in range(n) for c in range(M.ncols())])


def _block_apply(S: Any, P: FloatArray, n: int) -> Any:
    """``(I_n kron S) P`` (n^2 x D) for row-major vec coordinates (``S`` symmetric)."""
    D = P.shape[1]
    stacked = arb_matrix(np.ascontiguousarray(P.reshape(n, n, D).transpose(1, 0, 2).reshape(n, n * D)))
    prod = S * stacked  # (n, n*D): column (r, i) holds S P[r-block][:, i]
    return arb_mat(n * n, D, [prod[c, r * D + i] for r in range(n) for c in range(n) for i in range(D)])


# ---------------------------------------------------------------------------
# too few data: the exact minimum-norm solution from the data themselves


@dataclass(frozen=True)
class MinNorm:
    """Exact minimum-norm least-squares fit: ``phi`` (rational), the design's rank."""

    phi: list[fmpq]
    rank: int


def _q(x: float) -> fmpq:
    num, den = float(x).as_integer_ratio()
    return fmpq(num, den)


def design(problem: FitProblem, z: FloatArray, v: FloatArray, d: int) -> tuple[FloatArray, FloatArray]:
    """Explicit design ``X`` (N n, d) and targets ``y`` (N n,) in float64 (oracles): rows
    ``(point, r)`` for regressors ``z`` (N, n) with noise ``v`` (N, n): ``X[(t, r), i] =
    (B_i z_t)[r]``, ``y = ((J - A0) z_t + v_t)[r]`` in Jordan coordinates."""
    B = problem.matrices(problem.P[:, :d].T)  # (d, n, n)
    H0 = problem.matrices(problem.h)
    X = np.einsum("irc,tc->tri", B, z).reshape(z.shape[0] * problem.n, d)
    y = (z @ H0.T + v).reshape(-1)
    return X, y


def min_norm(problem: FitProblem, z: FloatArray, v: FloatArray, d: int) -> MinNorm:
    """The minimum-norm solution of the fit on the points ``z`` (N, n), ``v`` (N, n), exactly
    (rational arithmetic on the float data)."""
    n = problem.n
    N = z.shape[0]
    if d == 0 or N == 0:
        return MinNorm([fmpq(0)] * d, 0)
    P = [[_q(problem.P[k, i]) for i in range(d)] for k in range(problem.K)]
    Em = None if problem.E is None else problem.E
    h = [_q(x) for x in problem.h]
    zq = [[_q(x) for x in row] for row in z]
    rows: list[list[fmpq]] = []
    ys: list[fmpq] = []
    for t in range(N):
        for r in range(n):
            coef = [_row_coef(Em, k, r, t, zq, n) for k in range(problem.K)]
            rows.append([sum((coef[k] * P[k][i] for k in range(problem.K)), fmpq(0)) for i in range(d)])
            ys.append(sum((coef[k] * h[k] for k in range(problem.K)), fmpq(0)) + _q(v[t, r]))
    X = fmpq_mat(len(rows), d, [x for row in rows for x in row])
    y = fmpq_mat(len(ys), 1, ys)
    return _min_norm_solve(X, y)


def _row_coef(E: FloatArray | None, k: int, r: int, t: int, zq: list[list[fmpq]], n: int) -> fmpq:
    """``(E_k z_t)[r]`` exactly."""
    if E is None:
        return zq[t][k % n] if k // n == r else fmpq(0)
    return sum((_q(E[k, r, c]) * zq[t][c] for c in range(n) if E[k, r, c] != 0.0), fmpq(0))


def _min_norm_solve(X: fmpq_mat, y: fmpq_mat) -> MinNorm:
    """``X^+ y`` exactly: a particular solution of the normal equations (free variables 0),
    minus its projection on the null space of ``X``."""
    d = X.ncols()
    Xt = X.transpose()
    A = Xt * X
    c = Xt * y
    aug = fmpq_mat(d, d + 1, [A[i, j] if j < d else c[i, 0] for i in range(d) for j in range(d + 1)])
    R, rank = aug.rref()
    pivots: list[int] = []
    for i in range(rank):
        j = next(j for j in range(d + 1) if R[i, j] != 0)
        pivots.append(j)
    phi = [fmpq(0)] * d
    for i, j in enumerate(pivots):
        phi[j] = R[i, d]
    free = [j for j in range(d) if j not in pivots]
    if free:
        N = fmpq_mat(d, len(free))
        for q, f in enumerate(free):
            N[f, q] = fmpq(1)
            for i, j in enumerate(pivots):
                N[j, q] = -R[i, f]
        p = fmpq_mat(d, 1, phi)
        Nt = N.transpose()
        corr = N * (Nt * N).solve(Nt * p)
        phi = [p[i, 0] - corr[i, 0] for i in range(d)]
    return MinNorm(phi, rank)
