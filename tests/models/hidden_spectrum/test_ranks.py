"""Tests of pipeline.models.hidden_spectrum.ranks: the exact boundedness test and critical_k (MATH.md §5.4)."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.models import hidden_spectrum as hs
from pipeline.models.spectra import parse_spectrum
from tests.oracles import hidden_spectrum as orc


def test_best_fir_bounded_at_critical_k():
    """k >= n_u: R_T converges as T grows (1e6 .. 1e8), for marginal and rho > 1 parts."""
    for text in ("1.0^3", "1.0@60^2", "1.0, -1.0, 0.5", "1.02, 0.5"):
        nu = hs.n_unstable(text)
        out = hs.risk_block(text, [1.0], "best_fir", [nu, nu + 3], [10**6, 10**7, 10**8])["risk"][0]
        assert np.all(np.abs(out[:, 2] / out[:, 1] - 1) < 1e-3), (text, out)
        below = hs.risk_block(text, [1.0], "best_fir", [nu - 1], [10**6, 10**8])["log10_risk"][0, 0]
        assert below[1] > below[0] + 1


# spectra for hypothesis: observable (one block per |lam| >= 1), real and complex, Jordan blocks, stable parts
_unstable_term = st.one_of(
    st.tuples(st.sampled_from(["1.0", "-1.0", "1.02", "-1.05"]), st.integers(1, 3)),
    st.tuples(st.sampled_from(["1.0@60", "1.0@135", "1.03@20"]), st.integers(1, 2)),
)


_stable_term = st.tuples(st.sampled_from(["0.5", "-0.3", "0.9", "0.6@45", "0.0"]), st.integers(1, 2))


@st.composite
def observable_spectra(draw):
    unstable = draw(st.lists(_unstable_term, max_size=3, unique_by=lambda t: t[0]))
    stable = draw(st.lists(_stable_term, max_size=2))
    terms = [f"{e}^{m}" if m > 1 else e for e, m in unstable + stable]
    if not terms:
        terms = ["0.5"]
    terms = draw(st.permutations(terms))
    text = ", ".join(terms)
    sp = parse_spectrum(text)
    if sp.n > 10:
        text = ", ".join(terms[:2])
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=observable_spectra())
def test_critical_k_matches_theory(text):
    assert hs.critical_k(text, "best_fir") == hs.critical_k_theory(text, "best_fir")
    assert hs.critical_k(text, "truncated_kalman") == hs.critical_k_theory(text, "truncated_kalman")
    nu = hs.n_unstable(text)
    ks = np.arange(0, nu + 4)
    np.testing.assert_array_equal(hs.bounded(text, "best_fir", ks), ks >= nu)


def _bounded_from_kalman(text, r, k):
    """The same criterion in the innovations coordinates (depends on r through F): is
    ``(F^k' C')_u`` in the span of ``(F^(k-i)' C')_u``, i = 1..k? Rank test in mpmath."""
    sp = parse_spectrum(text)
    u = [int(i) for i in sp.unstable_indices]
    f = hs.kalman_filter(text, r)
    with mp.workdps(60):
        A, C = orc.system(text)
        _, _, _, F = orc.mp_kalman(A, C, r)
        cols = []
        w = orc._mpm(C[:, None])
        for _ in range(k + 1):
            cols.append([w[i] for i in u])
            w = F.T * w
        assert f.closed_loop_radius < 1

        def rank(vecs):
            if not vecs:
                return 0
            M = mp.matrix([[v[i] for v in vecs] for i in range(len(u))])
            s = mp.svd_r(M, compute_uv=False)
            return sum(1 for x in s if x > mp.mpf(10) ** -30 * max(s))

        return rank(cols[:k]) == rank(cols[: k + 1])


@pytest.mark.slow
@pytest.mark.parametrize("text", ["1.0^2, 0.5", "1.0@60, 0.5", "1.0, -1.0, 0.3", "1.02^2", "1.0@30, 1.0^2"])
def test_bounded_independent_of_noise_ratio(text):
    ks = list(range(0, hs.n_unstable(text) + 3))
    exact = hs.bounded(text, "best_fir", ks)
    for r in (0.01, 1.0, 100.0, 1e4):
        assert [_bounded_from_kalman(text, r, k) for k in ks] == exact.tolist(), r


def test_truncated_error_never_vanishes_on_unstable_modes():
    """truncated_kalman is unbounded for n_u > 0: C F^k does not vanish on the unstable coordinates."""
    for text in ("1.0^2, 0.5", "1.0@60", "1.0, -1.0", "1.02, 0.9"):
        u = parse_spectrum(text).unstable_indices
        for r in (0.01, 1.0, 100.0):
            f = hs.kalman_filter(text, r)
            w = f.C.copy()
            for k in range(1, 40):
                w = f.F.T @ w
                assert np.linalg.norm(w[u]) > 1e-3 * np.linalg.norm(w), (text, r, k)
    assert not hs.bounded("1.0^2, 0.5", "truncated_kalman", [0, 5, 64]).any()
    assert hs.bounded("0.9^2", "truncated_kalman", [0, 5]).all()
