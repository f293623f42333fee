"""Tests of pipeline.models.hidden.risk: the exact closed-form kernel (MATH.md §0, §2.2, §2.3, §2.5)."""

from __future__ import annotations

from functools import cache

import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.models.hidden import (
    best_fir_theta,
    kalman,
    kalman_fir,
    risk_block,
)
from tests.models.hidden.mp_oracles import _dps, mp_identity, mp_kalman, mp_risks, mp_truncated_closed
from tests.oracles.hidden import risk_oracle
from tests.references import (
    BEST_FIR,
    BEST_FIR_RISK,
    BEST_FIR_THETA,
    TRUNCATED_KALMAN_K,
    TRUNCATED_KALMAN_RISK,
    TRUNCATED_KALMAN_T,
    assert_as_printed,
)

LEARNERS = ("truncated_kalman", "best_fir")


def _one(lam, r, learner, k, T):
    out = risk_block([lam], [r], learner, [k], [T])
    return float(out["risk"][0, 0, 0, 0]), float(out["log10_risk"][0, 0, 0, 0])


def _rel(x, y):
    return abs(x - y) / abs(y)


def test_truncated_reference_table():
    out = risk_block([1.0], [4.0], "truncated_kalman", TRUNCATED_KALMAN_K, TRUNCATED_KALMAN_T)["risk"][0, 0]
    for got, printed in zip(out, TRUNCATED_KALMAN_RISK, strict=True):
        assert_as_printed(got, printed, "truncated_kalman risk")


def test_best_fir_reference():
    lam, r, k, T = BEST_FIR["lam"], BEST_FIR["noise_ratio"], BEST_FIR["k"], BEST_FIR["T"]
    th = best_fir_theta(lam, r, k, T)
    assert_as_printed(th, BEST_FIR_THETA, "theta")
    risk, _ = _one(lam, r, "best_fir", k, T)
    assert_as_printed(risk, BEST_FIR_RISK, "R_T")
    assert risk_oracle(lam, r, th, T) == pytest.approx(risk, rel=1e-13)


ORACLE_T = {
    0.9: (1, 2, 3, 7, 18, 50, 1000, 10**5, 10**6),
    1.0: (1, 2, 3, 7, 18, 50, 1000, 10**5, 10**6),
    1.05: (1, 2, 3, 7, 18, 50, 200),  # the float64 oracle is ill-conditioned beyond (lam^T eps)
}


@pytest.mark.slow
@pytest.mark.parametrize("lam", sorted(ORACLE_T))
def test_against_float64_oracle(lam):
    rs, ks, Ts = [0.01, 1.0, 4.0, 100.0], [1, 2, 5, 17], list(ORACLE_T[lam])
    worst = 0.0
    for learner in LEARNERS:
        out = risk_block([lam], rs, learner, ks, Ts)
        for ri, rv in enumerate(rs):
            for ki, kv in enumerate(ks):
                for ni, tv in enumerate(Ts):
                    got = out["risk"][0, ri, ki, ni]
                    if tv <= kv:
                        assert got == 0.0 and out["log10_risk"][0, ri, ki, ni] == -np.inf
                        continue
                    th = kalman_fir(lam, rv, kv) if learner == "truncated_kalman" else best_fir_theta(lam, rv, kv, tv)
                    ref = risk_oracle(lam, rv, th, tv)
                    if ref < 1e-12:
                        # the float64 oracle has an absolute error floor (cancellation in D_u);
                        # these cells are checked against mpmath in test_against_mpmath
                        assert abs(got - ref) < 1e-21
                        continue
                    e = _rel(got, ref)
                    worst = max(worst, e)
                    assert e < 1e-9, (learner, rv, kv, tv, got, ref)
    print(f"max rel err vs float64 oracle, lam={lam}: {worst:.2e}")


def test_truncated_T_one_and_k_zero():
    # T = 1: every learner with k >= 1 is exact; k = 0 predicts 0: R_1 = E xhat_1^2 = K^2 (P + r)
    for lv, rv in ((0.9, 4.0), (1.0, 0.01), (1.05, 100.0)):
        P, K, _ = (float(v) for v in kalman(lv, rv))
        for learner in LEARNERS:
            assert _one(lv, rv, learner, 1, 1) == (0.0, -np.inf)
            assert _one(lv, rv, learner, 0, 1)[0] == pytest.approx(K * K * (P + rv), rel=1e-14)
            for T in (2, 30, 500):
                assert _one(lv, rv, learner, 0, T)[0] == pytest.approx(risk_oracle(lv, rv, [], T), rel=1e-11)


