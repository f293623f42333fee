"""Tests of pipeline.models.hidden_spectrum.kalman (MATH.md §5.1, §5.5)."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from pipeline.models import hidden_spectrum as hs
from tests.oracles import hidden_spectrum as orc
from tests.references import assert_as_printed


def test_reference_kalman_1_0_squared():
    f = hs.kalman_filter("1.0^2", 1.0)
    assert_as_printed(f.P.ravel(), ["4.613134260996", "2.369205407092", "2.369205407092", "2.947122966707"], "P")
    np.testing.assert_allclose(f.K, [1.243928853904, 0.422082440385], rtol=1e-11)
    assert f.closed_loop_radius == pytest.approx(0.422082440385, rel=1e-11)
    assert np.iscomplex(np.linalg.eigvals(f.F)).all()  # "a complex pair"
    assert pytest.approx(f.P[0, 0] + 1.0, rel=1e-15) == f.S


KALMAN_SPECTRA = ["1.0", "1.0^2", "1.0^4", "1.05", "1.05^2", "1.05@30, 0.3^2", "1.0@60^2", "0.9^2, 0.5", "1.0, -1.0"]


KALMAN_RATIOS = [1e-4, 0.01, 1.0, 100.0, 1e4, 1e6]


@pytest.mark.slow
@pytest.mark.parametrize("text", KALMAN_SPECTRA)
def test_kalman_vs_mpmath(text):
    A, C = orc.system(text)
    worst = 0.0
    for r in KALMAN_RATIOS:
        f = hs.kalman_filter(text, r)
        with mp.workdps(60):
            P, K, S, _F = orc.mp_kalman(A, C, r)
            n = A.shape[0]
            pmax = max(abs(P[i, j]) for i in range(n) for j in range(n))
            e = max(float(abs(f.P[i, j] - P[i, j]) / pmax) for i in range(n) for j in range(n))
            kmax = max(abs(K[i]) for i in range(n))
            e = max(e, max(float(abs(f.K[i] - K[i]) / kmax) for i in range(n)), float(abs(f.S / S - 1)))
            # entrywise where not tiny
            for i in range(n):
                for j in range(n):
                    if abs(P[i, j]) > pmax * mp.mpf("1e-6"):
                        e = max(e, float(abs(f.P[i, j] / P[i, j] - 1)))
        worst = max(worst, e)
        assert e < 1e-12, (text, r, e)
        assert 0 < f.closed_loop_radius < 1
        np.testing.assert_allclose(f.F, f.A - np.outer(f.K, f.C), rtol=0, atol=1e-15 * np.abs(f.A).max())
    print(f"{text}: max rel err of P, K, S vs mpmath {worst:.1e}")


def test_kalman_vs_scipy():
    for text in KALMAN_SPECTRA:
        A, C = orc.system(text)
        for r in (0.01, 1.0, 100.0):
            P, K, _S, _F = orc.float_kalman(A, C, r)
            f = hs.kalman_filter(text, r)
            np.testing.assert_allclose(f.P, P, rtol=1e-8, atol=1e-10 * np.abs(P).max())
            np.testing.assert_allclose(f.K, K, rtol=1e-8, atol=1e-10 * np.abs(K).max())


def test_cached_filter_is_read_only():
    f = hs.kalman_filter("1.0^2", 1.0)
    assert f is hs.kalman_filter("1.0^2", 1.0)  # one solution per (spectrum, noise_ratio), shared
    for array in (f.A, f.C, f.P, f.K, f.F):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0
