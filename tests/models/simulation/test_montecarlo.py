"""Tests of pipeline.models.simulation (streams, montecarlo, estimates)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter

from pipeline.models.simulation import (
    HorizonMeans,
    kalman_predictions,
    mean_and_stderr,
    mean_and_stderr_pairwise,
    propagate,
    simulate_outputs,
    simulate_states,
    stationary_start,
    time_blocks,
    trajectory_batches,
)
from pipeline.models.simulation.streams import cell_rng

A = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
C = np.array([1.0, 0.0, 1.0])


def _states(streams, n_steps, chunk, m=4):
    return np.concatenate([xs for _, xs in simulate_states(A, np.zeros((m, 3)), streams, n_steps, chunk)])


def _outputs(streams, n_steps, chunk, m=4, r=2.0):
    x0 = np.ones((3, m))
    return np.concatenate([y for _, y in simulate_outputs(A, C, r, x0, streams, n_steps, chunk)])


def test_batches_cover_the_samples_with_one_keyed_stream_each():
    batches = list(trajectory_batches(5, ("tag", 1.5), 300, 128))
    assert [(b.index, b.start, b.size) for b in batches] == [(0, 0, 128), (1, 128, 128), (2, 256, 44)]
    for b in batches:
        assert b.rng.standard_normal(3).tobytes() == cell_rng(5, "tag", 1.5, b.index).standard_normal(3).tobytes()


def test_time_blocks_are_fixed_from_zero():
    assert list(time_blocks(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert list(time_blocks(8, 4)) == [(0, 4), (4, 8)]


def test_states_follow_the_recursion_with_noise_drawn_time_major():
    x = _states(cell_rng(1, "s"), 7, 3)
    rng = cell_rng(1, "s")
    w = np.concatenate([rng.standard_normal((c1 - c0, 4, 3)) for c0, c1 in time_blocks(7, 3)])
    ref = np.zeros((7, 4, 3))
    for t in range(1, 7):
        ref[t] = ref[t - 1] @ A.T + w[t - 1]
    assert x.tobytes() == ref.tobytes()


def test_propagate_returns_the_states_and_the_next_one():
    rng = np.random.default_rng(0)
    x0, w = rng.standard_normal((2, 3)), rng.standard_normal((4, 2, 3))
    xs, nxt = propagate(A, x0, w)
    assert np.array_equal(xs[0], x0)
    assert np.array_equal(nxt, xs[-1] @ A.T + w[-1])


@pytest.mark.parametrize("simulate", [_states, _outputs], ids=["states", "outputs"])
def test_a_short_horizon_is_the_prefix_of_a_long_one(simulate):
    long = simulate(cell_rng(2, "p"), 50, 8)
    for n in (1, 8, 13, 50):
        assert simulate(cell_rng(2, "p"), n, 8).tobytes() == long[:n].tobytes()


@pytest.mark.parametrize("simulate", [_states, _outputs], ids=["states", "outputs"])
def test_one_stream_per_trajectory(simulate):
    """A trajectory drawn from its own stream is the same whatever the block size and
    whichever other trajectories share the call (MATH §6.3)."""
    streams = [cell_rng(3, "fit", 0, i) for i in range(4)]
    together = simulate(streams, 30, 7)
    alone = simulate([cell_rng(3, "fit", 0, 2)], 30, 11, m=1)
    assert together[:, 2].tobytes() == alone[:, 0].tobytes()


def test_outputs_follow_the_state_space_model():
    r = 2.0
    y = _outputs(cell_rng(4, "o"), 9, 4, r=r)
    rng = cell_rng(4, "o")
    draws = np.concatenate([rng.standard_normal((c1 - c0, 4, 4)) for c0, c1 in time_blocks(9, 4)])
    x = np.ones((3, 4))
    for t in range(9):
        assert y[t].tobytes() == (C @ x + math.sqrt(r) * draws[t, 3]).tobytes()
        x = A @ x + draws[t, :3]


def test_stationary_start_has_covariance_P():
    P = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = stationary_start(P, cell_rng(5, "x0"), 200_000)
    np.testing.assert_allclose(np.cov(x), P, atol=0.02)
    per = stationary_start(P, [cell_rng(5, "x0", i) for i in range(3)], 3)
    assert per[:, 1].tobytes() == stationary_start(P, [cell_rng(5, "x0", 1)], 1)[:, 0].tobytes()


def test_kalman_predictions_of_a_scalar_system_equal_the_recursion_as_a_filter():
    F, K = np.array([[0.6]]), np.array([0.4])
    y = np.random.default_rng(6).standard_normal((40, 5))
    pred, xhat = kalman_predictions(F, K, np.array([1.0]), np.zeros((1, 5)), y)
    np.testing.assert_allclose(pred, lfilter([0.0, 0.4], [1.0, -0.6], y, axis=0), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(xhat[0], 0.6 * pred[-1] + 0.4 * y[-1], rtol=1e-15)


def test_horizon_means_do_not_depend_on_the_blocks():
    q = np.random.default_rng(7).random((100, 3))
    horizons = [1, 10, 64, 99]
    for chunk in (100, 64, 7):
        means = HorizonMeans(horizons, 3)
        for c0, c1 in time_blocks(100, chunk):
            means.add(c0, q[c0:c1])
        expected = np.stack([q[: t + 1].sum(axis=0) / t for t in horizons], axis=1)
        np.testing.assert_allclose(means.values, expected, rtol=1e-14)


def test_mean_and_stderr_is_exactly_rounded_and_order_free():
    rng = np.random.default_rng(8)
    v = rng.standard_normal(1001) * 10.0 ** rng.integers(-50, 50, 1001)  # sums that round differently by order
    mean, se = mean_and_stderr(v)
    shuffled = np.random.default_rng(9).permutation(v)
    assert mean_and_stderr(shuffled) == (mean, se)
    w = np.array([1.0, 2.0, 4.0])
    assert mean_and_stderr(w) == pytest.approx((7 / 3, np.std(w, ddof=1) / math.sqrt(3)))


def test_pairwise_mean_and_stderr():
    v = np.arange(12.0).reshape(3, 4)
    mean, se = mean_and_stderr_pairwise(v)
    np.testing.assert_array_equal(mean, v.mean(axis=1))
    np.testing.assert_array_equal(se, v.std(axis=1, ddof=1) / 2.0)
    assert np.all(np.isnan(mean_and_stderr_pairwise(v[:, :1])[1]))
