"""Learner families different from the adversary's (MATH.md section 1.5).

The rule of ``pipeline.models.parametrisation`` is checked against numbers computed
here from the definitions only: families built from ``A = Q J Q'`` itself
(generalised eigenspaces, the commutator map), Haar-rotated learner bases, generic
adversary directions, ``V_u`` from an ordered Schur form, and ``r_T`` evaluated in
mpmath with an independent doubling ``Sigmabar_T``.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.models import parametrisation as pm
from pipeline.models.spectra import (
    FAMILIES,
    critical_d_theory,
    family_dimension,
    parse_spectrum,
    random_orthogonal,
)

PAIRS = [(a, l) for a in pm.LEARNER_FAMILIES for l in pm.LEARNER_FAMILIES]
SPECTRA = [
    "1.0, 0.5",
    "1.0, -1.0, 0.5",
    "1.0@45, 0.5",
    "1.0^2, 0.5",
    "1.0^3, 0.5",
    "1.0^[1,1], 0.5",
    "1.0^[1,1]",
    "1.0",
    "1.05@30, 0.3^2",
    "1.0^[2,1], -0.6",
    "0.9@100^2",
    "0.6@30^2, 1.1, -1.0^2",
]


def _u(sp):
    return sp.unstable_indices


# ---------------------------------------------------------------------------
# the diagonal basis


@pytest.mark.parametrize("text", SPECTRA)
def test_diagonal_basis_structure(text):
    sp = parse_spectrum(text)
    n = sp.n
    fb = pm.diagonal_basis(text)
    E = fb.E
    assert E.shape == (n, n, n) and fb.D == n == pm.learner_dimension(sp, "diagonal")
    assert not E.flags.writeable
    gram = np.einsum("ikl,jkl->ij", E, E)
    assert np.array_equal(gram, gram.T) and np.allclose(gram, np.eye(n), rtol=0, atol=1e-15)
    # pattern: the diagonal, plus the antidiagonal of each pair's 2x2 coordinate unit
    allowed = np.eye(n, dtype=bool)
    for b in sp.blocks:
        if b.is_pair:
            for p in range(b.start, b.start + b.dim, 2):
                allowed[p, p + 1] = allowed[p + 1, p] = True
    assert np.all(E[:, ~allowed] == 0.0)
    for b in sp.blocks:
        if b.is_pair:
            for p in range(b.start, b.start + b.dim, 2):
                S = E[:, p : p + 2, p : p + 2]
                assert np.array_equal(S[:, 0, 0], S[:, 1, 1])
                assert np.array_equal(S[:, 0, 1], -S[:, 1, 0])
    # the span is exactly the diagonal / rotation-scaling pattern: dimension count
    assert n == sum(1 for b in sp.blocks for _ in range(b.dim))
    u, s = _u(sp), sp.stable_indices
    assert fb.d_star == sp.n_unstable == pm.restriction_rank(sp, "diagonal")
    assert np.all(E[: fb.d_star][:, :, s] == 0.0)
    assert np.all(E[fb.d_star :][:, :, u] == 0.0)
    assert np.all(np.abs(E[: fb.d_star][:, :, u]).sum(axis=(1, 2)) > 0)


def test_diagonal_basis_of_a_pair_is_rotation_scaling():
    E = pm.diagonal_basis("1.0@45").E
    c = 1 / math.sqrt(2)
    assert np.array_equal(E[0], [[c, 0], [0, c]])
    assert np.array_equal(E[1], [[0, -c], [c, 0]])
    J = parse_spectrum("1.0@45").jordan_matrix()
    # J itself lies in the diagonal family of a 1x1 pair
    coef = np.einsum("ikl,kl->i", E, J)
    assert np.allclose(np.einsum("i,ikl->kl", coef, E), J, atol=1e-15)


@pytest.mark.parametrize("text", SPECTRA)
@pytest.mark.parametrize("family", pm.LEARNER_FAMILIES)
def test_learner_basis_structured_and_ranks(text, family):
    sp = parse_spectrum(text)
    fb = pm.learner_basis_structured(sp, family)
    assert pm.learner_dimension(text, family) == fb.D
    if family != "diagonal":
        assert family_dimension(sp, family) == fb.D
    u = _u(sp)
    R = fb.E[:, :, u].reshape(fb.D, sp.n * len(u))
    rank = np.linalg.matrix_rank(R, tol=1e-9) if R.size else 0
    assert rank == fb.d_star == pm.restriction_rank(text, family)
    assert pm.restricted_family(text, family, u).shape[0] == rank


def test_unknown_family():
    with pytest.raises(ValueError, match="allowed block, full, similarity, diagonal"):
        pm.critical_d("1.0", "block", "lowrank")


# ---------------------------------------------------------------------------
# same family, MATH examples, the correction


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


# ---------------------------------------------------------------------------
# the rule against numerical ranks on hypothesis spectra


def _null_space(M: np.ndarray, tol: float, gap: float = 1e3) -> np.ndarray:
    """Orthonormal null-space basis (columns) of ``M``, demanding a clear gap."""
    _, s, Vh = np.linalg.svd(M)
    s = np.concatenate([s, np.zeros(Vh.shape[0] - len(s))])
    small = s <= tol
    assert not np.any((s > tol / gap) & (s < tol * gap)), f"no clear gap in {s}"
    return Vh[small].conj().T


def _range_space(M: np.ndarray, tol: float, gap: float = 1e3) -> np.ndarray:
    U, s, _ = np.linalg.svd(M)
    assert not np.any((s > tol / gap) & (s < tol * gap)), f"no clear gap in {s}"
    return U[:, : int(np.sum(s > tol))]


def _families_from_definitions(sp, A: np.ndarray, Q: np.ndarray) -> dict[str, np.ndarray]:
    """Orthonormal bases (k, n, n) of the four families of ``A`` from MATH 1.3/1.5,
    without the pipeline's structured bases."""
    n = sp.n
    units = np.eye(n * n).reshape(n * n, n, n)
    out = {"full": units}
    ad = np.array([(G @ A - A @ G).ravel() for G in units]).T
    out["similarity"] = _range_space(ad, 1e-9).T.reshape(-1, n, n)
    # block: real M leaving every complex generalised eigenspace ker (A - lam)^p invariant
    rows = []
    for g in sp.groups:
        b = next(bl for bl in sp.blocks if sp.groups[bl.group] is g)
        lams = [complex(b.real, b.imag)] + ([complex(b.real, -b.imag)] if g.is_pair else [])
        p = max(g.sizes)
        for lam in lams:
            K = _null_space(np.linalg.matrix_power(A - lam * np.eye(n), p), 1e-9)
            assert K.shape[1] == g.multiplicity
            Pc = np.eye(n) - K @ K.conj().T
            img = np.array([(Pc @ G @ K).ravel() for G in units]).T
            rows += [img.real, img.imag]
    out["block"] = _null_space(np.vstack(rows), 1e-9).T.reshape(-1, n, n)
    # diagonal: defined in Jordan coordinates, then rotated like A
    diag = []
    for b in sp.blocks:
        if not b.is_pair:
            for c in range(b.start, b.start + b.dim):
                M = np.zeros((n, n))
                M[c, c] = 1.0
                diag.append(M)
        else:
            for c in range(b.start, b.start + b.dim, 2):
                M = np.zeros((n, n))
                M[c, c] = M[c + 1, c + 1] = 1.0
                diag.append(M / math.sqrt(2))
                M = np.zeros((n, n))
                M[c + 1, c], M[c, c + 1] = 1.0, -1.0
                diag.append(M / math.sqrt(2))
    out["diagonal"] = np.einsum("ij,qjk,lk->qil", Q, np.array(diag), Q)
    for fam, E in out.items():
        gram = np.einsum("ikl,jkl->ij", E, E)
        assert np.allclose(gram, np.eye(len(E)), atol=1e-9), fam
        assert len(E) == pm.learner_dimension(sp, fam), fam
    return out


