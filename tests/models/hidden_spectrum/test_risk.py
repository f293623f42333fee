"""Tests of pipeline.models.hidden_spectrum.risk and .cells: the exact kernel (MATH.md §0, §5.2, §5.3, §5.5).

Oracles (tests/oracles/hidden_spectrum.py) are independent of the production derivation:
a float64 joint-covariance propagation (easy cells), and the literal D_u identity as a
brute-force k x k quadratic in theta in mpmath, either summed term by term (moderate T)
or with closed-form matrix-doubling tails (T up to 1e8).
"""

from __future__ import annotations

import math
from functools import cache

import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.models import hidden
from pipeline.models import hidden_spectrum as hs
from pipeline.models.hidden_spectrum import cells as hs_cells
from pipeline.models.hidden_spectrum import kalman as hs_kalman
from pipeline.models.spectra import parse_spectrum
from tests.oracles import hidden_spectrum as orc
from tests.references import ACROSS_MACHINES, assert_as_printed

LEARNERS = hs.LEARNERS


def _one(text, r, learner, k, T):
    out = hs.risk_block(text, [r], learner, [k], [T])
    return float(out["risk"][0, 0, 0]), float(out["log10_risk"][0, 0, 0])


def _mp_ref(text, r, k, T, closed=None, extra_dps=0):
    A, C = orc.system(text)
    with mp.workdps(orc.oracle_dps(text, r, k, T) + extra_dps):
        tr, best, th = orc.mp_risks(A, C, r, k, T, closed=closed)
        return +tr, +best, [+t for t in th]


def _check_close(text, r, learner, k, T, ref, rel):
    risk, lg = _one(text, r, learner, k, T)
    ref_lg = float(mp.log10(ref))
    assert lg == pytest.approx(ref_lg, rel=1e-14, abs=1e-13), (text, learner, k, T, lg, ref_lg)
    if ref < mp.mpf("1e300"):
        e = float(abs(mp.mpf(risk) / ref - 1))
        assert e <= rel, (text, r, learner, k, T, risk, ref, e)
        return e
    assert risk == math.inf
    return 0.0


def test_reference_truncated_table():
    out = hs.risk_block("1.0^2", [1.0], "truncated_kalman", [1, 2], [2, 10, 1000])["risk"][0]
    ref = np.array([[0.0395118861848, 1.92296645334, 4915882.41615], [0.0, 6.67234156017, 10905624.1124]])
    assert out[1, 0] == 0.0
    np.testing.assert_allclose(out[ref > 0], ref[ref > 0], rtol=1e-11)


def test_reference_best_fir():
    risk, _ = _one("1.0^2", 1.0, "best_fir", 2, 50)
    assert risk == pytest.approx(2.05209378822, rel=1e-11)
    th = hs.best_fir_theta("1.0^2", 1.0, 2, 50)
    np.testing.assert_allclose(th, [1.67077617363, -0.657809408583], rtol=1e-10)
    A, C = orc.system("1.0^2")
    with mp.workdps(orc.oracle_dps("1.0^2", 1.0, 2, 50)):
        exact = orc.mp_risk_at(A, C, 1.0, th, 50)  # at the kernel's own theta
        assert abs(mp.mpf(risk) / exact - 1) <= ACROSS_MACHINES
    # the float64 oracle only to what its own rounding honours (~9e-11 here: h' Sigma_t h cancels)
    rtol = orc.float_covariance_risk_rtol(A, C, 1.0, th, 50)
    assert orc.float_covariance_risk(A, C, 1.0, th, 50) == pytest.approx(risk, rel=rtol)


def test_reference_complex_pair_with_stable_mode():
    np.testing.assert_array_equal(hs.observation_matrix("1.0@60, 0.5"), [1, 0, 1])
    assert_as_printed(_one("1.0@60, 0.5", 4.0, "truncated_kalman", 3, 100)[0], "7.716331413527", "truncated_kalman")
    assert_as_printed(_one("1.0@60, 0.5", 4.0, "best_fir", 2, 100)[0], "5.0240831484675", "best_fir")


SCALAR_K = list(range(1, 33))


SCALAR_T = [1, 2, 3, 10, 33, 100, 1000, 10**4, 10**5, 10**6, 10**7, 10**8]


