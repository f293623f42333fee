"""Tests of pipeline.models.parametrisation.theory: learnable pairs, critical_d, growth (MATH.md §1.5).

The growth and boundedness of ``r_T`` are checked in mpmath with an independent doubling
``Sigmabar_T``, at 512 bits.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from pipeline.models import parametrisation as pm
from pipeline.models.spectra import (
    FAMILIES,
    critical_d_theory,
    family_dimension,
    parse_spectrum,
    random_orthogonal,
)
from tests.models.parametrisation.cases import SPECTRA


@pytest.fixture(autouse=True)
def _mp_precision():
    """mpmath at 512 bits for this module's tests, as a context (no other test sees it)."""
    with mp.workprec(512):
        yield


MATH_14 = {
    "1.0^2, 0.5": (4, 6, 4),
    "1.0^3": (9, 9, 6),
    "1.0^[1,1]": (4, 4, 0),
    "1.0^[2,1]": (9, 9, 4),
    "1.05@30": (2, 4, 2),
    "0.9^2, 0.5": (0, 0, 0),
}


@pytest.mark.parametrize("text", list(MATH_14))
def test_same_family_reproduces_math_table(text):
    for fam, ref in zip(FAMILIES, MATH_14[text], strict=False):
        assert pm.critical_d(text, fam, fam) == ref == critical_d_theory(parse_spectrum(text), fam)
        c = pm.criticality(text, fam, fam)
        assert c.learnable and c.growth_exponent is None


@pytest.mark.parametrize("text", SPECTRA)
def test_same_family_is_critical_d_theory(text):
    sp = parse_spectrum(text)
    for fam in FAMILIES:
        assert pm.critical_d(sp, fam, fam) == critical_d_theory(sp, fam)
    assert pm.critical_d(sp, "diagonal", "diagonal") == sp.n_unstable


def test_math_15_examples():
    assert pm.critical_d("1.0, 0.5", "block", "diagonal") == 1
    assert pm.critical_d("1.0^2, 0.5", "block", "diagonal") is None
    assert pm.never_growth_exponent("1.0^2, 0.5", "block", "diagonal") == 3.0
    assert pm.critical_d("1.0, 0.5", "full", "diagonal") is None
    assert pm.never_growth_exponent("1.0, 0.5", "full", "diagonal") == 1.0


@pytest.mark.parametrize("text", ["1.0", "1.0^[1,1]", "-1.2^[1,1,1]"])
def test_correction_zero_restriction_is_learnt_at_zero(text):
    """MATH 1.5 as written gives rank(L|V_u) here; the similarity family is {0}, so
    H = 0 and r_T(0) = 0: critical_d = 0."""
    sp = parse_spectrum(text)
    assert family_dimension(sp, "similarity") == 0
    for learner in pm.LEARNER_FAMILIES:
        assert pm.adversary_within_learner(sp, "similarity", learner)  # {0} lies in anything
        assert pm.critical_d(sp, "similarity", learner) == 0
        assert pm.restriction_rank(sp, learner) == (
            0 if learner == "similarity" else sp.n if learner == "diagonal" else sp.n**2
        )


def test_cube_fields_mask():
    c = pm.criticality("1.0^2, 0.5", "block", "diagonal")
    assert c.cube_fields() == (False, math.inf) and c.critical_d is None and c.growth_exponent == 3.0
    c = pm.criticality("1.0, 0.5", "block", "diagonal")
    assert c.cube_fields() == (True, 1.0) and c.learner_dimension == 2