@pytest.mark.parametrize(
    "lam,r,k,T", [(0.9, 4.0, 2, 30), (1.0, 0.01, 3, 40), (1.05, 100.0, 2, 120), (1.05, 1.0, 1, 300)]
)
def test_mp_quadratic_matches_literal_identity(lam, r, k, T):
    """The fast mp oracle (closed-form tails) equals the literal §2.3 sum at mp precision."""
    trunc, best, th = mp_risks(lam, r, k, T)
    with mp.workdps(_dps(lam, r, k, T)):
        _, K, a = mp_kalman(lam, r)
        assert abs(mp_identity(lam, r, [K * a**j for j in range(k)], T) / trunc - 1) < mp.mpf(10) ** -25
        assert abs(mp_identity(lam, r, th, T) / best - 1) < mp.mpf(10) ** -25


MP_CASES = [
    (lam, r, k, T)
    for lam in (0.9, 1.0, 1.05)
    for r in (0.01, 1.0, 100.0)
    for k in (1, 2, 5)
    for T in (k + 1, 17, 200, 2000)
]


def test_against_mpmath():
    worst = {"truncated_kalman": 0.0, "best_fir": 0.0, "log10": 0.0, "theta": 0.0}
    for lam, r, k, T in MP_CASES:
        trunc, best, th = mp_risks(lam, r, k, T)
        for learner, ref in (("truncated_kalman", trunc), ("best_fir", best)):
            risk, lg = _one(lam, r, learner, k, T)
            e = float(abs(mp.mpf(risk) / ref - 1))
            worst[learner] = max(worst[learner], e)
            assert e < 1e-12, (learner, lam, r, k, T, risk, ref)
            e10 = float(abs(mp.mpf(lg) - mp.log10(ref)) / max(1, abs(mp.log10(ref))))
            worst["log10"] = max(worst["log10"], e10)
            assert e10 < 1e-14
        got_th = best_fir_theta(lam, r, k, T)
        scale = max(abs(float(t)) for t in th)
        e = max(abs(float(got_th[i] - th[i])) for i in range(k)) / scale
        worst["theta"] = max(worst["theta"], e)
        assert e < 1e-10, (lam, r, k, T, got_th, th)
    print("max rel err vs mpmath:", {k: f"{v:.2e}" for k, v in worst.items()})


@pytest.mark.parametrize(
    "lam,r,k,T",
    [
        (1.0, 1e6, 1, 2),
        (1.0, 1e6, 3, 50),
        (1.0, 1e8, 2, 10**4),  # a ~ lam and a^2 ~ lam (K ~ 1e-4)
        (0.9, 1e6, 1, 2),  # a = lam (1 - 5e-6)
        (0.5, 1e6, 4, 100),
        (-0.8, 100.0, 3, 60),
        (-1.05, 1.0, 2, 80),
        (1.0, 1e-6, 30, 1000),  # a ~ 1e-6: risk ~ 1e-360 underflows, log10 must not
        (0.999999, 50.0, 17, 10**6),
        (1.000001, 50.0, 17, 10**6),
        (1.05, 4.0, 5, 10**5),  # risk of best_fir finite, truncated overflows
    ],
)
def test_hard_cells_against_mpmath(lam, r, k, T):
    trunc, best, _ = mp_risks(lam, r, k, T)
    for learner, ref in (("truncated_kalman", trunc), ("best_fir", best)):
        risk, lg = _one(lam, r, learner, k, T)
        ref_lg = float(mp.log10(ref))
        assert lg == pytest.approx(ref_lg, rel=1e-14, abs=1e-13), (learner, lg, ref_lg)
        if 1e-300 < ref < 1e300:
            assert float(abs(mp.mpf(risk) / ref - 1)) < 1e-12, (learner, risk, ref)
        elif ref >= 1e300:
            assert risk == np.inf or float(abs(mp.mpf(risk) / ref - 1)) < 1e-12


