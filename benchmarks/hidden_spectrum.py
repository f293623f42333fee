"""Kernel figures for ``pipeline.models.hidden_spectrum``: cells per second per learner and the
horizon cost ratio ``T = 1e8`` vs ``T = 1e2``: ``figures(quick)`` for ``python -m benchmarks``
(group ``hidden_spectrum``), ``measure(quick)`` the raw dict, and standalone

    python -m benchmarks.hidden_spectrum [--quick]

Every timing starts from empty caches (the Kalman solution of each (spectrum, noise ratio) is
included, as in a fresh worker process) and is the median of a few repeats, one process,
one thread.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import numpy as np

from benchmarks.harness import Figure

SPECTRA = ("1.0", "1.0^2", "1.0^3", "1.0@60", "1.0, 0.5^2", "0.9^2")
WORKFLOW = ("1.0", "1.0^2", "1.0^3", "1.0@60", "1.0@60^2", "1.0, -1.0", "1.0, 0.5^2", "0.9^2", "1.02")
RATIOS = np.geomspace(0.1, 100.0, 7)
KS = np.arange(1, 65)
TS = np.unique(np.geomspace(10, 1e8, 15).round().astype(np.int64))


def _time(fn, repeats: int) -> float:
    from pipeline.models.hidden_spectrum.kalman import exact_inputs

    out = []
    for _ in range(repeats):
        exact_inputs.cache_clear()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _grid_rate(spectra, ratios, ks, Ts, learner: str, repeats: int) -> tuple[float, int]:
    from pipeline.models import hidden_spectrum as hs

    def run() -> None:
        for text in spectra:
            hs.risk_block(text, ratios, learner, ks, Ts)

    cells = len(spectra) * len(ratios) * len(ks) * len(Ts)
    return cells / _time(run, repeats), cells


def _alive(ks, Ts) -> float:
    """Fraction of the (k, T) cells with T > k (the others are exactly 0 and cost nothing)."""
    return float(np.mean(np.asarray(Ts)[None, :] > np.asarray(ks)[:, None]))


def measure(quick: bool) -> dict[str, Any]:
    """Cells/s per learner on the n <= 6 grid, and the T = 1e8 / T = 1e2 cost ratio."""
    from pipeline.models import hidden_spectrum as hs

    repeats = 1 if quick else 3
    ratios = RATIOS[[0, 3, 6]] if quick else RATIOS
    out: dict[str, Any] = {
        "spectra": list(SPECTRA),
        "noise_ratios": ratios.tolist(),
        "k": [1, 64],
        "T": TS.tolist(),
        "repeats": repeats,
    }
    for learner in hs.LEARNERS:
        rate, cells = _grid_rate(SPECTRA, ratios, KS, TS, learner, repeats)
        out[f"cells_per_s_{learner}"] = rate
        out[f"computed_cells_per_s_{learner}"] = rate * _alive(KS, TS)  # excluding the k >= T zeros
        out["grid_cells"] = cells
    # horizon cost ratio on the same cells: T = 1e8 alone vs T = 1e2 alone
    for learner in hs.LEARNERS:
        t_hi = _time(lambda lr=learner: [hs.risk_block(s, ratios, lr, KS, [10**8]) for s in SPECTRA], repeats)
        t_lo = _time(lambda lr=learner: [hs.risk_block(s, ratios, lr, KS, [10**2]) for s in SPECTRA], repeats)
        out[f"horizon_cost_ratio_{learner}"] = t_hi / t_lo
    if not quick:
        # the intended workflow: 9 spectra, 7 noise ratios, k 1..64, T to 1e8 (1e4 above radius 1)
        from pipeline.models.spectra import parse_spectrum

        total_cells, total_s = 0, 0.0
        for text in WORKFLOW:
            Ts = TS if parse_spectrum(text).spectral_radius <= 1 else TS[TS <= 10**4]
            for learner in hs.LEARNERS:
                rate, cells = _grid_rate([text], RATIOS, KS, Ts, learner, 1)
                total_cells += cells
                total_s += cells / rate
        out["workflow_cells"] = total_cells
        out["workflow_seconds_one_process"] = total_s
    return out


HORIZON_COST_TARGET = 1.5


def figures(quick: bool) -> list[Figure]:
    """``hidden_spectrum_cells_per_s_<learner>`` (report) and ``hidden_spectrum_horizon_cost_ratio``
    (the larger of the two learners', target <= 1.5), from :func:`measure`."""
    from pipeline.models.spectra import parse_spectrum

    res = measure(quick)
    n_max = max(parse_spectrum(s).n for s in res["spectra"])
    grid = (
        f"{len(res['spectra'])} spectra with n <= {n_max} ({', '.join(res['spectra'])}) x "
        f"{len(res['noise_ratios'])} noise ratios x k 1..64 x {len(res['T'])} T in 10..1e8 = "
        f"{res['grid_cells']:,} cells, one process, Kalman solutions included"
    )
    out = [
        Figure(
            f"hidden_spectrum_cells_per_s_{learner}",
            res[f"cells_per_s_{learner}"],
            "cells/s",
            note=f"{grid}; {res[f'computed_cells_per_s_{learner}']:.0f}/s counting only cells with T > k",
            details={"cells": res["grid_cells"]},
        )
        for learner in ("truncated_kalman", "best_fir")
    ]
    ratios = {lr: res[f"horizon_cost_ratio_{lr}"] for lr in ("truncated_kalman", "best_fir")}
    out.append(
        Figure(
            "hidden_spectrum_horizon_cost_ratio",
            max(ratios.values()),
            "x",
            "<=",
            HORIZON_COST_TARGET,
            note="same spectra and k, T = 1e8 alone vs T = 1e2 alone: "
            + ", ".join(f"{lr} {v:.2f}" for lr, v in ratios.items()),
            details=ratios,
        )
    )
    return out


def _table(res: dict[str, Any]) -> str:
    lines = [
        f"grid: {len(res['spectra'])} spectra x {len(res['noise_ratios'])} noise ratios x k 1..64 x "
        f"{len(res['T'])} T (10..1e8) = {res['grid_cells']} cells per learner, median of {res['repeats']}"
    ]
    for learner in ("truncated_kalman", "best_fir"):
        lines.append(
            f"  {learner:17s} {res[f'cells_per_s_{learner}']:9.0f} cells/s "
            f"({res[f'computed_cells_per_s_{learner}']:.0f}/s of cells with T > k)   "
            f"cost(T=1e8)/cost(T=1e2) = {res[f'horizon_cost_ratio_{learner}']:.2f}"
        )
    if "workflow_cells" in res:
        lines.append(
            f"  workflow (9 spectra, both learners): {res['workflow_cells']} cells in "
            f"{res['workflow_seconds_one_process']:.1f} s on one process"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(measure("--quick" in sys.argv[1:])))
