"""Experiment ``observed``: fully observed systems, perturbation families, learners and the exact risk (MATH.md §1).

Numerical method (the fixed-point method it replaced is kept as the test oracle
``tests/oracles/observed_fixed_point.py``):

* Everything is computed in Jordan coordinates (the risk is invariant under
  ``M -> Q' M Q`` for ``A = Q J Q'``), where ``Sigmabar_T`` is block diagonal with one
  block per Jordan block (:mod:`.families`, :mod:`.draws`).
* Square root of the weight: per Jordan block, a row-scaled Cholesky factor of
  ``Sigmabar_T`` in ball arithmetic (:mod:`.weight`).
* Exact structure first: the learner's unstable restrictions are split into pivots and
  exact combinations of earlier pivots, then one Householder QR with per-row exponents
  (:mod:`.factor`); the risk for every ``d`` at once (:mod:`.risk`); boundedness by the
  exact rank criterion (:mod:`.ranks`); problems assembled from stored matrices
  (:mod:`.problems`); Monte Carlo (:mod:`.montecarlo`).

The names below are the experiment's public API.
"""

from pipeline.models.observed.draws import (
    basis_change,
    family_space,
    learner_basis,
    learner_coefficients,
    perturbation_coefficients,
    perturbations,
    system,
)
from pipeline.models.observed.factor import Factor, risk_factor
from pipeline.models.observed.families import FamilyBasis, family_basis
from pipeline.models.observed.montecarlo import montecarlo_risk
from pipeline.models.observed.problems import (
    Problem,
    bounded,
    exact_log2_risk,
    problem_from_matrices,
    problem_from_seed,
    residual_matrices,
)
from pipeline.models.observed.ranks import bounded_table
from pipeline.models.observed.risk import best_coefficients, log2_risk, log2_risk_general

__all__ = [
    "Factor",
    "FamilyBasis",
    "Problem",
    "basis_change",
    "best_coefficients",
    "bounded",
    "bounded_table",
    "exact_log2_risk",
    "family_basis",
    "family_space",
    "learner_basis",
    "learner_coefficients",
    "log2_risk",
    "log2_risk_general",
    "montecarlo_risk",
    "perturbation_coefficients",
    "perturbations",
    "problem_from_matrices",
    "problem_from_seed",
    "residual_matrices",
    "risk_factor",
    "system",
]