def _numerical_critical_d(B: np.ndarray, H: np.ndarray, Vu: np.ndarray) -> int | None:
    """Smallest ``d`` with ``H|V_u`` in ``span(B_1|V_u .. B_d|V_u)`` (``None``: no ``d <= D``).

    Gram-Schmidt (twice) on ``B_1|V_u, B_2|V_u, ..``: ``B_d`` raises the rank iff its
    component off the previous span is not roundoff; ``H|V_u`` is in the span iff its
    residual is roundoff. Both must show a clear gap (nothing between 1e-9 and 1e-6;
    ``|B_d| = 1`` and the residual is relative to ``|H|V_u|``).
    """
    h = (H @ Vu).ravel()
    hn = np.linalg.norm(h)
    if hn < 1e-12:
        return 0
    assert hn > 1e-6
    U = np.zeros((h.size, 0))
    res = h / hn
    for d in range(len(B) + 1):
        r = np.linalg.norm(res)
        assert r < 1e-9 or r > 1e-6, f"no clear gap: residual {r:.3g} at d={d}"
        if r < 1e-9:
            return d
        if d == len(B):
            return None
        b = (B[d] @ Vu).ravel()  # |B_d| = 1, so absolute thresholds
        for _ in range(2):
            b = b - U @ (U.T @ b)
        q = np.linalg.norm(b)
        assert q < 1e-9 or q > 1e-6, f"no clear gap: new direction {q:.3g} at d={d + 1}"
        if q > 1e-6:
            b /= np.linalg.norm(b)
            U = np.column_stack([U, b])
            for _ in range(2):
                res = res - b * (b @ res)


