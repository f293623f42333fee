"""The fitted filter equals independent least-squares solves of the same float data (MATH §6.2, §6.4).

* easy cells: statsmodels ``OLS`` on the explicit zero-padded design matrix; tolerance
  ``10 cond(X) u max|theta|`` (a backward-stable solver's forward error) plus our certified radius;
* hard cells (marginal Jordan blocks, noise ratio up to 100, ``T`` to 1e5): an mpmath solve of the
  exact normal equations of the same float trajectories, to 1e-8 relative, where float64 normal
  equations return garbage.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import statsmodels.api as sm

from pipeline.models.fitted_fir import least_squares as ls
from pipeline.models.fitted_fir.least_squares import fit_cells
from pipeline.models.fitted_fir.statistics import training_statistics
from pipeline.models.fitted_fir.system import fitted_system
from pipeline.models.simulation.fitted_outputs import outputs, training_key
from tests.oracles.fitted_fir import design_matrix, float_normal_equations, mp_theta

U = 2.0**-53


def _fits(text, r, T, m, ks, seed=4, fit=0):
    s = fitted_system(text, r)
    st = training_statistics(s, seed=seed, fit=fit, T=[T], trajectories=[m], k_max=max(ks))
    Y = outputs(s, seed, training_key(s, fit), m, T + 1)
    return fit_cells(st, 0, 0, ks), Y


def _exact_hi_lo(f):
    hi, lo = f.as_float()
    return [mp.mpf(a) + mp.mpf(b) for a, b in zip(hi, lo, strict=True)]


@pytest.mark.parametrize(
    ("text", "r", "T", "m"),
    [("0.9", 1.0, 200, 3), ("0.5@40, 0.2", 0.5, 400, 1), ("0.9", 10.0, 60, 20), ("1.0", 4.0, 80, 2)],
)
def test_easy_cells_equal_statsmodels_ols(text, r, T, m):
    ks = [1, 2, 4, 7]
    fits, Y = _fits(text, r, T, m, ks)
    for k in ks:
        X, z = design_matrix(Y, k, T)
        ols = sm.OLS(z, X).fit().params
        ours, _ = fits[k].as_float()
        tol = 10 * np.linalg.cond(X) * U * np.max(np.abs(ols)) + 2.0 ** -fits[k].bits * np.max(np.abs(ours))
        assert np.max(np.abs(ours - ols)) <= tol, (k, ours, ols, tol)
        assert not fits[k].underdetermined


def test_underdetermined_cells_are_minimum_norm():
    """``k > T``: the zero columns get zero taps; the filter equals OLS's pseudo-inverse solution."""
    T, m = 6, 3
    fits, Y = _fits("1.0^2", 1.0, T, m, [3, 6, 9, 12])
    for k in (9, 12):
        f = fits[k]
        assert f.underdetermined and len(f.theta) == T
        X, z = design_matrix(Y, k, T)
        with pytest.warns(Warning, match="rank-deficient"):
            ols = sm.OLS(z, X).fit().params  # pinv: the minimum-norm solution
        assert np.max(np.abs(ols[T:])) < 1e-12
        hi, _ = f.as_float()
        assert hi.shape == (k,) and np.all(hi[T:] == 0.0)
        assert np.max(np.abs(hi[:T] - ols[:T])) <= 1e-9 * np.max(np.abs(hi))
    assert not fits[6].underdetermined


def _hard(text, r, T, m, ks):
    fits, Y = _fits(text, r, T, m, ks)
    out = []
    for k in ks:
        ref = mp_theta(Y, k, T)
        scale = max(abs(x) for x in ref)
        err = max(abs(a - b) for a, b in zip(_exact_hi_lo(fits[k]), ref, strict=True)) / scale
        float_err = max(abs(mp.mpf(a) - b) for a, b in zip(float_normal_equations(Y, k, T), ref, strict=True)) / scale
        out.append((k, float(err), float(float_err), fits[k].bits))
    return out


@pytest.mark.parametrize(("text", "r"), [("1.0^3", 100.0), ("1.0^3", 1.0), ("1.0^2", 100.0)])
def test_hard_cells_equal_mpmath_where_float_normal_equations_fail(text, r):
    for k, err, _, bits in _hard(text, r, 3000, 2, [3, 4, 8]):
        assert err <= 1e-8, (k, err, bits)
        assert bits >= ls.MIN_THETA_BITS
    if text == "1.0^3":
        assert max(fe for _, _, fe, _ in _hard(text, r, 3000, 2, [3])) > 1e-4  # float64 fails


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "r"), [("1.0^3", 100.0), ("1.0^2", 100.0), ("1.0^2, 1.0@60, 0.5", 10.0), ("1.0", 100.0)]
)
def test_hard_cells_at_T_1e5(text, r):
    rows = _hard(text, r, 100_000, 2, [1, 3, 5, 8])
    for k, err, _, bits in rows:
        assert err <= 1e-8, (k, err, bits)  # measured; certified bits may be lower (reported per cell)
    if text in ("1.0^3", "1.0^2"):
        assert max(fe for _, _, fe, _ in rows) > 1e-5


def test_uncertified_cells_are_refitted_exactly(monkeypatch):
    """A cell below MIN_THETA_BITS is recomputed from exact sums of its raw data and then agrees
    with mpmath to the target."""
    monkeypatch.setattr(ls, "MIN_THETA_BITS", 80)  # no float-sum cell reaches this
    fits, Y = _fits("1.0^3", 100.0, 400, 2, [2, 5])
    for k in (2, 5):
        assert fits[k].bits >= ls.THETA_BITS
        ref = mp_theta(Y, k, 400)
        err = max(abs(a - b) for a, b in zip(_exact_hi_lo(fits[k]), ref, strict=True)) / max(abs(x) for x in ref)
        assert err <= 1e-15


def test_beyond_the_refit_limit_the_certified_bits_are_reported(monkeypatch):
    monkeypatch.setattr(ls, "MIN_THETA_BITS", 80)
    monkeypatch.setattr(ls, "EXACT_LIMIT", 10)
    fits, Y = _fits("1.0", 1.0, 50, 1, [2])
    assert 27 <= fits[2].bits < 80
    ref = mp_theta(Y, 2, 50)
    assert max(abs(a - b) for a, b in zip(_exact_hi_lo(fits[2]), ref, strict=True)) <= 2.0 ** -fits[2].bits * 2


def test_k_outside_the_statistics_is_refused():
    s = fitted_system("0.9", 1.0)
    st = training_statistics(s, seed=1, fit=0, T=[20], trajectories=[1], k_max=3)
    with pytest.raises(ValueError, match="k_max"):
        fit_cells(st, 0, 0, [4])


def test_square_systems_are_refitted_exactly():
    """``k = T``, ``m = 1``: the fit interpolates the data; the float sums cannot certify it, the
    exact refit can."""
    fits, Y = _fits("1.0^2", 10.0, 10, 1, [6, 10])
    for k in (6, 10):
        assert fits[k].bits >= ls.THETA_BITS
        ref = mp_theta(Y, k, 10)
        err = max(abs(a - b) for a, b in zip(_exact_hi_lo(fits[k]), ref, strict=True)) / max(abs(x) for x in ref)
        assert err <= 1e-15