@pytest.mark.parametrize("lam,r,k", [(1.05, 4.0, 1), (1.05, 4.0, 17), (1.5, 0.01, 3), (1.0, 4.0, 3), (1.0, 1e6, 64)])
@pytest.mark.parametrize("T", [10**5, 10**6, 10**9])
def test_truncated_log10_huge_T(lam, r, k, T):
    """log10 R_T where risk overflows, against the §2.3 geometric-series closed form in mp."""
    ref = mp_truncated_closed(lam, r, k, T)
    risk, lg = _one(lam, r, "truncated_kalman", k, T)
    assert lg == pytest.approx(float(mp.log10(ref)), rel=1e-14)
    if lam > 1:
        assert risk == np.inf
    else:
        assert float(abs(mp.mpf(risk) / ref - 1)) < 1e-12


def test_special_cases():
    # k >= T: exactly 0, log10 = -inf, both learners
    for learner in LEARNERS:
        out = risk_block([0.9, 1.0, 1.3], [0.5, 4.0], learner, [3, 5, 8], [1, 2, 3, 5, 8])
        kk = np.array([3, 5, 8])[:, None]
        TT = np.array([1, 2, 3, 5, 8])[None, :]
        zero = np.broadcast_to(kk >= TT, out["risk"].shape)
        assert np.all(out["risk"][zero] == 0) and np.all(out["log10_risk"][zero] == -np.inf)
        assert np.all(out["risk"][~zero] > 0) and np.all(np.isfinite(out["log10_risk"][~zero]))
    # lam = 0: y is white noise, the Bayes predictor is 0 = every FIR with theta = 0
    for learner in LEARNERS:
        assert _one(0.0, 4.0, learner, 2, 100) == (0.0, -np.inf)
    # best_fir is never worse than the truncation
    a = risk_block([0.7, 1.0, 1.02], [0.1, 4.0, 300.0], "best_fir", [1, 4, 16], [20, 10**3, 10**7])["risk"]
    b = risk_block([0.7, 1.0, 1.02], [0.1, 4.0, 300.0], "truncated_kalman", [1, 4, 16], [20, 10**3, 10**7])["risk"]
    assert np.all(a <= b * (1 + 1e-13))


def test_no_nan_wide_grid_and_huge_T():
    lam = np.concatenate([np.linspace(-1.5, 1.5, 31), [1 - 1e-12, 1 + 1e-12, -1.0]])
    r = np.logspace(-4, 6, 11)
    k = np.array([0, 1, 2, 7, 64])
    T = np.array([1, 2, 64, 65, 10**4, 10**9, 10**12])
    for learner in LEARNERS:
        out = risk_block(lam, r, learner, k, T)
        lg, risk = out["log10_risk"], out["risk"]
        assert not np.any(np.isnan(lg)) and not np.any(np.isnan(risk))
        kk = k[None, None, :, None]
        TT = T[None, None, None, :]
        zero_ok = (kk >= TT) | (lam[:, None, None, None] == 0)
        assert np.all(np.isfinite(lg) | (lg == np.inf) | ((lg == -np.inf) & zero_ok))
        assert np.all(risk >= 0)
        # T = 1e9 for |lam| <= 1: finite risk and finite log10 (risk may underflow for tiny a^(2k))
        sel = (np.abs(lam) <= 1) & (lam != 0)
        assert np.all(np.isfinite(risk[sel][:, :, :, 5])) and np.all(np.isfinite(lg[sel][:, :, :, 5]))


GRID = {
    "lam": np.array([-1.2, -0.5, 0.0, 0.3, 0.9, 0.999, 1.0, 1.001, 1.05, 1.5]),
    "r": np.array([1e-4, 0.01, 1.0, 4.0, 100.0, 1e6]),
    "k": np.array([0, 1, 2, 3, 5, 17, 64]),
    "T": np.array([1, 2, 3, 10, 64, 65, 1000, 10**6, 10**9]),
}


@cache
def _full(learner):
    return risk_block(GRID["lam"], GRID["r"], learner, GRID["k"], GRID["T"])


def _subset(name):
    n = len(GRID[name])
    return st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    learner=st.sampled_from(LEARNERS),
    il=_subset("lam"),
    ir=_subset("r"),
    ik=_subset("k"),
    it=_subset("T"),
)
def test_block_invariance(learner, il, ir, ik, it):
    sub = risk_block(GRID["lam"][il], GRID["r"][ir], learner, GRID["k"][ik], GRID["T"][it])
    full = _full(learner)
    for key in ("risk", "log10_risk"):
        ref = full[key][np.ix_(il, ir, ik, it)]
        assert np.array_equal(sub[key].view(np.uint64), np.ascontiguousarray(ref).view(np.uint64))
