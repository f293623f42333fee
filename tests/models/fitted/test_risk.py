"""Exact risk of a fitted learner and the bias (the m -> infinity limit, MATH.md 6.6)."""

import mpmath as mp
import numpy as np
import pytest
from flint import arb_mat

from pipeline.models.fitted import cells
from pipeline.models.fitted import problem as pr
from pipeline.models.fitted.risk import bias_bounded, bias_log2, risk_of
from pipeline.models.precision.context import working_precision
from pipeline.models.spectra import parse_spectrum
from tests.models.fitted import oracles

# MATH.md 6.6: exact best-in-class risk, nominal zero, leading, d = k^2, k = 1..6
TABLE = {
    ("1.0^4, 0.4^[1,1,1]", 10): [815.7320202, 97.76079757, 6.519576344, 0.5034013613, 0.3356009075, 0.1678004538],
    ("1.0^4, 0.4^[1,1,1]", 70): [14089170.03, 29254.08643, 39.07634274, 0.5617103984, 0.374473599, 0.1872367995],
    ("1.1^4, 0.4^[1,1,1]", 70): [5.526951964e11, 726519318.5, 244505.8548, 0.5617103984, 0.374473599, 0.1872367995],
}


@pytest.mark.parametrize(("spectrum", "T"), list(TABLE))
def test_bias_reproduces_math_6_6(spectrum, T):
    prob = pr.leading_problem(spectrum, np.eye(7))
    r = np.exp2(bias_log2(prob, T))
    got = np.array([r[k * k] for k in range(1, 7)])
    assert got == pytest.approx(TABLE[(spectrum, T)], rel=1e-9)
    assert r[49] == 0.0  # k = 7: the class holds A
    bounded = bias_bounded(prob)
    assert not bounded[15] and bounded[16]  # critical d = k_u^2 = 16


@pytest.mark.parametrize("family", ["block", "full", "similarity"])
def test_bias_of_a_perturbed_nominal_is_the_observed_cube(family):
    """nominal = "perturbed" with the adversary's own family: the bias is r_T(d) of MATH 1.3
    as the observed kernel computes it from the same stored matrices."""
    from pipeline.models import observed as om

    spectrum, T = "1.0^2, 0.5", 300
    B = om.learner_basis(spectrum, family, 4, "random")
    H = om.perturbations(spectrum, family, 4, 1, "random")
    Q = om.basis_change(spectrum, "random", 4)
    ref = om.exact_log2_risk(om.problem_from_matrices(spectrum, family, B, H, Q), [T])[0, :, 0]
    got = bias_log2(pr.fit_problem(spectrum, family, B, Q, "perturbed", family, H[0]), T)
    finite = np.isfinite(ref)
    assert np.array_equal(finite, np.isfinite(got))
    assert np.allclose(got[finite], ref[finite], rtol=0, atol=1e-9)


def test_risk_of_a_given_learner_equals_an_O_T_loop():
    """trace(Delta Sigmabar_T Delta') against (1/T) sum_t trace(Delta Sigma_t Delta') in mpmath."""
    spectrum, T = "1.05@40, 1.0^2, 0.3", 40
    J = parse_spectrum(spectrum).jordan_matrix()
    n = J.shape[0]
    Delta = np.random.default_rng(3).standard_normal((n, n)) * 1e-3
    with mp.workdps(60):
        Jm, Dm = mp.matrix(J.tolist()), mp.matrix(Delta.tolist())
        Sig, acc, P = mp.zeros(n, n), mp.mpf(0), mp.eye(n)
        for _t in range(T):
            M = Dm * Sig * Dm.T
            acc += mp.fsum(M[i, i] for i in range(n))
            Sig, P = Sig + P * P.T, P * Jm
        ref = acc / T
    with working_precision(200):
        got = risk_of(spectrum, T, 200, arb_mat(Delta.tolist()))
    assert float(got.mid()) == pytest.approx(float(ref), rel=1e-14)
    assert float(oracles.mp_risk(J, T, mp.matrix(Delta.tolist()))) == pytest.approx(float(ref), rel=1e-14)


def test_fitted_mean_meets_the_bias_as_m_grows():
    """Figure 1 in small: below k_u the learned risk is the bias (variance negligible); from
    k_u on it is bias plus ~d/(mT)."""
    spectrum, T, m = "1.0^4, 0.4^[1,1,1]", 30, 300
    prob = pr.leading_problem(spectrum, np.eye(7))
    ds = [1, 4, 9, 16, 49]
    risks = []
    for fit in range(4):
        mo = cells.training_set(spectrum, 5, (spectrum, fit), [T], [m])
        risks.append(cells.evaluate(prob, mo, ds).risk[0, 0])
    mean = np.mean(risks, axis=0)
    bias = np.exp2(bias_log2(prob, T))[ds]
    assert mean[:3] == pytest.approx(bias[:3], rel=0.05)
    excess = (mean - bias)[3:]
    assert np.all(excess > 0) and np.all(excess < 5 * np.array(ds[3:]) / (m * T))
