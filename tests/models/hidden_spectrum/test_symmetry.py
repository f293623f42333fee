"""Tests of pipeline.models.hidden_spectrum.symmetry: a spectrum that is its own negative keeps
its sign symmetry exactly in the 320-bit gain, so the exact zeros it implies are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.models import hidden_spectrum as hs
from pipeline.models.hidden_spectrum.kalman import KALMAN_BITS, _riccati, exact_inputs
from pipeline.models.hidden_spectrum.symmetry import sign_symmetry
from pipeline.models.hidden_spectrum.zeros import dyadic, risk_is_zero
from pipeline.models.spectra import parse_spectrum

SYMMETRIC = ["1.0, -1.0", "1.0^2, -1.0^2", "0.5@30, 0.5@150", "0.0^2, 1.0, -1.0", "0.5, -0.5, 1.0^2, -1.0^2"]
NOT_SYMMETRIC = ["1.0, 0.5", "1.0^2, -1.0", "1.0@60, 1.0@120", "1.0@90"]  # the floats of the last two break it
RATIOS = [0.1, 0.31622776601683794, 1.0, 3.1622776601683795, 100.0]


def _pi(text: str) -> np.ndarray | None:
    sp = parse_spectrum(text)
    return sign_symmetry(sp, hs.observation_matrix(sp))


@pytest.mark.parametrize("text", SYMMETRIC)
def test_a_self_negative_spectrum_has_its_signed_permutation(text):
    Pi = _pi(text)
    A = parse_spectrum(text).jordan_matrix()
    C = hs.observation_matrix(text)
    assert Pi is not None
    np.testing.assert_array_equal(Pi @ Pi.T, np.eye(A.shape[0]))
    np.testing.assert_array_equal(Pi @ A @ Pi.T, -A)
    np.testing.assert_array_equal(C @ Pi.T, C)


@pytest.mark.parametrize("text", NOT_SYMMETRIC)
def test_no_symmetry_is_claimed_where_the_floats_do_not_have_it(text):
    assert _pi(text) is None


@pytest.mark.parametrize("r", RATIOS)
def test_the_gain_is_exactly_antisymmetric_and_moved_below_its_accuracy(r):
    text = "1.0, -1.0"
    ex = exact_inputs(text, r, "sum")
    K, _ = dyadic(ex.K)
    assert K[0][0] == -K[1][0] != 0
    sp = parse_spectrum(text)
    raw = _riccati(sp.jordan_matrix(), hs.observation_matrix(sp), r, KALMAN_BITS)[1]
    moved = max(abs(float((ex.K[i, 0] - raw[i, 0]).mid())) for i in range(2))
    assert moved <= 2.0**-300 * abs(float(ex.K[0, 0].mid()))


@pytest.mark.parametrize("r", RATIOS)
def test_mirror_zeros_are_exact_at_every_noise_ratio(r):
    """Before the gain kept its symmetry, noise ratios >= 1 gave log10_risk ~ -195 to -230 at
    (k, T) = (16, 17), (50, 51): the rounding of the gain, not the risk."""
    ex = exact_inputs("1.0, -1.0", r, "sum")
    assert risk_is_zero(ex, 16, 1) and not risk_is_zero(ex, 16, 2) and not risk_is_zero(ex, 17, 1)
    for learner in hs.LEARNERS:
        out = hs.risk_block("1.0, -1.0", [r], learner, [16, 50, 17], [17, 51, 19])["log10_risk"][0]
        assert out[0, 0] == -math.inf and out[1, 1] == -math.inf
        assert math.isfinite(out[2, 2]) and out[2, 2] > -40


def test_symmetric_blocks_of_size_two_have_exact_zeros_too():
    ex = exact_inputs("1.0^2, -1.0^2", 1.0, "sum")
    assert risk_is_zero(ex, 6, 1) and not risk_is_zero(ex, 7, 1)
    assert hs.risk_block("1.0^2, -1.0^2", [1.0], "best_fir", [6], [7])["log10_risk"].item() == -math.inf
