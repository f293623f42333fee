"""The noise margin of a verdict when its standard error is estimated from few draws."""

import numpy as np
import pytest

from pipeline.core import verdicts


def test_noise_sigmas_keep_the_normal_coverage_with_estimated_errors():
    """A miss of t standard errors, the error estimated from n draws, is as rare as a normal
    miss of NOISE_SIGMAS: checked by simulation of the t statistic itself."""
    assert verdicts.noise_sigmas() == verdicts.NOISE_SIGMAS
    assert verdicts.noise_sigmas(1) == np.inf
    assert verdicts.noise_sigmas(3) == pytest.approx(19.2, abs=0.1)
    assert verdicts.noise_sigmas(100) == pytest.approx(3.1, abs=0.05)
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((200_000, 3))
    t = draws.mean(axis=1) / (draws.std(axis=1, ddof=1) / np.sqrt(3))
    plain = np.mean(np.abs(t) > verdicts.NOISE_SIGMAS)
    calibrated = np.mean(np.abs(t) > verdicts.noise_sigmas(3))
    assert plain > 0.05  # a plain 3 with 3 draws: a false miss about one time in ten
    assert calibrated < 0.01  # normal coverage: 0.0027


def test_settled_uses_the_calibrated_margin():
    holds = np.array([True])
    args = (holds, holds, np.array([True]), np.array([5.0]), np.array([1.0]))
    assert verdicts.settled(*args)[0]
    assert not verdicts.settled(*args, samples=3)[0]


@pytest.mark.parametrize("sigma", [0.0, np.nan])
def test_one_draw_settles_nothing(sigma, recwarn):
    holds = np.array([True, False])
    args = (holds, holds, np.array([True, True]), np.array([5.0, -5.0]), np.array([sigma, sigma]))
    assert not verdicts.settled(*args, samples=1).any()
    assert verdicts.settled(*args, samples=2).all()  # two draws and a zero spread: clear
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
