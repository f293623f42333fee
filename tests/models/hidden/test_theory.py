"""Tests of pipeline.models.hidden.theory (MATH.md §2.4)."""

from __future__ import annotations

import numpy as np

from pipeline.models.hidden import (
    kalman,
    risk_block,
)


def test_theory_shapes():
    T = np.array([10**3, 10**5, 10**7, 10**9])
    out = risk_block([1.0], [4.0], "truncated_kalman", [1, 4], T)["risk"][0, 0]
    _, _, a = kalman(1.0, 4.0)
    # lam = 1: R_T ~ a^(2k) T / 2
    np.testing.assert_allclose(out[:, -1] / (float(a) ** (2 * np.array([1, 4])) * T[-1] / 2), 1, rtol=1e-8)
    # best_fir bounded in T for lam = 1 and lam > 1
    for lv in (1.0, 1.05):
        bf = risk_block([lv], [4.0], "best_fir", [1, 4], T)["risk"][0, 0]
        assert np.all(np.isfinite(bf)) and np.all(bf < 10)
