"""Tests of pipeline.models.parametrisation.ranks and the rule it checks (MATH.md §1.5).

The rule is checked against numbers computed here from the definitions only: families
built from ``A = Q J Q'`` itself (generalised eigenspaces, the commutator map), Haar-rotated
learner bases, generic adversary directions and ``V_u`` from an ordered Schur form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.models import parametrisation as pm
from pipeline.models.spectra import (
    parse_spectrum,
    random_orthogonal,
)
from tests.models.parametrisation.cases import PAIRS, SPECTRA, _u


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
