"""The observed experiment's cost model: estimated seconds of one kernel call (block sizing,
``emergence run --dry-run``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.observed.axes import SAME, resolved_learner
from pipeline.models import parametrisation as pm
from pipeline.models.spectra import parse_spectrum

PER_CALL = 1e-3
"""Seconds of a kernel call beside its cells (static part selections, checks)."""
PER_PROBLEM = 1e-3
"""Seconds to set up one (spectrum, family, learner_family): the problem and its rank test."""


def factorisation_seconds(D: int) -> float:
    """One exact factorisation of the risk at one horizon, ``D`` the learner's dimension.

    Measured with the kernel in one process on the shared 2-core machine (full family,
    spectra of n = 1..22): 1-2.5 ms at D <= 16 (light to heavy load), 6 ms at D = 64, 45-80 ms at D = 256,
    0.2-0.4 s at D = 484; ~10 s at D = 1,024 (docs/scaling.md). The doubling of ``Sigmabar_T``
    and the Householder QR of the scaled rows are O(D^2) to O(D^3); the model stays within
    a factor of 2-3 of each (``benchmarks/estimates.py`` checks the shipped workflows)."""
    return 1.5e-3 + 1e-6 * D**2 + 3e-9 * D**3


def cell_seconds(D: int) -> float:
    """One (d, draw) of one factorisation: the best coefficients' risk, O(D). A call
    computes every ``d = 0..D`` of its draws, whichever ``d`` its block holds."""
    return 0.5e-6 + 2e-8 * D


def estimate_seconds(coords: Mapping[str, np.ndarray], settings: Settings) -> float:
    """Exact: one factorisation per (spectrum, family, learner_family, T), shared by every
    ``d`` and draw of the call (``factorisation_seconds``), plus ``cell_seconds`` for each of
    its ``D + 1`` values of ``d`` and each draw (all computed, whichever ``d`` the call holds:
    splitting ``d`` saves nothing).
    Monte Carlo simulates D + 1 residuals per draw over T steps (~5 ns per sample, step and
    matrix entry) on top of the exact factorisations."""
    total = PER_CALL
    families = [str(f) for f in coords["family"]]
    learners = [str(f) for f in coords.get("learner_family", [SAME])]
    horizons = len(coords["T"])
    draws = len(coords["draw"])
    for text in coords["spectrum"]:
        sp = parse_spectrum(str(text))
        for family in families:
            for lf in learners:
                D = pm.learner_dimension(sp, resolved_learner(family, lf))
                total += PER_PROBLEM + horizons * (factorisation_seconds(D) + (D + 1) * draws * cell_seconds(D))
                if settings.method == "montecarlo":
                    steps = float(np.sum(coords["T"]))
                    total += 5e-9 * settings.mc_samples * steps * (D + 1) * sp.n**2 * len(coords["draw"])
    return total