@pytest.mark.parametrize("lam", [0.5, 0.9, 1.0, 1.02])
def test_scalar_agrees_with_hidden(lam):
    rs = [0.1, 1.0, 10.0, 100.0]
    worst = 0.0
    for learner in LEARNERS:
        a = hs.risk_block(repr(lam), rs, learner, SCALAR_K, SCALAR_T)
        b = hidden.risk_block([lam], rs, learner, SCALAR_K, SCALAR_T)
        ra, rb = a["risk"], b["risk"][0]
        la, lb = a["log10_risk"], b["log10_risk"][0]
        zero = rb == 0
        assert np.array_equal(zero, ra == 0) and np.all(la[lb == -np.inf] == -np.inf)
        fin = np.isfinite(lb)
        np.testing.assert_allclose(la[fin], lb[fin], rtol=1e-12, atol=1e-12)
        ok = (rb > 1e-300) & np.isfinite(rb)
        e = np.max(np.abs(ra[ok] / rb[ok] - 1))
        worst = max(worst, e)
        assert e <= 1e-12, (lam, learner, e)
        assert np.array_equal(np.isinf(ra), np.isinf(rb))
    print(f"lam={lam}: max rel err vs pipeline.models.hidden {worst:.1e}")


def test_scalar_theta_agrees_with_hidden():
    for lam in (0.9, 1.0, 1.02):
        for r, k, T in ((4.0, 2, 50), (0.1, 5, 1000), (100.0, 8, 10**6)):
            np.testing.assert_allclose(
                hs.best_fir_theta(repr(lam), r, k, T), hidden.best_fir_theta(lam, r, k, T), rtol=1e-10, atol=1e-13
            )
            np.testing.assert_allclose(
                hs.kalman_fir(repr(lam), r, k), hidden.kalman_fir(lam, r, k), rtol=1e-13, atol=1e-300
            )


EASY_SPECTRA = ["0.9^2", "1.0", "1.0^2", "1.0@60, 0.5", "0.5, -0.7", "1.0, 0.5^2", "-1.0, 0.3@120"]


@pytest.mark.parametrize("text", EASY_SPECTRA)
def test_against_float64_covariance_oracle(text):
    A, C = orc.system(text)
    rs, ks, Ts = [0.1, 1.0, 10.0], [1, 2, 5], [1, 2, 3, 7, 20, 100, 300]
    if parse_spectrum(text).n_unstable > 1:
        Ts = Ts[:5]  # beyond, the float64 oracle itself loses ~1e-8 on best_fir (the mp tests cover these)
    worst = 0.0
    for learner in LEARNERS:
        out = hs.risk_block(text, rs, learner, ks, Ts)["risk"]
        for ri, r in enumerate(rs):
            for ki, k in enumerate(ks):
                for ni, T in enumerate(Ts):
                    got = out[ri, ki, ni]
                    if k >= T:
                        assert got == 0.0
                        continue
                    th = (
                        orc.float_kalman_fir(A, C, r, k)
                        if learner == "truncated_kalman"
                        else hs.best_fir_theta(text, r, k, T)
                    )
                    ref = orc.float_covariance_risk(A, C, r, th, T)
                    if ref < 1e-6:
                        # the oracle's absolute error floor (h' Sigma h cancels); such cells are in the mp tests
                        assert abs(got - ref) < 1e-13, (text, learner, r, k, T, got, ref)
                        continue
                    e = abs(got / ref - 1)
                    worst = max(worst, e)
                    assert e < 1e-9, (text, learner, r, k, T, got, ref)
    print(f"{text}: max rel err vs float64 covariance oracle {worst:.1e}")


def test_best_fir_is_the_minimum_float_oracle():
    """Perturbing best_fir theta in any direction raises the oracle risk (easy cells)."""
    A, C = orc.system("1.0@60, 0.5")
    rng = np.random.default_rng(0)
    for k, T in ((2, 40), (4, 100)):
        th = hs.best_fir_theta("1.0@60, 0.5", 4.0, k, T)
        base = orc.float_covariance_risk(A, C, 4.0, th, T)
        for _ in range(5):
            d = rng.standard_normal(k) * 1e-3
            assert orc.float_covariance_risk(A, C, 4.0, th + d, T) > base


@pytest.mark.parametrize(
    "text,r,k,T",
    [("1.0^3", 1.0, 2, 300), ("1.05^2", 4.0, 1, 200), ("1.0@60, 0.5", 4.0, 2, 100), ("1.0^2, -1.0", 0.1, 3, 150)],
)
def test_mp_oracles_agree(text, r, k, T):
    """Closed-form-tail oracle == literal O(T) loop, and both are stable in the precision."""
    t1, b1, th1 = _mp_ref(text, r, k, T, closed=False)
    t2, b2, th2 = _mp_ref(text, r, k, T, closed=True, extra_dps=25)
    assert abs(t1 / t2 - 1) < mp.mpf(10) ** -30 and abs(b1 / b2 - 1) < mp.mpf(10) ** -30
    assert max(abs(a - b) for a, b in zip(th1, th2, strict=False)) < mp.mpf(10) ** -30