_real = st.sampled_from([0.5, -0.6, 0.2, 1.0, -1.0, 1.3, -1.4])
_pair = st.tuples(st.sampled_from([0.6, 1.0, 1.05]), st.sampled_from([45.0, 100.0, 150.0]))
_sizes = st.lists(st.integers(1, 3), min_size=1, max_size=3)
_term = st.one_of(st.tuples(_real, _sizes), st.tuples(_pair, _sizes))


def _text(terms) -> str:
    parts = []
    for eig, sizes in terms:
        e = f"{eig[0]}@{eig[1]}" if isinstance(eig, tuple) else f"{eig}"
        parts.append(e + (f"^{sizes[0]}" if len(sizes) == 1 else "^[" + ",".join(map(str, sizes)) + "]"))
    return ", ".join(parts)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_term, min_size=1, max_size=3), st.integers(0, 2**32 - 1))
def test_rule_against_numerical_rank(terms, seed):
    n = sum(sum(sz) * (2 if isinstance(e, tuple) else 1) for e, sz in terms)
    assume(n <= 8)
    sp = parse_spectrum(_text(terms))
    rng = np.random.default_rng(seed)
    Q = random_orthogonal(sp.n, rng)
    A = Q @ sp.jordan_matrix() @ Q.T
    _, Z, k = sla.schur(A, output="real", sort=lambda x, y=0.0: abs(complex(x, y)) > 0.85)
    assert k == sp.n_unstable
    Vu = Z[:, :k]
    fams = _families_from_definitions(sp, A, Q)
    for adv, lrn in PAIRS:
        F, L = fams[adv], fams[lrn]
        H = np.einsum("q,qkl->kl", rng.standard_normal(len(F)), F) if len(F) else np.zeros_like(A)
        H /= max(np.linalg.norm(H), 1e-300) if len(F) else 1.0
        B = np.einsum("ji,jkl->ikl", random_orthogonal(len(L), rng), L) if len(L) else L
        want = pm.critical_d(sp, adv, lrn)
        assert _numerical_critical_d(B, H, Vu) == want, (sp.text, adv, lrn)
        assert pm.structural_critical_d(sp, adv, lrn) == want
        assert pm.learnable(sp, adv, lrn) == (want is not None)
        g = pm.never_growth_exponent(sp, adv, lrn)
        assert (g is None) == (want is not None)
        if g is not None:
            e = pm.unstable_column_exponents(sp)
            assert g in set(e.tolist())


@pytest.mark.parametrize("text", SPECTRA)
def test_closed_form_containment_is_structural(text):
    sp = parse_spectrum(text)
    for adv, lrn in PAIRS:
        assert pm.adversary_within_learner(sp, adv, lrn) == pm.contained_on(sp, adv, lrn, _u(sp))


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


# ---------------------------------------------------------------------------
# r_T itself: growth exponent of never pairs, bounded at critical_d (mpmath)

mp.mp.prec = 512


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
