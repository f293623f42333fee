"""The observed experiment's cost model: estimated seconds of one kernel call (block sizing,
``emergence run --dry-run``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.observed.axes import SAME, resolved_learner
from pipeline.models import parametrisation as pm
from pipeline.models.spectra import parse_spectrum


def estimate_seconds(coords: Mapping[str, np.ndarray], settings: Settings) -> float:
    """One exact factorisation per (spectrum, family, learner_family, T), shared by every d and draw
    (~0.05 s + 7e-9 D^3 s in the fast kernel, D the learner's dimension: measured 0.19 s at
    D = 128, 1.0 s at D = 512, ~10 s at D = 1024), plus ~10 us per cell;
    Monte Carlo simulates D + 1 residuals per draw over T steps (~5 ns per sample, step and
    matrix entry)."""
    total = 1e-3
    families = [str(f) for f in coords["family"]]
    learners = [str(f) for f in coords.get("learner_family", [SAME])]
    cells_per = len(coords["d"]) * len(coords["draw"])
    for text in coords["spectrum"]:
        sp = parse_spectrum(str(text))
        for family in families:
            for lf in learners:
                D = pm.learner_dimension(sp, resolved_learner(family, lf))
                if settings.method == "montecarlo":
                    steps = float(np.sum(coords["T"]))
                    total += 5e-9 * settings.mc_samples * steps * (D + 1) * sp.n**2 * len(coords["draw"])
                else:
                    total += len(coords["T"]) * (0.05 + 7e-9 * D**3 + 1e-5 * cells_per)
    return total
