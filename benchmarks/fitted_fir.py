"""Kernel figures for ``pipeline.models.fitted_fir`` (least-squares FIR filters, MATH §6.2):
``figures(quick)`` for ``python -m benchmarks`` (group ``fitted_fir``), ``measure(quick)`` the raw
dict, and standalone

    python -m benchmarks.fitted_fir [--quick]

* **Draw rate.** Normal draws per second of the sampler plus the running sums
  (``training_statistics``: simulation, reference series, ``k_max - n_u + O(n_u)`` lagged sums
  per step) against numpy's own ``Generator.standard_normal`` filling a 64 Ki buffer (its best
  rate), timed interleaved in the same process; ``m = 128`` trajectories, ``n <= 8``.
* **Sharing factor.** Normal draws of simulating every (``k``, ``T``, ``m``) cell separately over
  those of one simulation per (system, noise ratio, fit) at the grid's largest ``T`` and ``m``
  (MATH §6.3), on the grid of the coming ``learned_filters`` workflow.
* **One training set.** Seconds of one (system, noise ratio, fit) at ``m = 1000``,
  ``T = 1e5``, ``k = 1 .. 32`` on a 13-point ``T`` grid and 7-point ``m`` grid (simulation and
  sums, then certified fits and exact risks), and what a workflow of such sets costs on 2 cores.
"""

from __future__ import annotations

import math
import statistics as stats
import sys
import time
from typing import Any

import numpy as np

from benchmarks.harness import Figure, alternate, median

SYSTEMS = ("1.0", "1.0^3", "1.0^2, 1.0@60, 0.5", "1.0@60^2, 0.5^2, 0.2@30")  # n = 1, 3, 5, 8
WORKFLOW_SYSTEMS = ("1.0", "1.0^2", "1.0@60", "1.0, 0.5")
WORKFLOW_RATIOS = tuple(float(v) for v in np.geomspace(0.1, 100.0, 7))
WORKFLOW_K = tuple(range(1, 33))
WORKFLOW_T = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000)
WORKFLOW_M = (1, 3, 10, 30, 100, 300, 1000)
NUMPY_BUFFER = 1 << 16