def test_closed_loop_identity_DG():
    """The identity behind the closed-form oracle, D^G_u = (A')^u C' - (F')^u C', in mp."""
    A, C = orc.system("1.0^2, 0.5")
    with mp.workdps(50):
        _P, K, _S, F = orc.mp_kalman(A, C, 2.0)
        Am, Cm = orc._mpm(A), orc._mpm(C[None, :])
        D = mp.matrix(3, 1)
        Fk, Au, Fu = K, mp.eye(3), mp.eye(3)
        for _u in range(1, 30):
            D = Am.T * D + Cm.T * (Cm * Fk)[0]
            Fk = F * Fk
            Au, Fu = Am.T * Au, F.T * Fu
            diff = D - (Au * Cm.T - Fu * Cm.T)
            assert max(abs(diff[i]) for i in range(3)) < mp.mpf(10) ** -40


MP_LOOP_CASES = [
    ("1.0^3", 1.0, 2, 1000),
    ("1.0^3", 0.01, 3, 500),
    ("1.0^4", 1.0, 4, 400),
    ("1.05^2", 1.0, 2, 800),
    ("1.05@30, 0.3^2", 4.0, 4, 500),
    ("1.0, -1.0", 0.1, 1, 700),
    ("1.0@60^2", 4.0, 3, 300),
]


@pytest.mark.slow
@pytest.mark.parametrize("text,r,k,T", MP_LOOP_CASES)
def test_against_mp_loop(text, r, k, T):
    tr, best, th = _mp_ref(text, r, k, T, closed=False)
    e1 = _check_close(text, r, "truncated_kalman", k, T, tr, 1e-12)
    e2 = _check_close(text, r, "best_fir", k, T, best, 1e-12)
    got = hs.best_fir_theta(text, r, k, T)
    scale = max(abs(float(t)) for t in th)
    assert max(abs(got[i] - float(th[i])) for i in range(k)) <= 1e-10 * scale
    print(f"{text} r={r} k={k} T={T}: rel err truncated {e1:.1e} best_fir {e2:.1e}")


MP_CLOSED_CASES = [
    ("1.0^2", 1.0, 2, 10**8),
    ("1.0^2", 100.0, 1, 10**8),
    ("1.0^3", 1.0, 2, 10**4),
    ("1.0^3", 4.0, 3, 10**8),
    ("1.0^3", 0.01, 8, 10**6),
    ("1.0^4", 1.0, 4, 10**8),
    ("1.0^4", 100.0, 2, 10**6),
    ("1.0^4", 1.0, 6, 10**7),
    ("1.0@60^2", 4.0, 4, 10**8),
    ("1.0, -1.0", 0.1, 2, 10**8),
    ("1.0^2, 0.5", 1.0, 3, 10**7),
    ("1.0", 100.0, 32, 10**8),
    ("1.05", 1.0, 2, 10**4),
    ("1.05^2", 4.0, 2, 10**4),
    ("1.05^2", 4.0, 1, 10**4),
    ("1.05@30, 0.3^2", 1.0, 4, 10**4),
    ("1.02, 0.5", 10.0, 3, 10**4),
    ("1.05, 1.02", 1.0, 2, 3000),
]


@pytest.mark.slow
@pytest.mark.parametrize("text,r,k,T", MP_CLOSED_CASES)
def test_against_mp_closed(text, r, k, T):
    tr, best, _th = _mp_ref(text, r, k, T, closed=True)
    e1 = _check_close(text, r, "truncated_kalman", k, T, tr, 1e-12)
    e2 = _check_close(text, r, "best_fir", k, T, best, 1e-12)
    print(f"{text} r={r} k={k} T={T}: rel err truncated {e1:.1e} best_fir {e2:.1e}")


