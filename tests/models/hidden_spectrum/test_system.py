"""Tests of pipeline.models.hidden_spectrum.system (MATH.md §5.1).

The observation row, observability, the dimension limit and the input checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models import hidden_spectrum as hs
from pipeline.models.spectra import SpectrumError


def test_observation_matrix():
    np.testing.assert_array_equal(hs.observation_matrix("1.0@60, 0.5"), [1, 0, 1])
    np.testing.assert_array_equal(hs.observation_matrix("1.0^2, 0.5^[1,1]"), [1, 0, 1, 1])
    np.testing.assert_array_equal(hs.observation_matrix("1.0@60^2, -1.0"), [1, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="observation"):
        hs.observation_matrix("1.0", "first")


@pytest.mark.parametrize(
    "text,eig", [("1.0^[1,1]", "1.0"), ("1.0, 1.0", "1.0"), ("0.5, 1.0@60^[2,1]", "1.0@60.0"), ("1.05^[1,2]", "1.05")]
)
def test_unobservable_refused_with_one_line(text, eig):
    for call in (
        lambda: hs.check_observable(text),
        lambda: hs.risk_block(text, [1.0], "best_fir", [1], [10]),
        lambda: hs.kalman_filter(text, 1.0),
        lambda: hs.bounded(text, "best_fir", [1]),
    ):
        with pytest.raises(hs.ObservabilityError) as info:
            call()
        msg = str(info.value)
        assert "\n" not in msg
        for part in (repr(text), eig, 'observation = "sum"', "Assumption 4.1"):
            assert part in msg, (part, msg)


def test_stable_repeated_blocks_allowed():
    hs.check_observable("0.5^[1,1], 1.0")
    f = hs.kalman_filter("0.5^[1,1], 1.0", 2.0)
    assert f.closed_loop_radius < 1
    assert np.all(np.isfinite(hs.risk_block("0.5^[1,1], 1.0", [2.0], "best_fir", [1, 2], [10, 1000])["risk"]))


def test_input_validation():
    with pytest.raises(ValueError, match="noise_ratio"):
        hs.risk_block("1.0", [0.0], "best_fir", [1], [10])
    with pytest.raises(ValueError, match="learner"):
        hs.risk_block("1.0", [1.0], "ols", [1], [10])
    with pytest.raises(ValueError, match="T must"):
        hs.risk_block("1.0", [1.0], "best_fir", [1], [0])
    with pytest.raises(ValueError, match="observation"):
        hs.risk_block("1.0", [1.0], "best_fir", [1], [10], observation="first")


def test_dimension_over_16_is_refused():
    """Observed spectra go to n = 32; hidden-state ones stop at 16, with the reason."""
    with pytest.raises(SpectrumError, match="dimension 17 exceeds the maximum 16"):
        hs.check_observable("1.0, 0.5^16")
