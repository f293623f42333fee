"""The fitted observed experiment's cost model: estimated seconds of one kernel call."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.observed_fitted.axes import learner_dim
from pipeline.models.spectra import parse_spectrum

PER_CALL = 2e-3
"""Seconds of a kernel call beside its cells (static part selections)."""
PER_DRAW = 1e-8
"""Seconds per trajectory, step and ``n (n + 2)`` (the simulation and its statistics, ~ m T n^2);
measured 1e-7 s per trajectory-step at n = 2 and 5e-7 at n = 7 on the shared 2-core machine."""
COMPENSATED = 4.0
"""Factor for systems with an explosive chain (statistics summed in twice the precision)."""


def cell_seconds(d: int) -> float:
    """One fitted cell: the exact solve of the normal equations and the risk in ball
    arithmetic (python-flint), ``O(d^3)`` at 128+ bits (measured 0.1-0.2 ms at d <= 16,
    1 ms at d = 49)."""
    return 2e-4 + 7e-9 * d**3


def bias_seconds(D: int) -> float:
    """The exact best-in-class risk of one learner at one horizon, every ``d`` at once."""
    return 1.5e-3 + 1e-6 * D**2 + 3e-9 * D**3


def estimate_seconds(coords: Mapping[str, np.ndarray], settings: Settings) -> float:
    """One simulation per (spectrum, fit) to the block's largest ``T`` and ``m`` (shared by
    every other axis of the block), one bias per (learner, T), one exact fit per cell."""
    total = PER_CALL
    T_max = int(np.max(coords["T"]))
    m_max = int(np.max(coords["trajectories"]))
    fits = len(coords["fit"])
    grid_Tm = len(coords["T"]) * len(coords["trajectories"])
    problems = len(coords["family"]) * len(coords["draw"])
    for text in coords["spectrum"]:
        sp = parse_spectrum(str(text))
        n = sp.n
        factor = COMPENSATED if sp.spectral_radius > 1.0 else 1.0
        total += factor * fits * PER_DRAW * m_max * T_max * n * (n + 2)
        for lf in coords["learner_family"]:
            D = learner_dim(str(text), str(lf))
            ds = [int(d) for d in coords["d"] if int(d) <= D]
            total += problems * len(coords["T"]) * bias_seconds(D)
            total += problems * fits * grid_Tm * sum(cell_seconds(d) for d in ds)
    return total