# the workflow's spectra: (adversary, learner) -> critical_d, or ("never", g)
WORKFLOW = {
    "1.0, 0.5": {
        ("block", "diagonal"): 1,
        ("block", "block"): 1,
        ("block", "full"): 2,
        ("similarity", "diagonal"): ("never", 1),
        ("similarity", "block"): ("never", 1),
        ("similarity", "full"): 2,
    },
    "1.0, -1.0, 0.5": {
        ("block", "diagonal"): 2,
        ("block", "block"): 2,
        ("block", "full"): 6,
        ("similarity", "diagonal"): ("never", 1),
        ("similarity", "block"): ("never", 1),
        ("similarity", "full"): 6,
    },
    "1.0@45, 0.5": {
        ("block", "diagonal"): 2,
        ("block", "block"): 2,
        ("block", "full"): 6,
        ("similarity", "diagonal"): ("never", 1),
        ("similarity", "block"): ("never", 1),
        ("similarity", "full"): 6,
    },
    "1.0^2, 0.5": {
        ("block", "diagonal"): ("never", 3),
        ("block", "block"): 4,
        ("block", "full"): 6,
        ("similarity", "diagonal"): ("never", 3),
        ("similarity", "block"): ("never", 3),
        ("similarity", "full"): 6,
    },
    "1.0^3, 0.5": {
        ("block", "diagonal"): ("never", 5),
        ("block", "block"): 9,
        ("block", "full"): 12,
        ("similarity", "diagonal"): ("never", 5),
        ("similarity", "block"): ("never", 5),
        ("similarity", "full"): 12,
    },
    "1.0^[1,1], 0.5": {
        ("block", "diagonal"): ("never", 1),
        ("block", "block"): 4,
        ("block", "full"): 6,
        ("similarity", "diagonal"): ("never", 1),
        ("similarity", "block"): ("never", 1),
        ("similarity", "full"): 6,
    },
}


@pytest.mark.parametrize("text", list(WORKFLOW))
def test_workflow_table(text):
    for (adv, lrn), want in WORKFLOW[text].items():
        got = pm.critical_d(text, adv, lrn)
        if isinstance(want, tuple):
            assert got is None and pm.never_growth_exponent(text, adv, lrn) == want[1]
        else:
            assert got == want and pm.never_growth_exponent(text, adv, lrn) is None


@pytest.mark.parametrize("text", SPECTRA)
def test_growth_exponent_closed_forms(text):
    sp = parse_spectrum(text)
    e = pm.unstable_column_exponents(sp)
    if sp.n_unstable == 0:
        return
    if sp.n > 1:
        assert pm.never_growth_exponent(sp, "full", "diagonal") == e.max()
    if not (len(sp.groups) == 1 and not sp.groups[0].is_pair):
        assert pm.never_growth_exponent(sp, "full", "block") == e.max()
    u = list(sp.unstable_indices)
    heavy = [e[u.index(i)] for g in sp.groups if g.unstable and g.multiplicity > 1 for i in g.indices]
    assert pm.never_growth_exponent(sp, "block", "diagonal") == (max(heavy) if heavy else None)


@pytest.mark.parametrize("text", SPECTRA)
def test_column_exponents_match_sigmabar_growth(text):
    sp = parse_spectrum(text)
    J = sp.jordan_matrix()
    e = pm.unstable_column_exponents(sp)
    u = sp.unstable_indices
    S1, S2 = _mp_sigmabar(J, 10**4), _mp_sigmabar(J, 10**5)
    slope = np.array([float(mp.log(S2[i, i] / S1[i, i]) / mp.log(10)) for i in u])
    finite = np.isfinite(e)
    assert np.allclose(slope[finite], e[finite], atol=0.01)
    assert np.all(slope[~finite] > 100)


def _mp_sigmabar(J: np.ndarray, T: int) -> mp.matrix:
    """``Sigmabar_T = (1/T) sum_{s<T} (T-1-s) J^s J^s'`` by binary doubling:
    ``P = J^N``, ``S = sum_{s<N} J^s J^s'``, ``U = sum_{s<N} s J^s J^s'``."""
    n = J.shape[0]
    Jm = mp.matrix(J.tolist())
    P, S, U, N = mp.eye(n), mp.zeros(n, n), mp.zeros(n, n), 0
    for bit in bin(T)[2:]:
        S, U = S + P * S * P.T, U + P * (U + N * S) * P.T
        P, N = P * P, 2 * N
        if bit == "1":
            PP = P * P.T
            S, U, P, N = S + PP, U + N * PP, P * Jm, N + 1
    assert N == T
    return ((T - 1) * S - U) / T


def _mp_risk(H: np.ndarray, B: np.ndarray, Sig: mp.matrix) -> mp.mpf:
    """``min_phi tr((H - sum phi_i B_i) Sig (...)')`` (normal equations in mpmath)."""
    Hm = mp.matrix(H.tolist())
    Bm = [mp.matrix(M.tolist()) for M in B]

    def ip(X, Y):
        Z = X * Sig * Y.T
        return mp.fsum(Z[i, i] for i in range(Z.rows))

    r = ip(Hm, Hm)
    if not Bm:
        return r
    G = mp.matrix([[ip(X, Y) for Y in Bm] for X in Bm])
    b = mp.matrix([ip(X, Hm) for X in Bm])
    return r - (b.T * mp.lu_solve(G, b))[0]


