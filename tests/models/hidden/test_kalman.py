"""Tests of pipeline.models.hidden.kalman (MATH.md §2.1, §2.5)."""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pytest
from scipy.linalg import solve_discrete_are

from pipeline.models.hidden import (
    kalman,
)
from tests.models.hidden.mp_oracles import mp_kalman
from tests.references import KALMAN, assert_as_printed


@pytest.mark.parametrize("lam,r", sorted(KALMAN))
def test_kalman_reference(lam, r):
    assert_as_printed([float(x) for x in kalman(lam, r)], KALMAN[lam, r], "P, K, a")


def test_kalman_vs_mpmath_extremes():
    lam = np.array([-1.5, -1.0, -0.3, 0.0, 1e-8, 0.5, 0.9, 0.999999, 1.0, 1.000001, 1.05, 1.5])
    r = np.array([1e-6, 1e-4, 0.01, 1.0, 4.0, 100.0, 1e6, 1e8])
    P, K, a = kalman(lam[:, None], r[None, :])
    worst = 0.0
    with mp.workdps(50):
        for i, lv in enumerate(lam):
            for j, rv in enumerate(r):
                mP, mK, ma = mp_kalman(lv, rv)
                worst = max(worst, float(abs(P[i, j] - mP) / mP))
                for got, ref in ((K[i, j], mK), (a[i, j], ma)):
                    if ref == 0:
                        assert got == 0
                    else:
                        worst = max(worst, float(abs(got - ref) / abs(ref)))
    assert worst < 5e-14, worst
    # Riccati fixed point and closed-loop stability |a| < 1
    assert np.all(np.abs(a) < 1)


def test_kalman_vs_dare():
    for lv in (-1.2, 0.3, 0.9, 1.0, 1.05, 1.5):
        for rv in (1e-3, 0.5, 4.0, 1e3):
            X = solve_discrete_are(np.array([[lv]]), np.array([[1.0]]), np.array([[1.0]]), np.array([[rv]]))
            P, K, _a = kalman(lv, rv)
            assert float(P) == pytest.approx(X[0, 0], rel=1e-9)
            assert float(K) == pytest.approx(lv * X[0, 0] / (X[0, 0] + rv), rel=1e-9)


@pytest.mark.slow
def test_kalman_vs_statsmodels():
    import statsmodels.api as sm

    y = np.random.default_rng(1).standard_normal(400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rv in (0.25, 4.0, 30.0):
            fr = sm.tsa.UnobservedComponents(y, level="llevel").filter([rv, 1.0]).filter_results
            P, K, _ = kalman(1.0, rv)
            assert fr.predicted_state_cov[0, 0, -1] == pytest.approx(float(P), rel=1e-8)
            assert fr.kalman_gain[0, 0, -1] == pytest.approx(float(K), rel=1e-8)
        for lv, rv in ((0.9, 4.0), (0.5, 0.3), (-0.7, 2.0)):
            mod = sm.tsa.SARIMAX(y, order=(1, 0, 0), measurement_error=True, trend="n")
            fr = mod.filter([lv, rv, 1.0]).filter_results
            P, K, _ = kalman(lv, rv)
            assert fr.predicted_state_cov[0, 0, -1] == pytest.approx(float(P), rel=1e-8)
            assert fr.kalman_gain[0, 0, -1] == pytest.approx(float(K), rel=1e-8)
