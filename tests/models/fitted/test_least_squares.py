"""The exact fit against independent oracles (issue 20, item 3).

* easy cells: statsmodels ``OLS`` of the explicit design in the system's coordinates;
* hard cells (Jordan blocks of size 3-4 at 1 and 1.1, T to 10^4, the full class): an
  mpmath solve of the same statistics, and an mpmath risk;
* MATH.md 6.4's example, beside float64 normal equations;
* underdetermined cells: numpy's ``pinv`` of the explicit design, flagged.
"""

import mpmath as mp
import numpy as np
import pytest
import statsmodels.api as sm

from pipeline.models.fitted import cells
from pipeline.models.fitted import problem as pr
from pipeline.models.fitted.leading import leading_basis
from pipeline.models.observed import basis_change, learner_basis, perturbations
from pipeline.models.parametrisation import learner_matrices
from pipeline.models.precision.doubling import sigmabar
from pipeline.models.simulation.fitted_states import trajectories
from pipeline.models.spectra import parse_spectrum
from tests.models.fitted import oracles

SEED = 11


def _basis(spectrum, learner, basis):
    n = parse_spectrum(spectrum).n
    if learner == "leading":
        return leading_basis(n)
    return learner_matrices(spectrum, learner, SEED, basis)


EASY = [
    ("0.9, 0.5^2", "jordan", "full", "zero", None),
    ("0.8@40, 0.3", "random", "full", "zero", None),
    ("0.9, 0.5^2", "random", "leading", "zero", None),
    ("0.7, 0.5, 0.2", "random", "diagonal", "zero", None),
    ("0.9^2, 0.5", "random", "block", "perturbed", "block"),
    ("0.9^2, 0.5", "jordan", "leading", "perturbed", "similarity"),
]


@pytest.mark.parametrize(("spectrum", "basis", "learner", "nominal", "adversary"), EASY)
def test_easy_cells_equal_statsmodels_ols(spectrum, basis, learner, nominal, adversary):
    n = parse_spectrum(spectrum).n
    Q = basis_change(spectrum, basis, SEED)
    B = _basis(spectrum, learner, basis)
    J = parse_spectrum(spectrum).jordan_matrix()
    A = Q @ J @ Q.T
    H = perturbations(spectrum, adversary, SEED, 1, basis)[0] if adversary else None
    A0 = A - H if H is not None else np.zeros((n, n))
    prob = pr.fit_problem(spectrum, learner, B, Q, nominal, adversary, H)
    key = (spectrum, 3)
    T, m = [6, 25], [2, 9]
    ds = sorted({1, 2, prob.D // 2, prob.D})
    mo = cells.training_set(spectrum, SEED, key, T, m)
    fit = cells.evaluate(prob, mo, ds)
    worst = 0.0
    for j, TT in enumerate(T):
        for i, mm in enumerate(m):
            for q, d in enumerate(ds):
                X, y = oracles.system_design(spectrum, SEED, key, mm, TT, Q, B, A0, d)
                ref = sm.OLS(y, X).fit().params
                got = fit.phi[j, i, q, :d]
                worst = max(worst, float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))))
                assert not fit.underdetermined[j, i, q]
                assert np.all(np.isnan(fit.phi[j, i, q, d:]))
    assert worst < 1e-10


def _hard_problem(spectrum, learner, nominal="zero"):
    n = parse_spectrum(spectrum).n
    B = leading_basis(n) if learner == "leading" else learner_basis(spectrum, learner, SEED)
    if nominal == "zero":
        return pr.fit_problem(spectrum, learner, B, np.eye(n))
    H = perturbations(spectrum, learner, SEED, 1)[0]
    return pr.fit_problem(spectrum, learner, B, np.eye(n), "perturbed", learner, H)


HARD = [
    ("1.0^4, 0.4^[1,1,1]", 10_000, 2, "full", "zero", [16, 28, 49]),
    ("1.0^3", 10_000, 3, "full", "zero", [4, 9]),
    ("1.1^4, 0.4^[1,1,1]", 2_000, 2, "full", "zero", [28, 49]),
    ("1.1^4, 0.4^[1,1,1]", 10_000, 2, "leading", "zero", [16, 49]),
    ("1.0^4, 0.4^[1,1,1]", 10_000, 2, "block", "perturbed", [10, 16, 25]),
    ("1.1^4, 0.4^[1,1,1]", 5_000, 2, "similarity", "perturbed", [8, 30]),
    ("1.05@30^2, 0.5", 2_000, 3, "full", "zero", [12, 25]),
]


