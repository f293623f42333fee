"""Theory of fitted learners (MATH.md 6.5): critical d, Dickey-Fuller constants."""

import numpy as np
import pytest

from pipeline.models.fitted import problem as pr
from pipeline.models.fitted import theory as th
from pipeline.models.fitted.leading import leading_basis
from pipeline.models.fitted.risk import bias_bounded
from pipeline.models.observed import basis_change
from pipeline.models.parametrisation import learner_matrices


def test_dickey_fuller_moments():
    mean, second = th.dickey_fuller_moments()
    assert mean == pytest.approx(-1.781430, abs=1e-6)  # MATH 6.5: E Z ~ -1.78
    assert second - mean**2 == pytest.approx(10.11217, abs=1e-5)  # Var Z ~ 10.1
    assert th.random_walk_constant() == pytest.approx(6.642833, abs=1e-6)  # ~ 6.6


# the asymptotic quantiles to 4 digits (Tanaka, Time Series Analysis, 1996, computed the same way)
PRECISE = {0.01: -13.695, 0.05: -8.039, 0.10: -5.714}


@pytest.mark.parametrize(("p", "q"), sorted(th.FULLER_QUANTILES.items()))
def test_dickey_fuller_distribution_reproduces_fullers_table(p, q):
    """Fuller's table (Monte Carlo, two to three digits) holds to its printed accuracy:
    the probabilities to 0.002, the quantiles to 0.11; the inversion itself is precise."""
    assert th.dickey_fuller_cdf(q) == pytest.approx(p, abs=0.002)
    got = th.dickey_fuller_quantile(p)
    assert got == pytest.approx(q, abs=0.11)
    assert got == pytest.approx(PRECISE[p], abs=1e-3)


def test_dickey_fuller_distribution_matches_its_mean():
    """E Z from the distribution function (int of the cdf's complement pieces) agrees with
    the Laplace-transform mean: an internal consistency check of the inversion."""
    xs = np.linspace(-60, 8, 400)
    F = np.array([th.dickey_fuller_cdf(x) for x in xs])
    mean = xs[-1] - np.trapezoid(F, xs)  # E Z = b - int_a^b F (a, b past the support's mass)
    assert mean == pytest.approx(th.dickey_fuller_moments()[0], abs=0.01)


CASES = [
    # (spectrum, learner, basis, nominal, adversary, critical d)
    ("1.0^4, 0.4^[1,1,1]", "leading", "jordan", "zero", None, 16),  # Figure 1: k_u^2
    ("1.0^4, 0.4^[1,1,1]", "leading", "random", "zero", None, 46),  # n^2 - n + n_u: n^2 on d = k^2
    ("0.4, 1.0^2", "leading", "jordan", "zero", None, 9),  # the unstable block comes last
    ("0.9, 0.5", "leading", "jordan", "zero", None, 0),
    ("1.0^2, 0.5", "full", "jordan", "zero", None, 6),  # n n_u
    ("1.0^2, 0.5", "block", "random", "zero", None, 4),
    ("1.0^2, 0.5", "similarity", "jordan", "zero", None, None),  # J|V_u has a trace
    ("1.0^2, 0.5", "diagonal", "jordan", "zero", None, None),  # the superdiagonal 1
    ("1.0^[1,1], 0.5", "diagonal", "jordan", "zero", None, 2),
    ("1.0^2, 0.5", "leading", "jordan", "perturbed", "block", 4),
    ("1.0^2, 0.5", "leading", "jordan", "perturbed", "full", 8),
    ("1.0^2, 0.5", "full", "jordan", "perturbed", "block", 6),
]


@pytest.mark.parametrize(("spectrum", "learner", "basis", "nominal", "adversary", "expected"), CASES)
def test_critical_d_theory_and_the_exact_rank_criterion(spectrum, learner, basis, nominal, adversary, expected):
    assert th.critical_d_theory(spectrum, learner, nominal, adversary, basis) == expected
    from pipeline.models.observed import perturbations
    from pipeline.models.spectra import parse_spectrum

    n = parse_spectrum(spectrum).n
    Q = basis_change(spectrum, basis, 1)
    B = leading_basis(n) if learner == "leading" else learner_matrices(spectrum, learner, 1, basis)
    H = perturbations(spectrum, adversary, 1, 1, basis)[0] if adversary else None
    bounded = bias_bounded(pr.fit_problem(spectrum, learner, B, Q, nominal, adversary, H))
    first = int(np.argmax(bounded)) if bounded.any() else None
    assert first == expected
