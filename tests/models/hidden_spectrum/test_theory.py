"""Tests of pipeline.models.hidden_spectrum.theory (MATH.md §5.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.models import hidden_spectrum as hs

LEARNERS = hs.LEARNERS


@pytest.mark.parametrize(
    "text,n_u,m",
    [
        ("1.0^2, 0.5", 2, 2),
        ("1.0@60, 0.5", 2, 1),
        ("1.0@60^2", 4, 2),
        ("1.0, -1.0", 2, 1),
        ("0.9^2", 0, 0),
        ("1.02", 1, 0),
        ("1.0^3, 1.05@10", 5, 3),
        ("0.5^[1,1], 1.0", 1, 1),
    ],
)
def test_counts(text, n_u, m):
    assert hs.n_unstable(text) == n_u and hs.max_marginal_block(text) == m


def test_theory_values():
    assert hs.critical_k_theory("1.0^2, 0.5", "best_fir") == 2
    assert hs.critical_k_theory("1.0^2, 0.5", "truncated_kalman") is None
    assert hs.critical_k_theory("0.9^2", "truncated_kalman") == 0
    assert hs.growth_exponent_theory("1.0^3", "truncated_kalman") == 5.0
    assert hs.growth_exponent_theory("0.9^2", "truncated_kalman") == 0.0
    assert hs.growth_exponent_theory("1.02", "truncated_kalman") == math.inf
    assert hs.growth_exponent_theory("1.0^3", "best_fir") == 0.0
    assert hs.growth_exponent_theory("1.0^3", "best_fir", 1) == 3.0
    assert hs.growth_exponent_theory("1.0@60", "best_fir", 1) == 1.0
    assert hs.growth_exponent_theory("1.02, 1.0", "best_fir", 0) == math.inf
    f = hs.kalman_filter("1.0^2", 4.0)
    np.testing.assert_allclose(
        hs.kstar_slope_theory("1.0^2", [4.0]), [3 / (2 * math.log(1 / f.closed_loop_radius))], rtol=1e-15
    )
    assert hs.kstar_slope_theory("0.9", [1.0, 2.0]).tolist() == [0.0, 0.0]
    assert hs.kstar_slope_theory("1.02", [1.0]).tolist() == [math.inf]


@pytest.mark.parametrize(
    "text,learner,k",
    [
        ("1.0^2", "truncated_kalman", 3),
        ("1.0^3", "truncated_kalman", 1),
        ("1.0^3", "best_fir", 1),
        ("1.0^3", "best_fir", 2),
        ("1.0^4", "best_fir", 1),
        ("1.0^4", "best_fir", 3),
        ("1.0, -1.0", "best_fir", 1),
        ("1.0@60", "best_fir", 1),
        ("1.0^2, -1.0", "best_fir", 1),
        ("1.0^3", "best_fir", 3),
        ("1.0^2, 0.5", "best_fir", 2),
        ("0.9^2", "truncated_kalman", 1),
    ],
)
def test_growth_exponent_numerically(text, learner, k):
    """``d log R / d log T`` between T = 1e7 and 1e8 against the theory; k < m gives 2(m-k)-1."""
    for r in (0.3, 4.0):
        lg = hs.risk_block(text, [r], learner, [k], [10**7, 10**8])["log10_risk"][0, 0]
        assert lg[1] - lg[0] == pytest.approx(hs.growth_exponent_theory(text, learner, k), abs=2e-3)


@pytest.mark.parametrize("text,r", [("1.0", 4.0), ("1.0^2", 1.0), ("1.0^3", 10.0), ("1.0@60", 4.0)])
def test_kstar_slope_numerically(text, r):
    T = np.unique(np.geomspace(1e4, 1e8, 9).astype(np.int64))
    lg = hs.risk_block(text, [r], "truncated_kalman", np.arange(0, 200), T)["log10_risk"][0]
    kstar = [int(np.argmax(lg[:, j] <= 0.0)) for j in range(len(T))]
    slope = np.polyfit(np.log(T), kstar, 1)[0]
    assert slope == pytest.approx(float(hs.kstar_slope_theory(text, [r])[0]), rel=0.1)


@pytest.mark.parametrize("text,r", [("1.0^2", 3.16), ("1.0^3", 10.0), ("1.0@60^2", 31.6)])
def test_kstar_slope_follows_theory_over_long_horizons(text, r):
    """Jordan blocks: over T = 1e3 .. 4e15 the staircase k*(T) averages to the theory slope
    within 1.5% although it strays from its asymptote by about one closed-loop period."""
    theory = float(hs.kstar_slope_theory(text, [r])[0])
    T = np.unique(np.round(np.geomspace(1e3, 4e15, 60)).astype(np.int64))
    k = np.arange(1, int(theory * np.log(T[-1])) + 60)
    lg = hs.risk_block(text, [r], "truncated_kalman", k, T)["log10_risk"][0]
    period = hs.closed_loop_period(hs.kalman_filter(text, r).F, int(k[-1]))
    assert period > 5  # complex dominant closed-loop modes: the staircase case
    for tau in (1.0, 0.01):
        below = lg <= math.log10(tau)
        assert below.any(axis=0).all()
        kstar = k[np.argmax(below, axis=0)].astype(np.float64)
        assert np.polyfit(np.log(T), kstar, 1)[0] == pytest.approx(theory, rel=0.015)
        deviation = kstar - theory * np.log(T)
        assert 0.5 * period < np.ptp(deviation) < 2 * period


def test_closed_loop_period():
    def rotation(rho, theta):
        return rho * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])

    assert hs.closed_loop_period(np.diag([0.9, 0.5]), 64) == 0.0
    assert hs.closed_loop_period(np.diag([-0.9, 0.5]), 64) == pytest.approx(2.0)
    assert hs.closed_loop_period(rotation(0.8, 0.5), 64) == pytest.approx(2 * math.pi / 0.5)
    assert hs.closed_loop_period(np.zeros((3, 3)), 64) == 0.0
    # two dominant pairs beat (periods 2 pi / 1.2 and 2 pi / 0.9 -> 2 pi / 0.3)...
    two = np.zeros((4, 4))
    two[:2, :2], two[2:, 2:] = rotation(0.8, 1.2), rotation(0.8 * (1 - 1e-4), 0.9)
    assert hs.closed_loop_period(two, 64) == pytest.approx(2 * math.pi / 0.3)
    # ...unless the second decays away over k <= k_max
    two[2:, 2:] = rotation(0.7, 0.9)
    assert hs.closed_loop_period(two, 64) == pytest.approx(2 * math.pi / 1.2)
