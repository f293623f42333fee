"""Exact risk of a given filter (MATH §5.2 / §2.3), checked against the literal O(T) identities.

Fitted filters of marginal systems are evaluated with their extended-precision taps: at
``T = 1e5`` rounding them to float64 changes the risk of ``1.0^3`` by orders of magnitude.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from pipeline.models import hidden_spectrum as hs
from pipeline.models.fitted_fir.least_squares import fit_cells
from pipeline.models.fitted_fir.risk import FilterRisk
from pipeline.models.fitted_fir.statistics import training_statistics
from pipeline.models.fitted_fir.system import fitted_system
from pipeline.models.simulation.fitted_outputs import outputs, training_key
from tests.oracles import hidden_spectrum as orc
from tests.oracles.fitted_fir import mp_scalar_identity, mp_theta


def _fitted(text, r, T, m, ks, seed=3):
    s = fitted_system(text, r)
    st = training_statistics(s, seed=seed, fit=0, T=[T], trajectories=[m], k_max=max(ks))
    return s, fit_cells(st, 0, 0, ks)


def _mp_theta(f):
    hi, lo = f.as_float()
    return [mp.mpf(a) + mp.mpf(b) for a, b in zip(hi, lo, strict=True)]


def _rel(a, b):
    return float(abs(mp.mpf(a) / b - 1))


@pytest.mark.parametrize(
    ("text", "r", "k", "T"), [("1.0", 4.0, 2, 50), ("1.0^2", 1.0, 2, 50), ("1.0@60, 0.5", 4.0, 2, 100)]
)
def test_best_and_truncated_filters_reproduce_the_exact_kernel(text, r, k, T):
    fr = FilterRisk(fitted_system(text, r))
    best = hs.risk_block(text, [r], "best_fir", [k], [T])["risk"][0, 0, 0]
    trunc = hs.risk_block(text, [r], "truncated_kalman", [k], [T])["risk"][0, 0, 0]
    assert fr.risk(hs.best_fir_theta(text, r, k, T), T)[0] == pytest.approx(best, rel=1e-14)
    assert fr.risk(hs.kalman_fir(text, r, k), T)[0] == pytest.approx(trunc, rel=1e-14)


@pytest.mark.parametrize(
    ("lam", "r", "T"), [pytest.param(1.0, 100.0, 20_000, marks=pytest.mark.slow), (0.9, 4.0, 3_000), (1.0, 0.1, 5_000)]
)
def test_scalar_fitted_filters_against_the_literal_identity(lam, r, T):
    """The one-term spectrum "lam" is the scalar system of MATH §2 (§5.2)."""
    s, fits = _fitted(lam, r, T, 2, [1, 3, 6])
    fr = FilterRisk(s)
    for f in fits.values():
        with mp.workdps(60):
            ref = mp_scalar_identity(lam, r, _mp_theta(f), T)
            assert _rel(fr.risk(f.theta, T)[0], ref) <= 1e-9


@pytest.mark.parametrize(
    ("text", "r", "T"),
    [
        ("1.0^3", 100.0, 1500),
        pytest.param("1.0^2", 10.0, 1200, marks=pytest.mark.slow),
        pytest.param("1.0^2, 1.0@60, 0.5", 4.0, 600, marks=pytest.mark.slow),
    ],
)
def test_spectrum_fitted_filters_against_the_literal_identity(text, r, T):
    """O(T) literal D_u identity in mpmath (tests/oracles/hidden_spectrum.py), at horizons where
    float64 normal equations fail for 1.0^3."""
    s, fits = _fitted(text, r, T, 2, [2, 5])
    fr = FilterRisk(s)
    A, C = orc.system(text)
    for k, f in fits.items():
        with mp.workdps(orc.oracle_dps(text, r, k, T) + 20):
            H, b, c0, _ = orc.mp_quadratic_loop(A, C, r, k, T)
            th = mp.matrix(_mp_theta(f))
            ref = ((th.T * H * th)[0] - 2 * (b.T * th)[0] + c0) / T
            assert _rel(fr.risk(f.theta, T)[0], ref) <= 1e-9, k


@pytest.mark.slow
@pytest.mark.parametrize(("text", "r"), [("1.0^3", 100.0), ("1.0^2", 100.0), ("1.0", 100.0)])
def test_fitted_filters_at_T_1e5_against_mpmath(text, r):
    """Closed-form (doubling) mpmath quadratic at T = 1e5 (60 extra digits: the quadratic cancels
    about T^5); float64 taps alone would be wrong."""
    T = 100_000
    s, fits = _fitted(text, r, T, 2, [3, 5])
    fr = FilterRisk(s)
    A, C = orc.system(text)
    Y = outputs(s, 3, training_key(s, 0), 2, T + 1)
    rounding = []
    for k, f in fits.items():
        with mp.workdps(orc.oracle_dps(text, r, k, T) + 60):
            H, b, c0, _ = orc.mp_quadratic_closed(A, C, r, k, T)
            th = mp.matrix(_mp_theta(f))
            ref = ((th.T * H * th)[0] - 2 * (b.T * th)[0] + c0) / T
            assert _rel(fr.risk(f.theta, T)[0], ref) <= 1e-9
            exact = mp.matrix(mp_theta(Y, k, T, dps=mp.mp.dps))  # the exact fit of the same data
            assert _rel(fr.risk(f.theta, T)[0], ((exact.T * H * exact)[0] - 2 * (b.T * exact)[0] + c0) / T) <= 1e-9
            hi, _ = f.as_float()
            rounding.append(_rel(fr.risk(hi, T)[0], ref))
    if text == "1.0^3":
        assert max(rounding) > 1e-8  # float64 taps alone miss the tolerance: the extra digits matter


@pytest.mark.slow
def test_log10_where_the_risk_overflows():
    """A length-1 filter on 1.0^3 at T = 1e80 (risk ~ T^5): risk = inf, log10 exact."""
    fr = FilterRisk(fitted_system("1.0^3", 1.0))
    T = 10**80
    risk, lg = fr.risk([2.5], T)
    A, C = orc.system("1.0^3")
    assert risk == np.inf and 308 < lg < 500
    with mp.workdps(orc.oracle_dps("1.0^3", 1.0, 1, T) + 30):
        H, b, c0, _ = orc.mp_quadratic_closed(A, C, 1.0, 1, T)
        ref = (H[0, 0] * mp.mpf(2.5) ** 2 - 2 * b[0] * mp.mpf(2.5) + c0) / T
        assert lg == pytest.approx(float(mp.log10(ref)), abs=1e-12)
