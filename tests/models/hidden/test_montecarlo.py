"""Tests of pipeline.models.hidden.montecarlo (MATH.md §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.models.hidden import (
    montecarlo_block,
    risk_block,
)

LEARNERS = ("truncated_kalman", "best_fir")


MC = {"lam": [0.9, 1.0], "r": [1.0, 4.0], "k": [1, 3], "T": [3, 20, 200]}


@pytest.mark.parametrize("learner", LEARNERS)
def test_montecarlo_agrees_with_exact(learner):
    mc = montecarlo_block(MC["lam"], MC["r"], learner, MC["k"], MC["T"], seed=12345, samples=600)
    ex = risk_block(MC["lam"], MC["r"], learner, MC["k"], MC["T"])
    z = (mc["risk"] - ex["risk"]) / np.where(mc["risk_stderr"] > 0, mc["risk_stderr"], 1.0)
    assert np.all(np.abs(z) < 4), z
    zero = ex["risk"] == 0
    assert np.all(mc["risk"][zero] == 0) and np.all(mc["risk_stderr"][zero] == 0)
    assert np.all(mc["risk_stderr"][~zero] > 0)
    assert np.all(np.isneginf(mc["log10_risk"][zero]))
    # log10 of the estimate within 4 standard errors of the exact log10 risk (delta method)
    err = 4 * mc["risk_stderr"][~zero] / (mc["risk"][~zero] * math.log(10))
    assert np.all(np.abs(mc["log10_risk"][~zero] - ex["log10_risk"][~zero]) < err)


def test_montecarlo_block_invariance():
    full = montecarlo_block(MC["lam"], MC["r"], "best_fir", MC["k"], MC["T"], seed=7, samples=300)
    alone = montecarlo_block([1.0], [4.0], "best_fir", [3], [20], seed=7, samples=300)
    for key in ("risk", "risk_stderr", "log10_risk"):
        assert alone[key][0, 0, 0, 0] == full[key][1, 1, 1, 1]
    tk_full = montecarlo_block(MC["lam"], MC["r"], "truncated_kalman", MC["k"], MC["T"], seed=7, samples=300)
    tk_alone = montecarlo_block([0.9], [1.0], "truncated_kalman", [1, 3], [200], seed=7, samples=300)
    assert np.array_equal(tk_alone["risk"][0, 0, :, 0], tk_full["risk"][0, 0, :, 2])
    other = montecarlo_block([1.0], [4.0], "best_fir", [3], [20], seed=8, samples=300)
    assert other["risk"][0, 0, 0, 0] != alone["risk"][0, 0, 0, 0]


@pytest.mark.parametrize("learner", LEARNERS)
def test_montecarlo_long_horizon_chunks(learner):
    """Horizons spanning many simulation chunks (chunk = 16 steps here, 4096 in production)
    agree with the exact risk: the state, the filters and the running sums carry over."""
    T = [5, 16, 17, 100, 333]
    mc = montecarlo_block([0.9, 1.0], [4.0], learner, [2], T, seed=3, samples=400, chunk=16)
    ex = risk_block([0.9, 1.0], [4.0], learner, [2], T)["risk"]
    assert np.all(np.abs(mc["risk"] - ex) < 4 * mc["risk_stderr"]), (mc["risk"], ex)