def _draw(text: str, adversary: str, seed: int) -> np.ndarray:
    E = pm.learner_basis_structured(text, adversary).E
    z = np.random.default_rng(seed).standard_normal(len(E))
    H = np.einsum("q,qkl->kl", z, E)
    return H / np.linalg.norm(H)


GROWTH = [
    ("1.0, 0.5", "full", "diagonal", 1.0),
    ("1.0^2, 0.5", "block", "diagonal", 3.0),
    ("1.0^2", "similarity", "diagonal", 1.0),
    ("1.0^2, 0.5", "similarity", "diagonal", 3.0),
    ("1.0^3", "similarity", "diagonal", 5.0),
    ("1.0^2, 0.5", "diagonal", "similarity", 1.0),
    ("1.0@45, 0.5", "similarity", "block", 1.0),
    ("-1.0^2, 0.5", "full", "block", 3.0),
    ("1.0^[1,1]", "block", "similarity", 1.0),
    ("1.0^3, 0.5", "block", "similarity", 5.0),
    ("1.0@45^2", "block", "diagonal", 3.0),
]


@pytest.mark.parametrize("text, adv, lrn, g", GROWTH)
def test_never_growth_exponent_numerically(text, adv, lrn, g):
    assert pm.critical_d(text, adv, lrn) is None
    assert pm.never_growth_exponent(text, adv, lrn) == g
    J = parse_spectrum(text).jordan_matrix()
    H = _draw(text, adv, 7)
    B = pm.learner_basis_structured(text, lrn).E  # d = D_L: the span is all that matters
    T1, T2 = 10**5, 10**6
    r1, r2 = (_mp_risk(H, B, _mp_sigmabar(J, T)) for T in (T1, T2))
    slope = float(mp.log(r2 / r1) / mp.log(mp.mpf(T2) / T1))
    assert abs(slope - g) < 0.01, slope


def test_never_growth_exponential():
    text = "1.1, 0.5"
    assert pm.never_growth_exponent(text, "full", "diagonal") == math.inf
    J = parse_spectrum(text).jordan_matrix()
    H = _draw(text, "full", 3)
    B = pm.learner_basis_structured(text, "diagonal").E
    r1, r2 = (_mp_risk(H, B, _mp_sigmabar(J, T)) for T in (200, 400))
    # Sigmabar_T ~ rho^(2T) / (T (rho^2 - 1)^2): r_T ~ c rho^(2T) / T
    rate = float(mp.log(r2 * 400 / (r1 * 200)) / 200)
    assert abs(rate - 2 * math.log(1.1)) < 1e-6


CRITICAL = [
    ("1.0, 0.5", "block", "diagonal"),
    ("1.0@45, 0.5", "block", "diagonal"),
    ("1.0^2", "similarity", "block"),
    ("1.0^2", "full", "block"),
    ("1.0, -1.0, 0.5", "diagonal", "block"),
    ("1.0^[1,1], 0.5", "block", "full"),
]


@pytest.mark.parametrize("text, adv, lrn", CRITICAL)
def test_risk_bounded_exactly_from_critical_d(text, adv, lrn):
    c = pm.critical_d(text, adv, lrn)
    assert c is not None and c >= 1
    J = parse_spectrum(text).jordan_matrix()
    H = _draw(text, adv, 11)
    L = pm.learner_basis_structured(text, lrn).E
    B = np.einsum("ji,jkl->ikl", random_orthogonal(len(L), np.random.default_rng(5)), L)
    T1, T2 = 10**4, 10**5
    S1, S2 = _mp_sigmabar(J, T1), _mp_sigmabar(J, T2)
    for d, bounded in ((c - 1, False), (c, True)):
        r1, r2 = _mp_risk(H, B[:d], S1), _mp_risk(H, B[:d], S2)
        if bounded and max(abs(r1), abs(r2)) < mp.mpf(2) ** -400:
            continue  # H lies in span(B_1..B_d): r_T = 0 exactly
        slope = float(mp.log(r2 / r1) / mp.log(mp.mpf(T2) / T1))
        assert (abs(slope) < 0.01) if bounded else (slope > 0.5), (d, slope)
