"""One (spectrum, family, learner) as coefficients in a working basis, and what is computed from it.

A :class:`Problem` is assembled from the matrices a cube stores (any learner basis, the
adversary's draws, the basis change) or from the seed; the exact log risk, the boundedness
table and the best-in-class residual matrices are computed from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.models.observed.draws import learner_coefficients, perturbation_coefficients
from pipeline.models.observed.factor import risk_factor
from pipeline.models.observed.families import family_basis
from pipeline.models.observed.ranks import bounded_table
from pipeline.models.observed.risk import best_coefficients, log2_risk
from pipeline.models.spectra import parse_spectrum

__all__ = [
    "Problem",
    "bounded",
    "exact_log2_risk",
    "problem_from_matrices",
    "problem_from_seed",
    "residual_matrices",
]

FloatArray = NDArray[np.float64]


@dataclass
class Problem:
    """One (spectrum, family, learner): coefficients in the working basis.

    ``P`` (K, D) learner basis, ``h`` (N, K) perturbations; ``Pinv`` (D, K) the inverse of
    ``P`` when the learner spans the adversary's family (``None`` otherwise); ``d_star``
    working-basis elements on the unstable columns.
    """

    text: str
    family: str
    P: FloatArray  # (K, D)
    Pinv: FloatArray | None
    h: FloatArray  # (N, K)
    d_star: int
    Q: FloatArray

    @property
    def D(self) -> int:
        return int(self.P.shape[1])


def problem_from_matrices(text: str, family: str, B: FloatArray, H: FloatArray, Q: FloatArray) -> Problem:
    """Project stored learner basis ``B`` (D, n, n) and perturbations ``H`` (N, n, n) of
    the adversary's ``family`` into Jordan coordinates (``A = Q J Q'``).

    ``H`` is snapped exactly into the family. ``B`` is snapped into it too when it lies
    in it (residual <= 1e-8); any other real learner basis (another family, any span) is
    kept as it is, in the elementary basis of all matrices.
    """
    fb = family_basis(text, family)
    DF = fb.D
    n = fb.E.shape[-1]
    Q = np.asarray(Q, dtype=float)
    Et = np.asarray(fb.E).reshape(DF, n * n)
    DL = B.shape[0]
    BJ = np.zeros((DL, n * n))
    for i in range(DL):  # per matrix: a matrix's bits never depend on how many share the call
        BJ[i] = (Q.T @ B[i] @ Q).reshape(n * n)
    h = np.zeros((H.shape[0], DF))
    for q in range(H.shape[0]):
        h[q] = Et @ (Q.T @ H[q] @ Q).reshape(n * n) if DF else h[q]
    P = np.zeros((DF, DL))
    for i in range(DL):
        P[:, i] = Et @ BJ[i] if DF else P[:, i]
    inside = DL == 0 or (DF > 0 and float(np.max(np.abs(BJ - P.T @ Et))) <= 1e-8)
    if inside:
        Pinv: FloatArray | None = None
        if DL == DF:
            Pinv = np.linalg.inv(P).astype(np.float64) if DF else P.T.copy()
        return Problem(text, family, P, Pinv, h, fb.d_star, Q)
    fw = family_basis(text, "full")
    Ew = np.asarray(fw.E).reshape(n * n, n * n)
    Pw = np.zeros((n * n, DL))
    for i in range(DL):
        Pw[:, i] = Ew @ BJ[i]
    hw = np.zeros((H.shape[0], n * n))
    for q in range(H.shape[0]):
        hw[q] = Ew @ (Et.T @ h[q]) if DF else hw[q]
    return Problem(text, family, Pw, None, hw, fw.d_star, Q)


def problem_from_seed(text: str, family: str, seed: int, draws: int | NDArray[np.int64]) -> Problem:
    """The pipeline's learner and draws for (spectrum, family, seed), in Jordan coordinates."""
    fb = family_basis(text, family)
    P = learner_coefficients(text, family, seed)
    h = perturbation_coefficients(text, family, seed, draws)
    Pinv = P.T.copy() if fb.D else P
    return Problem(text, family, P, Pinv, h, fb.d_star, np.eye(parse_spectrum(text).n))


def exact_log2_risk(problem: Problem, T_values: Sequence[int] | NDArray[np.int64]) -> FloatArray:
    """``log2 r_T(d)``, shape (len(T), D+1, N)."""
    out = []
    for T in T_values:
        fac = risk_factor(problem.text, problem.family, problem.P, int(T))
        out.append(log2_risk(fac, problem.Pinv, problem.h).T)
    return np.array(out).reshape(len(T_values), problem.D + 1, problem.h.shape[0])


def bounded(problem: Problem) -> NDArray[np.bool_]:
    """``bounded[d, draw]`` (D+1, N)."""
    return bounded_table(problem.P, problem.h, problem.d_star)


def residual_matrices(problem: Problem, B: FloatArray, T: int, draw_index: int) -> FloatArray:
    """``Delta(d)`` for d = 0..D (D+1, n, n) with the exact best-in-class ``phi``."""
    D = problem.D
    n = B.shape[-1] if D else problem.Q.shape[0]
    if D == 0:
        return np.zeros((1, n, n))
    if problem.Pinv is None:
        raise NotImplementedError("residual matrices need a learner whose span holds H")
    fac = risk_factor(problem.text, problem.family, problem.P, int(T))
    h = problem.h[draw_index : draw_index + 1]
    out = np.zeros((D + 1, n, n))
    for d in range(D + 1):
        c = best_coefficients(fac, problem.Pinv, h, d)[0]
        out[d] = np.einsum("i,ikl->kl", c, B)
    return out
