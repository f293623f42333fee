"""Tests of pipeline.models.precision.doubling: sums of matrix powers and the Riccati equation by doubling."""

from __future__ import annotations

import numpy as np
import pytest
from flint import arb, arb_mat
from scipy.linalg import solve_discrete_are

from pipeline.models.precision.balls import amat, eye, to_np
from pipeline.models.precision.context import working_precision
from pipeline.models.precision.doubling import ball_sigmabar, ramp_sums, riccati_doubling, sigmabar, sigmabar_loop

JORDAN_3 = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
ROTATION = 1.02 * np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])


@pytest.mark.parametrize("A", [JORDAN_3, ROTATION, np.diag([0.5, -0.9])], ids=["jordan", "rotation", "stable"])
@pytest.mark.parametrize("T", [1, 2, 7, 64, 333])
def test_sigmabar_doubling_matches_its_definition(A, T):
    ref = sigmabar_loop(A, T)
    np.testing.assert_allclose(sigmabar(A, T), ref, rtol=1e-12, atol=1e-13 * np.abs(ref).max())


def test_sigmabar_refuses_T_below_one():
    with pytest.raises(ValueError, match="T must be >= 1"):
        sigmabar(JORDAN_3, 0)


@pytest.mark.parametrize("T", [2, 5, 100, 1000])
def test_ball_sigmabar_matches_float(T):
    with working_precision(256):
        S = ball_sigmabar(JORDAN_3, T)
    np.testing.assert_allclose(to_np(S), sigmabar_loop(JORDAN_3, T), rtol=1e-13)


@pytest.mark.parametrize("N", [0, 1, 2, 3, 64, 100, 129])
def test_ramp_sums_match_their_definition(N):
    A = np.array([[0.9, 1.0], [0.0, 0.9]])
    K = np.array([[0.7], [0.2]])
    with working_precision(200):
        Aa, Ka, S = amat(A), amat(K), arb(3) / 2
        u, X, Z = ramp_sums(Aa, Ka, S, N)
        X_ref, Z_ref, P = arb_mat(2, 2), arb_mat(2, 2), eye(2)
        for _ in range(N):  # X_s = X_{s-1} + A^(s-1) K S K' A^(s-1)', Z_N = sum_{s=1..N} X_s
            v = P * Ka
            X_ref = X_ref + v * v.transpose() * S
            Z_ref = Z_ref + X_ref
            P = Aa * P
        u_ref = P * Ka
    for got, ref in ((u, u_ref), (X, X_ref), (Z, Z_ref)):
        np.testing.assert_allclose(to_np(got), to_np(ref), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("r", [0.01, 1.0, 100.0])
def test_riccati_doubling_solves_the_filter_riccati_equation(r):
    A = np.array([[1.0, 1.0], [0.0, 1.0]])
    C = np.array([1.0, 0.0])
    with working_precision(320):
        P = to_np(riccati_doubling(A, C, r, 320))
    ref = solve_discrete_are(A.T, C[:, None], np.eye(2), np.array([[r]]))
    np.testing.assert_allclose(P, ref, rtol=1e-9)
    S = C @ P @ C + r
    residual = A @ P @ A.T - np.outer(A @ P @ C, A @ P @ C) / S + np.eye(2) - P
    assert np.max(np.abs(residual)) < 1e-10 * np.max(np.abs(P))
