"""Tests of pipeline.models.fir_montecarlo: FIR learners on simulated outputs."""

from __future__ import annotations

import numpy as np

from pipeline.models.fir_montecarlo import fir_deviations, fir_plan, fir_predictions


def _taps(k: int) -> np.ndarray:
    return np.full(k, 0.1 * k)


def test_plan_truncated_one_filter_per_k_best_one_per_cell():
    k, T = np.array([0, 2, 5]), np.array([1, 3, 10])
    trunc = fir_plan("truncated_kalman", k, T, _taps, lambda kv, tv: _taps(kv) + tv)
    assert [f.cells for f in trunc] == [((0, 0), (0, 1), (0, 2)), ((1, 1), (1, 2)), ((2, 2),)]
    best = fir_plan("best_fir", k, T, _taps, lambda kv, tv: _taps(kv) + tv)
    assert [f.cells for f in best] == [((0, 0),), ((0, 1),), ((0, 2),), ((1, 1),), ((1, 2),), ((2, 2),)]
    np.testing.assert_array_equal(best[-1].theta, _taps(5) + 10)


def test_predictions_are_the_filter_and_carry_across_blocks():
    theta = np.array([0.5, -0.25, 0.125])
    y = np.random.default_rng(0).standard_normal((30, 4))
    whole, _ = fir_predictions(theta, y, np.zeros((3, 4)))
    ref = np.zeros_like(y)
    for t in range(30):
        for j in range(1, min(3, t) + 1):
            ref[t] += theta[j - 1] * y[t - j]
    np.testing.assert_allclose(whole, ref, rtol=1e-14, atol=1e-15)
    zi, parts = np.zeros((3, 4)), []
    for c0 in range(0, 30, 7):
        part, zi = fir_predictions(theta, y[c0 : c0 + 7], zi)
        parts.append(part)
    assert np.concatenate(parts).tobytes() == whole.tobytes()
    assert np.all(fir_predictions(np.zeros(0), y, np.zeros((1, 4)))[0] == 0)


def test_deviations_are_running_means_of_the_squared_difference():
    y = np.random.default_rng(1).standard_normal((20, 3))
    pred = np.random.default_rng(2).standard_normal((20, 3))
    plan = fir_plan("truncated_kalman", np.array([1]), np.array([5, 19]), lambda kv: np.array([0.3]), None)
    blocks = [(c0, y[c0 : c0 + 8], pred[c0 : c0 + 8]) for c0 in range(0, 20, 8)]
    (dev,) = fir_deviations(plan, np.array([5, 19]), blocks, 3)
    yhat = np.vstack([np.zeros((1, 3)), 0.3 * y[:-1]])
    d2 = (pred - yhat) ** 2
    np.testing.assert_allclose(dev, np.stack([d2[:6].sum(0) / 5, d2.sum(0) / 19], axis=1), rtol=1e-14)
