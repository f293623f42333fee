"""Exact risk of a fitted learner, and the bias (its ``m -> infinity`` limit).

* ``R_T(Ahat) = trace(Delta Sigmabar_T Delta')``, ``Delta = J - Ahat`` in Jordan coordinates
  (MATH.md sections 1.2 and 6.1; the risk is invariant under ``A = Q J Q'``), on a fresh
  trajectory. ``Sigmabar_T`` is block diagonal over the Jordan blocks; each block comes in
  ball arithmetic from :func:`pipeline.models.precision.doubling.ball_sigmabar` (doubling, exact ``J``),
  at the working precision of the fit, so the risk of a ball ``Delta`` is a certified ball.
* The bias ``r_T(d)`` of MATH.md section 1.3 with this nominal model and basis (for
  ``nominal = "zero"`` the "perturbation" is ``J`` itself, unnormalised) comes from the
  exact best-in-class kernel of :mod:`pipeline.models.observed` (row-scaled Cholesky
  factors of ``Sigmabar_T``, pivoted splits, Householder QR with per-row exponents).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from flint import arb, arb_mat, ctx
from numpy.typing import NDArray

from pipeline.models.fitted.problem import FitProblem
from pipeline.models.observed import bounded_table, family_basis, log2_risk, log2_risk_general
from pipeline.models.observed import risk_factor as _observed_factor
from pipeline.models.precision.context import working_precision
from pipeline.models.precision.doubling import ball_sigmabar
from pipeline.models.spectra import parse_spectrum

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_LOG2_10 = float(np.log2(10.0))


@lru_cache(maxsize=256)
def _sigmabar(text: str, T: int, prec: int) -> Any:
    """``Sigmabar_T`` (n x n ``arb_mat``, block diagonal) at ``prec`` bits (call inside
    :func:`pipeline.models.precision.context.working_precision` with that precision)."""
    if ctx.prec != prec:
        raise RuntimeError(f"Sigmabar requested at {prec} bits inside a {ctx.prec}-bit context")
    sp = parse_spectrum(text)
    n = sp.n
    J = sp.jordan_matrix()
    out = arb_mat(n, n)
    for b in sp.blocks:
        s = slice(b.start, b.start + b.dim)
        Sb = ball_sigmabar(J[s, s], int(T))
        for i in range(b.dim):
            for j in range(b.dim):
                out[b.start + i, b.start + j] = Sb[i, j]
    return out


def risk_of(text: str, T: int, prec: int, Delta: Any) -> Any:
    """``trace(Delta Sigmabar_T Delta')`` (an ``arb``) for ``Delta`` (n x n ``arb_mat``)."""
    return (Delta * _sigmabar(text, int(T), int(prec)) * Delta.transpose()).trace()


def log10(x: Any) -> float:
    """``log10`` of a positive ``arb`` as float64 (``-inf`` for an exact zero)."""
    if x.is_zero():
        return float("-inf")
    return float(x.log() / arb(10).log())


# ---------------------------------------------------------------------------
# the bias: the exact best-in-class kernel


def _observed_form(problem: FitProblem) -> tuple[str, FloatArray, FloatArray, int]:
    """The problem in the working basis of :func:`pipeline.models.observed.risk_factor`:
    ``(family, P (K, D), h (K,), d_star)``."""
    text = problem.text
    n = problem.n
    if problem.E is not None:
        for fam in ("block", "full", "similarity"):
            fb = family_basis(text, fam)
            if fb.D == problem.K and np.array_equal(np.asarray(fb.E), problem.E):
                return fam, problem.P, problem.h, fb.d_star
        raise ValueError("the problem's working basis is no family basis of the observed kernel")
    fb = family_basis(text, "full")
    E = np.asarray(fb.E).reshape(n * n, n * n)
    perm = np.argmax(E, axis=1)  # unit k of the observed order is row-major unit perm[k]
    return "full", problem.P[perm], problem.h[perm], fb.d_star


def _spans_target(problem: FitProblem) -> bool:
    """Whether ``h`` lies in the span of all ``D`` learner directions (then ``r_T(D) = 0``)."""
    if problem.D == 0:
        return not np.any(problem.h)
    P = problem.P
    sv = np.linalg.svd(P, compute_uv=False)
    r = int(np.sum(sv > 1e-9 * sv[0]))
    if r == problem.K:
        return True
    sv2 = np.linalg.svd(np.column_stack([P, problem.h]), compute_uv=False)
    return int(np.sum(sv2 > 1e-9 * sv2[0])) == r


def bias_log2(problem: FitProblem, T: int) -> FloatArray:
    """``log2 r_T(d)`` for ``d = 0..D`` (D + 1,): the exact best-in-class risk of the first
    ``d`` learner directions (``-inf`` where it is exactly 0)."""
    fam, P, h, _ = _observed_form(problem)
    with working_precision(ctx.prec):  # hold the lock while the observed kernel sets its own precision
        fac = _observed_factor(problem.text, fam, P, int(T))
    if problem.E is not None and problem.K == problem.D:
        out = np.asarray(log2_risk(fac, P.T.copy(), h[None, :])[0], dtype=np.float64)
    else:
        out = np.asarray(log2_risk_general(fac, h[None, :])[0], dtype=np.float64)
    if _spans_target(problem):
        out[problem.D] = -np.inf
    return out


def bias_bounded(problem: FitProblem) -> BoolArray:
    """``bounded[d]`` (D + 1,): ``lim_T r_T(d) < inf`` (the rank criterion of MATH.md 1.4)."""
    _, P, h, d_star = _observed_form(problem)
    return np.asarray(bounded_table(P, h[None, :], d_star)[:, 0], dtype=bool)


def bias_log10(problem: FitProblem, T: int) -> FloatArray:
    """``log10 r_T(d)`` for ``d = 0..D`` (D + 1,), see :func:`bias_log2`."""
    return np.asarray(bias_log2(problem, T) / _LOG2_10)
