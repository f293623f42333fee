"""pipeline.models.simulation.fitted_outputs (MATH §6.3): one stream per trajectory, fixed blocks, prefixes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.fitted_fir.system import fitted_system
from pipeline.models.simulation import simulate_outputs, stationary_start
from pipeline.models.simulation.fitted_outputs import BLOCK, outputs, training_key, trajectory_rngs

SYSTEMS = ["1.0", "0.9", "1.0^2, 1.0@60, 0.5", "0.9@30^2, -1.0", "1.0^3"]


@pytest.mark.parametrize("text", SYSTEMS)
def test_trajectory_independent_of_count_and_horizon(text):
    s = fitted_system(text, 4.0)
    key = training_key(s, 3)
    y = outputs(s, 7, key, 5, 2 * BLOCK + 17)
    assert np.array_equal(outputs(s, 7, key, 2, 2 * BLOCK + 17), y[:2])
    assert np.array_equal(outputs(s, 7, key, 5, BLOCK + 3), y[:, : BLOCK + 3])
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("text", SYSTEMS)
def test_same_draws_as_the_shared_simulation(text):
    """simulation.stationary_start / simulate_outputs with the same per-trajectory generators consume
    the same numbers; their matrix arithmetic differs from ours only by rounding."""
    s = fitted_system(text, 2.0)
    key = training_key(s, 0)
    y = outputs(s, 11, key, 4, 3000)
    rngs = trajectory_rngs(11, key, 0, 4)
    x0 = stationary_start(s.filt.P, rngs, 4)
    blocks = simulate_outputs(s.filt.A, s.filt.C, s.noise_ratio, x0, rngs, 3000, BLOCK)
    ref = np.concatenate([b for _, b in blocks], axis=0).T
    assert np.max(np.abs(ref - y)) <= 1e-12 * np.max(np.abs(y))


def test_streams_differ_by_fit_trajectory_and_ratio():
    s = fitted_system("1.0", 1.0)
    a = outputs(s, 1, training_key(s, 0), 2, 50)
    b = outputs(s, 1, training_key(s, 1), 2, 50)
    c = outputs(fitted_system("1.0", 2.0), 1, training_key(fitted_system("1.0", 2.0), 0), 2, 50)
    assert not np.any(a[0] == a[1]) and not np.any(a == b) and not np.any(a == c)


def test_lam_and_one_term_spectrum_share_data():
    s_lam, s_text = fitted_system(1, 4.0), fitted_system("1.0", 4.0)
    assert s_lam.text == "1.0"
    assert np.array_equal(
        outputs(s_lam, 3, training_key(s_lam, 0), 2, 40), outputs(s_text, 3, training_key(s_text, 0), 2, 40)
    )


def test_stationary_start_variance():
    """``x_0 ~ N(0, P)``: the sample variance of ``y_0`` is ``C P C' + r`` (5 sigma)."""
    s = fitted_system("1.0^2", 1.0)
    y0 = outputs(s, 5, training_key(s, 0), 4000, 1)[:, 0]
    var = float(s.filt.C @ s.filt.P @ s.filt.C) + 1.0
    assert abs(np.var(y0) / var - 1) < 5 * np.sqrt(2 / 4000)