def test_zero_cells_and_k_zero():
    for learner in LEARNERS:
        out = hs.risk_block("1.0^2, 0.5", [0.5, 4.0], learner, [0, 3, 5, 8], [1, 2, 3, 5, 8, 9])
        kk = np.array([0, 3, 5, 8])[None, :, None]
        TT = np.array([1, 2, 3, 5, 8, 9])[None, None, :]
        zero = np.broadcast_to(kk >= TT, out["risk"].shape)
        assert np.all(out["risk"][zero] == 0) and np.all(out["log10_risk"][zero] == -np.inf)
        assert np.all(out["risk"][~zero] > 0) and np.all(np.isfinite(out["log10_risk"][~zero]))
    # k = 0 predicts 0: R_1 = E (C xhat_1)^2 = S (C K)^2
    f = hs.kalman_filter("1.0^2, 0.5", 4.0)
    assert _one("1.0^2, 0.5", 4.0, "best_fir", 0, 1)[0] == pytest.approx(f.S * (f.C @ f.K) ** 2, rel=1e-14)
    # A = 0: the Bayes predictor is 0, every learner is exact
    for learner in LEARNERS:
        assert _one("0.0", 4.0, learner, 2, 100) == (0.0, -np.inf)


def test_best_fir_never_worse_than_truncated():
    for text in ("1.0^2, 0.5", "1.0@60", "1.02", "0.9^2"):
        a = hs.risk_block(text, [0.1, 4.0, 300.0], "best_fir", [1, 4, 16], [20, 10**3, 10**6])["risk"]
        b = hs.risk_block(text, [0.1, 4.0, 300.0], "truncated_kalman", [1, 4, 16], [20, 10**3, 10**6])["risk"]
        assert np.all(a <= b * (1 + 1e-13))


def test_no_nan_wide_grid_and_overflow():
    for text in ("1.0^3", "1.0@45^2", "1.05", "1.05@30, 0.3^2", "0.99^2", "1.0, -1.0, 0.2"):
        rho = parse_spectrum(text).spectral_radius
        T = [1, 2, 64, 65, 10**4] + ([10**6, 10**8] if rho <= 1 else [])
        for learner in LEARNERS:
            out = hs.risk_block(text, [1e-4, 1.0, 1e6], learner, [0, 1, 2, 7, 64], T)
            assert not np.any(np.isnan(out["risk"])) and not np.any(np.isnan(out["log10_risk"]))
            kk = np.array([0, 1, 2, 7, 64])[None, :, None]
            TT = np.array(T)[None, None, :]
            zero = np.broadcast_to(kk >= TT, out["risk"].shape)
            assert np.all(np.isfinite(out["log10_risk"][~zero]))
    # truncated at rho > 1 overflows float64; log10 stays exact (scalar closed form)
    out = hs.risk_block("1.05", [4.0], "truncated_kalman", [1, 17], [10**5, 10**6])
    assert np.all(out["risk"] == np.inf)
    ref = hidden.risk_block([1.05], [4.0], "truncated_kalman", [1, 17], [10**5, 10**6])["log10_risk"][0]
    np.testing.assert_allclose(out["log10_risk"], ref, rtol=1e-14)


def test_precision_cap_raises_instead_of_garbage(monkeypatch):
    monkeypatch.setattr(hs_cells, "MAX_BITS", 128)
    with pytest.raises(hs.PrecisionError, match="not verified"):
        hs.risk_block("1.05, 1.02", [1.0], "best_fir", [2], [5000])


GRID = {
    "spectrum": ["1.0^2, 0.5", "1.0@60", "1.02", "0.9^2", "1.0^3"],
    "r": np.array([0.01, 1.0, 4.0, 100.0]),
    "k": np.array([0, 1, 2, 3, 5, 17, 64]),
    "T": np.array([1, 2, 3, 10, 64, 65, 1000, 10**6, 10**8]),
}


@cache
def _full(text, learner):
    return hs.risk_block(text, GRID["r"], learner, GRID["k"], GRID["T"])


def _subset(name):
    n = len(GRID[name])
    return st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.sampled_from(GRID["spectrum"]),
    learner=st.sampled_from(LEARNERS),
    ir=_subset("r"),
    ik=_subset("k"),
    it=_subset("T"),
)
def test_block_invariance(text, learner, ir, ik, it):
    hs_kalman.exact_inputs.cache_clear()  # also independent of what was computed before
    sub = hs.risk_block(text, GRID["r"][ir], learner, GRID["k"][ik], GRID["T"][it])
    full = _full(text, learner)
    for key in ("risk", "log10_risk"):
        ref = np.ascontiguousarray(full[key][np.ix_(ir, ik, it)])
        assert np.array_equal(sub[key].view(np.uint64), ref.view(np.uint64))
