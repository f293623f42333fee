"""Learner families that differ from the adversary's family (MATH.md §1.5), for the observed experiment.

Modules: :mod:`.families` (the ``diagonal`` family, dimensions, learner bases),
:mod:`.theory` (which pairs are learnable, ``critical_d``, growth of the "never" pairs;
the rule and its table are in its docstring), :mod:`.ranks` (the same decided by rank
tests on the explicit bases), :mod:`.cross` (the exact risk of a learner family apart from
the adversary's). The names below are the public API.
"""

from pipeline.models.parametrisation.cross import CrossProblem, cross_bounded, cross_log2_risk, cross_problem
from pipeline.models.parametrisation.families import (
    LEARNER_FAMILIES,
    diagonal_basis,
    learner_basis_structured,
    learner_dimension,
    learner_matrices,
    restriction_rank,
)
from pipeline.models.parametrisation.ranks import contained_on, restricted_family, structural_critical_d
from pipeline.models.parametrisation.theory import (
    Criticality,
    adversary_within_learner,
    critical_d,
    criticality,
    learnable,
    never_growth_exponent,
    unstable_column_exponents,
)

__all__ = [
    "LEARNER_FAMILIES",
    "Criticality",
    "CrossProblem",
    "adversary_within_learner",
    "contained_on",
    "critical_d",
    "criticality",
    "cross_bounded",
    "cross_log2_risk",
    "cross_problem",
    "diagonal_basis",
    "learnable",
    "learner_basis_structured",
    "learner_dimension",
    "learner_matrices",
    "never_growth_exponent",
    "restricted_family",
    "restriction_rank",
    "structural_critical_d",
    "unstable_column_exponents",
]
