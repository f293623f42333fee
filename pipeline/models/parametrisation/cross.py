"""The exact risk of a learner family apart from the adversary's (MATH §1.5).

The exact kernel of :mod:`pipeline.models.observed` takes any learner basis in the
elementary working basis of all n x n matrices (its general path: the pivots of the
learner's unstable restriction reproduce ``H|V_u`` exactly when it lies in their
span, the rest goes through the weighted QR). Here both the learner's basis (in
``L``) and the adversary's directions (in ``F``) are first snapped onto their
families' structured bases in Jordan coordinates, so exact zeros and pair
symmetries are exact, whatever the stored basis change ``Q``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.models.observed.factor import risk_factor
from pipeline.models.observed.families import family_basis
from pipeline.models.observed.problems import Problem
from pipeline.models.observed.ranks import bounded_table
from pipeline.models.observed.risk import log2_risk
from pipeline.models.parametrisation.families import as_spectrum, check_family, learner_basis_structured
from pipeline.models.parametrisation.ranks import contained_on
from pipeline.models.spectra import Spectrum

__all__ = ["CrossProblem", "cross_bounded", "cross_log2_risk", "cross_problem"]


@dataclass(frozen=True)
class CrossProblem:
    """One (spectrum, adversary family ``F``, learner family ``L``) in Jordan coordinates.

    ``problem``: the observed kernel's problem in the elementary working basis
    (``P`` (n^2, D_L), ``h`` (N, n^2), ``Pinv`` None: the general path). ``whole``:
    ``F`` lies in ``L`` on every column, so ``r_T(D_L) = 0`` exactly.
    """

    problem: Problem
    whole: bool

    @property
    def D(self) -> int:
        """The learner's dimension ``D_L``."""
        return self.problem.D


def _snap(E: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``sum_j <E_j, M> E_j`` (n, n) for one matrix ``M`` (n, n): the orthogonal projection
    onto the span of the orthonormal structured basis ``E`` (k, n, n); fixed-shape products,
    so a matrix's bits never depend on how many share the call."""
    k, n, _ = E.shape
    if k == 0:
        return np.zeros((n, n))
    Et = E.reshape(k, n * n)
    c = Et @ M.reshape(n * n)
    out: np.ndarray = (c @ Et).reshape(n, n)
    return out


def cross_problem(
    spectrum: Spectrum | str, adversary: str, learner: str, B: np.ndarray, H: np.ndarray, Q: np.ndarray
) -> CrossProblem:
    """The problem of a learner basis ``B`` (D_L, n, n) of family ``learner`` against
    adversary directions ``H`` (N, n, n) of family ``adversary``, both stored in the
    coordinates of ``A = Q J Q'`` (``Q`` orthogonal (n, n)): each matrix is rotated to
    Jordan coordinates and projected onto its family's structured basis, then written in
    the elementary working basis of :func:`pipeline.models.observed.family_basis`
    ``(spectrum, "full")`` (a permutation of the entries, exact)."""
    check_family(adversary)
    check_family(learner)
    sp = as_spectrum(spectrum)
    n = sp.n
    Q = np.asarray(Q, dtype=float)
    EL = learner_basis_structured(sp, learner).E
    EF = learner_basis_structured(sp, adversary).E
    fw = family_basis(sp.text, "full")
    Ew = np.asarray(fw.E).reshape(n * n, n * n)
    DL, N = int(B.shape[0]), int(H.shape[0])
    P = np.zeros((n * n, DL))
    for i in range(DL):
        P[:, i] = Ew @ _snap(EL, Q.T @ B[i] @ Q).reshape(n * n)
    h = np.zeros((N, n * n))
    for q in range(N):
        h[q] = Ew @ _snap(EF, Q.T @ H[q] @ Q).reshape(n * n)
    whole = contained_on(sp, adversary, learner, np.arange(n)) if EF.shape[0] else True
    return CrossProblem(Problem(sp.text, "full", P, None, h, fw.d_star, Q), whole)


def cross_bounded(problem: CrossProblem) -> NDArray[np.bool_]:
    """``bounded[d, draw]`` (D_L + 1, N): ``H|V_u`` in ``span(B_1|V_u .. B_d|V_u)``
    (the rank criterion of MATH section 1.4, decided as the observed kernel does)."""
    return bounded_table(problem.problem.P, problem.problem.h, problem.problem.d_star)


def cross_log2_risk(problem: CrossProblem, T: int) -> NDArray[np.float64]:
    """``log2 r_T(d)`` for d = 0..D_L, shape (N, D_L + 1); ``-inf`` where the risk is
    exactly 0 (``T = 1``, ``H = 0``, or ``d = D_L`` when ``F`` lies in ``L``)."""
    p = problem.problem
    fac = risk_factor(p.text, "full", p.P, int(T))
    out = np.array(log2_risk(fac, None, p.h), dtype=np.float64)
    if problem.whole and p.D:
        out[:, p.D] = -np.inf
    return out
