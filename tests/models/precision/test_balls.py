"""Tests of pipeline.models.precision.balls: ball matrices to and from numpy, Cholesky, row scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from flint import arb

from pipeline.models.precision.balls import amat, eye, log10, max_abs, row_scaled, to_np, upper_cholesky
from pipeline.models.precision.context import working_precision


def test_conversions_are_exact():
    X = np.array([[0.1, -2.5e-300], [1e300, 3.0]])
    assert np.array_equal(to_np(amat(X)), X)
    assert to_np(amat([1.0, 2.0])).shape == (1, 2)
    assert np.array_equal(to_np(eye(3)), np.eye(3))
    assert max_abs(amat(X)) == 1e300


def test_upper_cholesky_and_row_scaling():
    S = np.array([[4.0, 2.0, 0.4], [2.0, 5.0, 1.0], [0.4, 1.0, 3.0]]) * 2.0**600
    with working_precision(200):
        R = upper_cholesky(amat(S))
        assert R is not None
        mant, exps, ok = row_scaled(R, 60)
    assert ok
    assert np.all((np.abs(mant).max(axis=1) >= 0.5) & (np.abs(mant).max(axis=1) < 1.0))
    Rf = np.ldexp(mant, exps[:, None])
    np.testing.assert_allclose(Rf.T @ Rf, S, rtol=1e-14)
    assert np.all(np.tril(mant, -1) == 0)


def test_upper_cholesky_of_an_indefinite_matrix_is_none():
    with working_precision(100):
        assert upper_cholesky(amat(np.array([[1.0, 2.0], [2.0, 1.0]]))) is None


def test_row_scaled_reports_uncertain_entries():
    with working_precision(30):
        wide = arb(1) / 3  # 30 bits: not certain to 60
    _, _, ok = row_scaled([[wide]], 60)
    assert not ok


def test_log10_of_balls():
    with working_precision(300):
        v = arb(10) ** 250
    assert log10(v) == pytest.approx(250.0, rel=1e-15)
    assert log10(arb(0)) == -math.inf