@pytest.mark.parametrize(("spectrum", "T", "m", "learner", "nominal", "ds"), HARD)
def test_hard_cells_equal_mpmath(spectrum, T, m, learner, nominal, ds):
    prob = _hard_problem(spectrum, learner, nominal)
    mo = cells.training_set(spectrum, SEED, (spectrum, 0), [T], [m])
    fit = cells.evaluate(prob, mo, ds)
    bits = int(fit.bits.max())
    J = parse_spectrum(spectrum).jordan_matrix()
    with mp.workprec(2 * bits + 200):
        S, W = oracles.mp_statistics(mo, 0, 0)
        for q, d in enumerate(ds):
            phi, Delta = oracles.mp_fit(prob, S, W, d)
            ref = np.array([float(x) for x in phi])
            got = fit.phi[0, 0, q, :d]
            assert np.max(np.abs(got - ref)) <= 1e-8 * np.max(np.abs(ref))
            risk = oracles.mp_risk(J, T, Delta)
            assert abs(fit.log10_risk[0, 0, q] - float(mp.log10(risk))) <= 1e-9 / np.log(10)
            if np.isfinite(fit.risk[0, 0, q]):
                assert fit.risk[0, 0, q] == pytest.approx(float(risk), rel=1e-9)


def _naive_float64(spectrum, T, m, d):
    """Float64 normal equations on S = sum x x', C = sum x_(t+1) x' and a float64 risk."""
    n = parse_spectrum(spectrum).n
    J = parse_spectrum(spectrum).jordan_matrix()
    B = leading_basis(n)[:d]
    z, _ = trajectories(spectrum, SEED, (spectrum, 0), m, T)
    x, xn = z[:, :T].reshape(-1, n), z[:, 1 : T + 1].reshape(-1, n)
    S, C = x.T @ x, xn.T @ x
    G = np.einsum("arc,brd,dc->ab", B, B, S)
    b = np.einsum("arc,rc->a", B, C)
    D = J - np.einsum("a,arc->rc", np.linalg.solve(G, b), B)
    return float(np.trace(D @ sigmabar(J, T) @ D.T))


def test_math_6_4_example_is_exact():
    """1.1^4, 0.4^[1,1,1], leading, d = 49, m = 300: the fit holds A up to noise, so
    log(1 + R) ~ d / (m T) scale. Float64 normal equations still agree at T = 70 on these
    data (MATH 6.4 reports 0.45 there), but return garbage by T = 150 (0.08 to 0.3, the value
    depending on the CPU's code paths) and log(1 + R) > 10 at T = 200 on every CPU tried, where
    the exact risk stays at noise level."""
    spectrum = "1.1^4, 0.4^[1,1,1]"
    prob = pr.leading_problem(spectrum, np.eye(7))
    mo = cells.training_set(spectrum, SEED, (spectrum, 0), [70, 200], [300])
    fit = cells.evaluate(prob, mo, [49])
    exact = np.log1p(fit.risk[:, 0, 0])
    assert np.all(exact < 5 * 49 / (300 * np.array([70, 200])))
    assert np.log1p(_naive_float64(spectrum, 70, 300, 49)) == pytest.approx(exact[0], rel=0.2)
    naive = np.log1p(_naive_float64(spectrum, 200, 300, 49))
    assert naive > 1 > 100 * exact[1]


def test_underdetermined_cells_are_minimum_norm_and_flagged():
    spectrum = "1.0^2, 0.5"
    prob = _hard_problem(spectrum, "full")  # D = 9, n = 3
    T, m = [1, 2, 3], [1, 2]
    ds = [0, 2, 3, 4, 9]
    key = (spectrum, 0)
    mo = cells.training_set(spectrum, SEED, key, T, m)
    fit = cells.evaluate(prob, mo, ds)
    z, v = trajectories(spectrum, SEED, key, 2, 3)
    from pipeline.models.fitted.least_squares import design

    for j, TT in enumerate(T):
        for i, mm in enumerate(m):
            for q, d in enumerate(ds):
                X, y = design(prob, z[:mm, :TT].reshape(-1, 3), v[:mm, :TT].reshape(-1, 3), d)
                if d == 0:
                    assert fit.phi[j, i, q].size == 9 and np.all(np.isnan(fit.phi[j, i, q]))
                    continue
                ref = np.linalg.pinv(X) @ y
                assert np.allclose(fit.phi[j, i, q, :d], ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))
                rank = np.linalg.matrix_rank(X) if X.size else 0
                assert fit.underdetermined[j, i, q] == (rank < d)
    # T = 1: no data at all, phi = 0, flagged, and Sigmabar_1 = 0 makes the risk exactly 0
    assert np.all(fit.phi[0, :, 1:][~np.isnan(fit.phi[0, :, 1:])] == 0)
    assert np.all(fit.underdetermined[0, :, 1:]) and np.all(fit.risk[0] == 0)
    assert np.all(fit.log10_risk[0] == -np.inf)
    # both kinds occur among the few-data cells: one regressor (T = 2, m = 1) fits d = 3 but not d = 4
    assert not fit.underdetermined[1, 0, 2] and fit.underdetermined[1, 0, 3]
    assert not np.any(fit.underdetermined[2, 1])  # m (T - 1) = 4 >= n: the statistics path