def _numpy_rate(draws: int) -> None:
    """``draws`` standard normals from numpy, filling a 64 Ki buffer repeatedly (its best rate)."""
    rng = np.random.Generator(np.random.PCG64(0))
    buf = np.empty(NUMPY_BUFFER)
    for _ in range(draws // NUMPY_BUFFER):
        rng.standard_normal(out=buf)
    rng.standard_normal(out=buf[: draws % NUMPY_BUFFER])


def draw_rates(quick: bool) -> dict[str, Any]:
    """Per (system, k_max): our draws/s, numpy's draws/s (interleaved) and their ratio."""
    from pipeline.models.fitted_fir import fitted_system, training_statistics

    m, T = 128, (4000 if quick else 20_000)
    repeats = 2 if quick else 3
    out: dict[str, Any] = {}
    for text in SYSTEMS:
        system = fitted_system(text, 10.0)
        n = system.n
        draws = m * (n + (n + 1) * (T + 1))
        for k_max in (8, 32):

            def ours(k_max: int = k_max, system: Any = system) -> None:
                training_statistics(system, seed=1, fit=0, T=[10, 100, 1000, T], trajectories=[1, 10, m], k_max=k_max)

            def numpy_side(draws: int = draws) -> None:
                _numpy_rate(draws)

            ours()  # compile the kernels and warm the caches (once per process)
            times = alternate({"fitted_fir": ours, "numpy": numpy_side}, repeats)
            ours_rate = draws / median(times["fitted_fir"])
            numpy_rate = draws / median(times["numpy"])
            out[f"{text}|{k_max}"] = {
                "n": n,
                "k_max": k_max,
                "draws_per_s": ours_rate,
                "numpy_draws_per_s": numpy_rate,
                "ratio": ours_rate / numpy_rate,
                "ns_per_trajectory_step": 1e9 * median(times["fitted_fir"]) / (m * T),
            }
    return out


def sampler_rates(quick: bool) -> dict[str, Any]:
    """Per system: draws/s of the sampler alone (``simulation.fitted_outputs.output_blocks``,
    m = 128 in batches of 32, no sums) and numpy's (interleaved), and their ratio."""
    from pipeline.models.fitted_fir import fitted_system
    from pipeline.models.simulation.fitted_outputs import output_blocks, training_key

    m, T = 128, (4000 if quick else 20_000)
    repeats = 3 if quick else 5
    out: dict[str, Any] = {}
    for text in SYSTEMS:
        system = fitted_system(text, 10.0)
        n = system.n
        draws = m * (n + (n + 1) * (T + 1))

        def ours(system: Any = system) -> None:
            for first in range(0, m, 32):
                for _ in output_blocks(system, 1, training_key(system, 0), first, 32, T + 1):
                    pass

        def numpy_side(draws: int = draws) -> None:
            _numpy_rate(draws)

        ours()  # compile and warm caches
        times = alternate({"sampler": ours, "numpy": numpy_side}, repeats)
        ours_rate = draws / median(times["sampler"])
        numpy_rate = draws / median(times["numpy"])
        out[text] = {"n": n, "draws_per_s": ours_rate, "numpy_draws_per_s": numpy_rate, "ratio": ours_rate / numpy_rate}
    return out


def sharing_factor() -> dict[str, Any]:
    """Draws of one simulation per cell over one per (system, noise ratio, fit), workflow grid."""
    from pipeline.models.simulation.fitted_outputs import BLOCK
    from pipeline.models.spectra import parse_spectrum

    def draws(n: int, T: int, m: int) -> int:  # the stream of a trajectory: x_0, then whole blocks
        return m * (n + (n + 1) * BLOCK * -(-(T + 1) // BLOCK))

    shared = per_cell = 0
    for text in WORKFLOW_SYSTEMS:
        n = parse_spectrum(text).n
        shared += draws(n, max(WORKFLOW_T), max(WORKFLOW_M))
        per_cell += len(WORKFLOW_K) * sum(draws(n, T, m) for T in WORKFLOW_T for m in WORKFLOW_M)
    return {
        "factor": per_cell / shared,
        "draws_shared_per_fit": shared * len(WORKFLOW_RATIOS),
        "draws_per_cell_per_fit": per_cell * len(WORKFLOW_RATIOS),
        "grid": {"k": len(WORKFLOW_K), "T": WORKFLOW_T, "m": WORKFLOW_M, "ratios": len(WORKFLOW_RATIOS)},
    }


def one_training_set(quick: bool) -> dict[str, Any]:
    """Seconds of one (system, noise ratio, fit) on the workflow's (k, T, m) grid."""
    from pipeline.models.fitted_fir import fit_training_set, fitted_system, training_statistics
    from pipeline.models.fitted_fir.cells import FittedFilters

    T = [t for t in WORKFLOW_T if t <= (10_000 if quick else 100_000)]
    m = [v for v in WORKFLOW_M if v <= (100 if quick else 1000)]
    out: dict[str, Any] = {"T_max": max(T), "m_max": max(m), "k_max": max(WORKFLOW_K)}
    for text in ("1.0", "1.0^2"):
        system = fitted_system(text, 10.0)
        t0 = time.perf_counter()
        training_statistics(system, seed=1, fit=0, T=T, trajectories=m, k_max=max(WORKFLOW_K))
        t_sums = time.perf_counter() - t0
        t0 = time.perf_counter()
        got: FittedFilters = fit_training_set(system, seed=1, fit=0, k=WORKFLOW_K, T=T, trajectories=m)
        t_all = time.perf_counter() - t0
        out[text] = {
            "seconds": t_all,
            "seconds_simulation_and_sums": t_sums,
            "seconds_fits_and_risks": t_all - t_sums,
            "cells": int(got.risk.size),
            "cells_below_27_certified_bits": int((got.theta_bits < 27).sum()),
        }
    per_set = stats.mean(out[t]["seconds"] for t in ("1.0", "1.0^2"))
    sets_per_fit = len(WORKFLOW_SYSTEMS) * len(WORKFLOW_RATIOS)
    out["workflow_hours_per_fit_on_2_cores"] = per_set * sets_per_fit / 2 / 3600
    out["fits_in_8_hours_on_2_cores"] = math.floor(8 * 3600 * 2 / (per_set * sets_per_fit))
    return out


def measure(quick: bool) -> dict[str, Any]:
    return {
        "draw_rates": draw_rates(quick),
        "sampler_rates": sampler_rates(quick),
        "sharing": sharing_factor(),
        "one_set": one_training_set(quick),
    }


def figures(quick: bool) -> list[Figure]:
    got = measure(quick)
    rates = got["draw_rates"]
    figs = []
    for k_max in (8, 32):
        rows = {key: v for key, v in rates.items() if v["k_max"] == k_max}
        worst = min(rows, key=lambda key: rows[key]["ratio"])
        figs.append(
            Figure(
                f"fitted_fir_draw_rate_ratio_k{k_max}",
                rows[worst]["ratio"],
                "x numpy",
                ">=",
                0.5,
                note=(
                    f"sampler + running sums, k_max = {k_max}, m = 128, n = 1..8: worst system "
                    f"{worst.split('|')[0]!r}; numpy standard_normal timed interleaved"
                ),
                details=rows,
            )
        )
    samp = got["sampler_rates"]
    worst = min(samp, key=lambda key: samp[key]["ratio"])
    figs.append(
        Figure(
            "fitted_fir_sampler_draw_rate_ratio",
            samp[worst]["ratio"],
            "x numpy",
            ">=",
            0.5,
            note=f"sampler alone (draws + recursion, no sums), m = 128, n = 1..8: worst system {worst!r}",
            details=samp,
        )
    )
    sh = got["sharing"]
    figs.append(
        Figure(
            "fitted_fir_sharing_factor",
            sh["factor"],
            "x",
            note="draws per cell / draws per (system, r, fit), learned_filters grid (k 1..32, T to 1e5, m to 1000)",
            details=sh,
        )
    )
    one = got["one_set"]
    figs.append(
        Figure(
            "fitted_fir_one_training_set_seconds",
            stats.mean(one[t]["seconds"] for t in ("1.0", "1.0^2")),
            "s",
            note=(
                f"one (system, r, fit): m = {one['m_max']}, T = {one['T_max']}, k = 1..32 on the "
                f"workflow grid; {one['workflow_hours_per_fit_on_2_cores']:.2f} h per fit for the "
                "workflow's 4 systems x 7 noise ratios on 2 cores"
            ),
            details=one,
        )
    )
    return figs


if __name__ == "__main__":
    from benchmarks.harness import table

    print(table(figures("--quick" in sys.argv[1:])))
