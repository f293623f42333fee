"""Running sums of a training set (MATH §6.3): exact up to their certified radii, and the same bits
whatever the grid, the chunking or the batch of trajectories."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from pipeline.models.fitted_fir import statistics as stats_mod
from pipeline.models.fitted_fir.least_squares import _radii
from pipeline.models.fitted_fir.statistics import training_statistics
from pipeline.models.fitted_fir.system import fitted_system
from pipeline.models.simulation.fitted_outputs import outputs, training_key


def _exact_series(ref, y):
    """The series sigma_0 .. sigma_q of one float trajectory as exact Fractions."""
    out = [[Fraction(float(v)) for v in y]]
    for f in ref.factors:
        prev = out[-1]
        coeffs = [Fraction(1), Fraction(f.a1), Fraction(f.a2)][: f.degree + 1]
        out.append([sum(c * prev[t - i] for i, c in enumerate(coeffs) if t - i >= 0) for t in range(len(prev))])
    return out


@pytest.mark.parametrize(("text", "r"), [("1.0^3", 100.0), ("1.0^2, 1.0@60, 0.5", 4.0), ("0.9", 1.0), ("1.05", 1.0)])
def test_running_sums_within_certified_radius(text, r):
    s = fitted_system(text, r)
    T, m = 300, 3
    st = training_statistics(s, seed=2, fit=1, T=[T], trajectories=[m], k_max=6)
    Y = outputs(s, 2, training_key(s, 1), m, T + 1)
    series = [_exact_series(st.reference, y) for y in Y]
    rad = _radii(st, 0, 0)
    worst = 0.0
    for si, (a, b, e) in enumerate(st.keys):
        for j in range(st.J):
            M = T - j
            exact = sum(
                (ser[a][tau] * ser[b][tau - e] for ser in series for tau in range(M + 1) if tau - e >= 0), Fraction(0)
            )
            got = Fraction(float(st.hi[0, 0, si, j])) + Fraction(float(st.lo[0, 0, si, j]))
            err = abs(float(got - exact))
            assert err <= rad[si, j], (a, b, e, j, err, rad[si, j])
            scale = np.sqrt(float(st.hi[0, 0, st.index((a, a, 0)), j]) * float(st.hi[0, 0, st.index((b, b, 0)), j]))
            worst = max(worst, rad[si, j] / scale)
    assert worst < 1e-13  # the radii are a few dozen units of roundoff, not more


def _stats(T, m, k_max=6, text="1.0^2, 1.0@60, 0.5"):
    return training_statistics(fitted_system(text, 4.0), seed=9, fit=0, T=T, trajectories=m, k_max=k_max)


def test_same_bits_on_random_sub_grids():
    T_full, m_full = [3, 17, 128, 129, 700, 1025, 2500], [1, 2, 31, 32, 33, 70]
    full = _stats(T_full, m_full)
    rng = np.random.default_rng(0)
    for _ in range(4):
        Ts = sorted(rng.choice(T_full, size=rng.integers(1, 4), replace=False).tolist())
        ms = sorted(rng.choice(m_full, size=rng.integers(1, 3), replace=False).tolist())
        sub = _stats(Ts, ms)
        iT = [T_full.index(t) for t in Ts]
        im = [m_full.index(v) for v in ms]
        assert np.array_equal(sub.hi, full.hi[np.ix_(iT, im)]) and np.array_equal(sub.lo, full.lo[np.ix_(iT, im)])


def test_same_bits_whatever_the_batch_and_k_max(monkeypatch):
    ref = _stats([200, 1100], [5, 40], k_max=8)
    monkeypatch.setattr(stats_mod, "TRAJECTORY_BATCH", 7)
    other = _stats([200, 1100], [5, 40], k_max=8)
    assert np.array_equal(ref.hi, other.hi) and np.array_equal(ref.lo, other.lo)
    small = _stats([200, 1100], [5, 40], k_max=5)
    for si, key in enumerate(small.keys):
        sj = ref.index(key)
        assert np.array_equal(small.hi[:, :, si], ref.hi[:, :, sj, : small.J])


def test_grid_errors():
    with pytest.raises(ValueError, match="T"):
        _stats([10, 5], [1])
    with pytest.raises(ValueError, match="trajectories"):
        _stats([10], [0])
