"""Estimated seconds of one kernel call (block sizing and ``emergence run --dry-run``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.models.spectra import parse_spectrum

PER_SYSTEM = 5e-3
"""Kalman solution and filter-risk set-up per (system, noise ratio), seconds."""
PER_STEP = 6.0e-9
"""Per simulated trajectory step and accumulated sum (~k_max + 2 n of them), seconds."""
PER_CELL = 7.0e-4
"""Certified solve and exact risk of one fitted filter (k <= 32), seconds."""


def estimate_seconds(system_axis: str, coords: Mapping[str, np.ndarray]) -> float:
    """Measured on the shared 2-core machine (one process): a call simulates each (system, noise
    ratio, fit) once to its largest ``T`` and ``m`` — ``PER_STEP`` per trajectory step and
    accumulated sum — and fits and evaluates every (k, T, m) cell (``PER_CELL``); the exact
    ``best_fir`` bias per (system, noise ratio, k, T) is small beside them."""
    k = np.asarray(coords["k"], dtype=np.int64)
    T = np.asarray(coords["T"], dtype=np.int64)
    m = np.asarray(coords["trajectories"], dtype=np.int64)
    R = len(coords["noise_ratio"])
    F = len(coords["fit"])
    if system_axis == "spectrum":
        dims = [parse_spectrum(str(s)).n for s in coords["spectrum"]]
    else:
        dims = [1] * len(coords["lam"])
    cells = k.size * T.size * m.size
    total = 1e-3
    for n in dims:
        steps = float(T.max()) * float(m.max()) * (int(k.max()) + 2 * n)
        total += R * (PER_SYSTEM + F * (PER_STEP * steps + PER_CELL * cells))
    return total
