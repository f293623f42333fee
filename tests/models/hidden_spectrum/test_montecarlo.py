"""Tests of pipeline.models.hidden_spectrum.montecarlo (MATH.md §3)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models import hidden_spectrum as hs

LEARNERS = hs.LEARNERS


MC = {"r": [1.0, 4.0], "k": [1, 3], "T": [3, 20, 200]}


@pytest.mark.parametrize("text", ["1.0^2", "1.0@60, 0.5", "0.9, -0.5"])
@pytest.mark.parametrize("learner", LEARNERS)
def test_montecarlo_agrees_with_exact(text, learner):
    mc = hs.montecarlo_block(text, MC["r"], learner, MC["k"], MC["T"], seed=12345, samples=600)
    ex = hs.risk_block(text, MC["r"], learner, MC["k"], MC["T"])
    z = (mc["risk"] - ex["risk"]) / np.where(mc["risk_stderr"] > 0, mc["risk_stderr"], 1.0)
    assert np.all(np.abs(z) < 4), z
    zero = ex["risk"] == 0
    assert np.all(mc["risk"][zero] == 0) and np.all(mc["risk_stderr"][zero] == 0)
    assert np.all(mc["risk_stderr"][~zero] > 0)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(mc["log10_risk"], np.log10(mc["risk"]))


def test_montecarlo_block_invariance():
    full = hs.montecarlo_block("1.0^2", MC["r"], "best_fir", MC["k"], MC["T"], seed=7, samples=300)
    alone = hs.montecarlo_block("1.0^2", [4.0], "best_fir", [3], [20], seed=7, samples=300)
    for key in ("risk", "risk_stderr", "log10_risk"):
        assert alone[key][0, 0, 0] == full[key][1, 1, 1]
    tk_full = hs.montecarlo_block("1.0^2", MC["r"], "truncated_kalman", MC["k"], MC["T"], seed=7, samples=300)
    tk_alone = hs.montecarlo_block("1.0^2", [1.0], "truncated_kalman", [1, 3], [200], seed=7, samples=300)
    assert np.array_equal(tk_alone["risk"][0, :, 0], tk_full["risk"][0, :, 2])
    other = hs.montecarlo_block("1.0^2", [4.0], "best_fir", [3], [20], seed=8, samples=300)
    assert other["risk"][0, 0, 0] != alone["risk"][0, 0, 0]


def test_montecarlo_long_horizon_chunks():
    """T beyond one chunk of draws (1024 steps) still agrees with the exact risk."""
    mc = hs.montecarlo_block("0.9^2", [4.0], "truncated_kalman", [2], [2500], seed=3, samples=200)
    ex = hs.risk_block("0.9^2", [4.0], "truncated_kalman", [2], [2500])["risk"]
    assert abs(mc["risk"] - ex)[0, 0, 0] < 4 * mc["risk_stderr"][0, 0, 0]
