"""In-process kernel figures: exact vs Monte Carlo, closed form vs O(T) loop,
horizon cost, cells per second (hidden and observed experiments)."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.harness import Figure, alternate, median

RSE_TARGET = 0.01


# ---------------------------------------------------------------------------
# hidden experiment


def exact_vs_montecarlo(quick: bool) -> Figure:
    """Monte Carlo time to reach 1% relative standard error on every cell of a set,
    over the exact kernel's time on the same cells.

    MC runs at a feasible sample count ``n0``; its per-cell rse scales like
    ``1/sqrt(n)`` and its cost linearly in ``n`` (independent batches of 128
    trajectories), so the samples needed are ``n0 (rse / 0.01)^2`` and the time
    ``t_MC(n0) * n_needed / n0``. With common random numbers all cells of the set
    share the sample count, so the set needs the largest per-cell count.
    """
    from pipeline.models.hidden import montecarlo_block, risk_block

    lam = np.array([0.9, 1.0])
    r = np.array([0.5, 4.0])
    k = np.array([1, 4, 16])
    T = np.array([100, 1000, 10000])
    learners = ("truncated_kalman", "best_fir")
    n0 = 256 if quick else 1024
    repeats = 3 if quick else 5
    results: dict[str, Any] = {}

    def exact() -> None:
        results["exact"] = {lr: risk_block(lam, r, lr, k, T) for lr in learners}

    def mc() -> None:
        results["mc"] = {lr: montecarlo_block(lam, r, lr, k, T, seed=0, samples=n0) for lr in learners}

    times = alternate({"exact": exact, "montecarlo": mc}, repeats)
    t_exact, t_mc = median(times["exact"]), median(times["montecarlo"])
    alive = (T[None, :] > k[:, None])[None, None]  # k < T: risk > 0, simulated
    rse, zscores = [], []
    for lr in learners:
        ex, m = results["exact"][lr], results["mc"][lr]
        sel = np.broadcast_to(alive, ex["risk"].shape)
        rse.append((m["risk_stderr"] / m["risk"])[sel])
        zscores.append(((m["risk"] - ex["risk"]) / m["risk_stderr"])[sel])
    rse_all = np.concatenate(rse)
    z_all = np.concatenate(zscores)
    need_max = n0 * float(np.max(rse_all) / RSE_TARGET) ** 2
    need_median = n0 * float(np.median(rse_all) / RSE_TARGET) ** 2
    t_mc_needed = t_mc * need_max / n0
    cells = int(alive.sum()) * lam.size * r.size * len(learners)
    return Figure(
        "exact_vs_montecarlo_speedup",
        t_mc_needed / t_exact,
        "x",
        ">=",
        1e4,
        note=(
            f"{cells} hidden cells (lam 0.9/1, r 0.5/4, both learners, k 1/4/16, T 1e2..1e4); "
            f"MC timed at {n0} samples, extrapolated linearly to the {need_max:,.0f} samples "
            f"the worst cell needs for 1% rse"
        ),
        details={
            "cells": cells,
            "mc_samples_timed": n0,
            "mc_seconds_at_timed_samples": t_mc,
            "exact_seconds": t_exact,
            "samples_needed_worst_cell": need_max,
            "samples_needed_median_cell": need_median,
            "mc_seconds_extrapolated": t_mc_needed,
            "speedup_if_only_median_cell_counted": t_mc * need_median / n0 / t_exact,
            "rse_at_timed_samples": {
                "min": float(rse_all.min()),
                "median": float(np.median(rse_all)),
                "max": float(rse_all.max()),
            },
            "mc_vs_exact_max_abs_z": float(np.max(np.abs(z_all))),
            "times": times,
        },
    )


def closed_form_vs_loop(quick: bool) -> Figure:
    """The O(T) identity of MATH 2.3 (vectorised numpy, ``risk_oracle``) cell by cell,
    against the closed-form kernel on the same cells, at T = 10^6."""
    from pipeline.models.hidden import kalman_fir, risk_block
    from tests.oracles.hidden import risk_oracle

    lam = np.array([0.9, 1.0])
    r = np.array([1.0, 4.0, 10.0])
    k = np.array([1, 4, 16, 64])
    T = 10**6
    repeats = 3 if quick else 5
    out: dict[str, Any] = {}

    def loop() -> None:
        vals = np.empty((lam.size, r.size, k.size))
        for i, lv in enumerate(lam):
            for j, rv in enumerate(r):
                for q, kv in enumerate(k):
                    vals[i, j, q] = risk_oracle(float(lv), float(rv), kalman_fir(float(lv), float(rv), int(kv)), T)
        out["loop"] = vals

    def closed() -> None:
        out["closed"] = risk_block(lam, r, "truncated_kalman", k, np.array([T]))["risk"][..., 0]

    def closed_one() -> None:
        risk_block(lam[:1], r[:1], "truncated_kalman", k[:1], np.array([T]))

    times = alternate({"loop": loop, "closed": closed, "closed_one_cell": closed_one}, repeats)
    t_loop, t_closed = median(times["loop"]), median(times["closed"])
    t_one = median(times["closed_one_cell"])
    rel = float(np.max(np.abs(out["loop"] - out["closed"]) / out["closed"]))
    n = out["closed"].size
    return Figure(
        "closed_form_vs_loop_speedup",
        t_loop / t_closed,
        "x",
        ">=",
        1e3,
        note=(
            f"{n} truncated_kalman cells at T = 1e6: risk_oracle cell by cell vs one risk_block call "
            f"(a lone cell, where risk_block's fixed ~{t_one * 1e3:.1f} ms call cost dominates: "
            f"{t_loop / n / t_one:.0f}x)"
        ),
        details={
            "cells": n,
            "loop_seconds": t_loop,
            "closed_seconds": t_closed,
            "closed_seconds_one_cell_call": t_one,
            "speedup_one_cell_call": t_loop / n / t_one,
            "loop_seconds_per_cell": t_loop / n,
            "max_relative_difference": rel,
            "times": times,
        },
    )


def _hidden_block() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A default-sized block (2^20 cells per learner): k up to 64."""
    lam = np.array([0.5, 0.9, 1.0, 1.02])
    r = np.geomspace(0.01, 100.0, 64)
    k = np.arange(1, 65)
    T = np.unique(np.rint(np.geomspace(10, 1e8, 70)).astype(np.int64))[:64]
    return lam, r, k, T


def horizon_cost(quick: bool) -> Figure:
    """Kernel time with every horizon near 10^9 over the same cells near 10^2."""
    from pipeline.models.hidden import risk_block

    lam = np.array([0.9, 1.0, 1.02])
    r = np.geomspace(0.01, 100.0, 64)
    k = np.arange(1, 65)
    T_lo = 100 + np.arange(32)
    T_hi = 10**9 + np.arange(32)
    repeats = 5 if quick else 9
    sides = {
        "T=1e2": lambda: [risk_block(lam, r, lr, k, T_lo) for lr in ("truncated_kalman", "best_fir")],
        "T=1e9": lambda: [risk_block(lam, r, lr, k, T_hi) for lr in ("truncated_kalman", "best_fir")],
    }
    times = alternate(sides, repeats)
    lo, hi = median(times["T=1e2"]), median(times["T=1e9"])
    cells = 2 * lam.size * r.size * k.size * T_lo.size
    return Figure(
        "horizon_cost_ratio",
        hi / lo,
        "x",
        "<=",
        1.5,
        note=f"{cells:,} cells (both learners, k 1..64), T = 1e9+i vs 1e2+i",
        details={"cells": cells, "seconds_T1e2": lo, "seconds_T1e9": hi, "times": times},
    )


def cells_per_s(quick: bool) -> list[Figure]:
    """Exact cells per second of each learner on one default-sized block, one process."""
    from pipeline.models.hidden import risk_block

    lam, r, k, T = _hidden_block()
    cells = lam.size * r.size * k.size * T.size
    repeats = 5 if quick else 9
    times = alternate(
        {lr: (lambda lr=lr: risk_block(lam, r, lr, k, T)) for lr in ("truncated_kalman", "best_fir")}, repeats
    )
    shape = f"{lam.size} lam x {r.size} noise_ratio x k 1..64 x {T.size} T (1e1..1e8)"
    out = []
    for lr, name, op, bound in (
        ("truncated_kalman", "truncated_cells_per_s", ">=", 5e6),
        ("best_fir", "best_fir_cells_per_s", None, None),
    ):
        t = median(times[lr])
        out.append(
            Figure(
                name,
                cells / t,
                "cells/s",
                op,
                bound,
                note=f"risk_block on {cells:,} cells ({shape}), one process",
                details={"cells": cells, "seconds": t, "times": times[lr]},
            )
        )
    return out


# ---------------------------------------------------------------------------
# observed experiment

OBSERVED_SPECTRA = [
    "1.0",
    "1.0, 0.5",
    "1.0^2",
    "1.0^2, 0.5",
    "1.0^3",
    "1.0^3, 0.5",
    "1.0^4",
    "1.0^[1,1]",
    "1.0^[2,1], 0.5",
    "1.0@45, 0.5",
    "0.9^2, 0.5",
    "1.0^4, 0.5^2",
    "1.0^[2,1], 0.5, 0.3, 0.2",
]


def _observed_workflow(T: list[int], draws: int = 3) -> str:
    spectra = ", ".join(f'"{s}"' for s in OBSERVED_SPECTRA)
    return (
        f'experiment = "observed"\nname = "bench_observed"\nseed = 0\n[grid]\nspectrum = [{spectra}]\n'
        f'family = ["block", "full", "similarity"]\nd = "all"\nT = {T}\ndraw = {draws}\n'
    )


def _clear_observed_caches() -> None:
    """Forget per-horizon results, so each timed call does the work a fresh worker does."""
    from pipeline.models.observed.weight import block_weight
    from pipeline.models.precision import pivots
    from tests.oracles import observed_fixed_point as fx

    block_weight.cache_clear()
    pivots._pivot_split_cached.cache_clear()
    for name in ("_block_log2_scales", "_sigmabar_blocks"):
        fn = getattr(fx, name, None)
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()


def observed_figures(quick: bool) -> list[Figure]:
    """Observed kernel: T = 1e8 vs T = 1e2 on the same cells, and cells per second on a
    theorem31-like grid (n <= 6, every family, d = all, 3 draws, T 1e1..1e8)."""
    from pipeline.experiments.observed.adapter import OBSERVED
    from pipeline.plan.config import parse_workflow

    def prepared(T: list[int]) -> tuple[Any, Any, int, int]:
        wf = parse_workflow(_observed_workflow(T))
        static = OBSERVED.static(wf.coords, wf.settings)
        total = int(np.prod([len(v) for v in wf.coords.values()]))
        fam_dim = static["family_dim"].values  # (spectrum, family)
        d = np.asarray(wf.coords["d"])
        defined = int((d[None, None, :] <= fam_dim[:, :, None]).sum()) * len(wf.coords["T"]) * len(wf.coords["draw"])
        return wf, static, total, defined

    lo_wf, lo_static, lo_total, lo_defined = prepared([100])
    hi_wf, hi_static, _, _ = prepared([10**8])
    sweep_T = sorted({round(v) for v in np.geomspace(10, 1e8, 8 if quick else 15)})
    sw_wf, sw_static, sw_total, sw_defined = prepared(sweep_T)
    repeats = 3 if quick else 5
    sides = {
        "T=1e2": lambda: OBSERVED.kernel(lo_wf.coords, lo_static, lo_wf.settings),
        "T=1e8": lambda: OBSERVED.kernel(hi_wf.coords, hi_static, hi_wf.settings),
    }
    times = alternate(sides, repeats, between=_clear_observed_caches)
    sweep_times = alternate(
        {"sweep": lambda: OBSERVED.kernel(sw_wf.coords, sw_static, sw_wf.settings)},
        max(1, repeats - 1),
        between=_clear_observed_caches,
    )
    lo, hi = median(times["T=1e2"]), median(times["T=1e8"])
    t_sweep = median(sweep_times["sweep"])
    spectra_note = f"{len(OBSERVED_SPECTRA)} spectra with n <= 6 x 3 families x d = all x 3 draws"
    return [
        Figure(
            "observed_horizon_cost_ratio",
            hi / lo,
            "x",
            "<=",
            3.0,
            note=f"{lo_defined:,} defined cells ({spectra_note}), T = 1e8 vs 1e2, caches cleared",
            details={
                "defined_cells": lo_defined,
                "cube_cells": lo_total,
                "seconds_T1e2": lo,
                "seconds_T1e8": hi,
                "times": times,
            },
        ),
        Figure(
            "observed_cells_per_s",
            sw_defined / t_sweep,
            "cells/s",
            note=(
                f"{sw_defined:,} defined cells ({spectra_note} x {len(sweep_T)} T in 1e1..1e8), "
                "one process; NaN cells d > family_dim not counted"
            ),
            details={
                "defined_cells": sw_defined,
                "cube_cells": sw_total,
                "seconds": t_sweep,
                "cube_cells_per_s": sw_total / t_sweep,
                "T": sweep_T,
                "times": sweep_times["sweep"],
            },
        ),
    ]


# ---------------------------------------------------------------------------
# observed kernel at n = 16: the fast kernel against today's fixed-point path

SPEEDUP_SPECTRUM = "1.0^8, 0.5^8"
SPEEDUP_T = [10**2, 10**4, 10**6]


def _observed_prepared(spectra: list[str], families: list[str], T: list[int], draws: int) -> tuple[Any, Any, int]:
    from pipeline.experiments.observed.adapter import OBSERVED
    from pipeline.plan.config import parse_workflow

    text = (
        'experiment = "observed"\nname = "bench_observed16"\nseed = 0\n[grid]\n'
        f"spectrum = {list(spectra)!r}\nfamily = {list(families)!r}\n".replace("'", '"')
        + f'd = "all"\nT = {list(T)}\ndraw = {draws}\n'
    )
    wf = parse_workflow(text)
    static = OBSERVED.static(wf.coords, wf.settings)
    fam_dim = static["family_dim"].values
    d = np.asarray(wf.coords["d"])
    defined = int((d[None, None, :] <= fam_dim[:, :, None]).sum()) * len(wf.coords["T"]) * len(wf.coords["draw"])
    return wf, static, defined


def _fixed_point_kernel(wf: Any, static: Any) -> np.ndarray:
    """Today's path (kept as tests/oracles/observed_fixed_point.py), driven as the adapter
    drives the model: one factor per (spectrum, family, T), bounded once."""
    from pipeline.models import observed as om
    from pipeline.models.spectra import parse_spectrum
    from tests.oracles import observed_fixed_point as fx

    basis = wf.settings.extra.get("basis", "jordan")
    out = []
    for text in wf.coords["spectrum"]:
        sp = parse_spectrum(str(text))
        n = sp.n
        Q = om.basis_change(sp, basis, int(wf.settings.seed))
        for fam in wf.coords["family"]:
            st = static.sel(spectrum=text, family=fam)
            D = int(st["family_dim"].values)
            B = np.asarray(st["learner_basis"].values, dtype=float)[:D, :n, :n]
            H = np.asarray(st["perturbation"].values, dtype=float)[:, :n, :n]
            prob = fx.problem_from_matrices(str(text), str(fam), B, H, Q)
            fx.bounded(prob)
            for T in wf.coords["T"]:
                fac = fx.risk_factor(str(text), str(fam), prob.P, int(T))
                out.append(fx.log2_risk(fac, prob.Pinv, prob.h))
    return np.concatenate([o.ravel() for o in out])


def observed_speedup_figures(quick: bool) -> list[Figure]:
    """n = 16 (``1.0^8, 0.5^8``), d = all, T = 1e2/1e4/1e6, 2 draws: the fast kernel
    (the adapter's kernel) against today's fixed-point path, side by side in one run,
    caches cleared before every call; and the fast kernel's cells per second there."""
    from pipeline.experiments.observed.adapter import OBSERVED

    figures = []
    repeats = 1 if quick else 3
    for family, target in (("full", 30.0), ("block", 10.0)):
        wf, static, defined = _observed_prepared([SPEEDUP_SPECTRUM], [family], SPEEDUP_T, 2)
        times = alternate(
            {
                "fast": lambda wf=wf, static=static: OBSERVED.kernel(wf.coords, static, wf.settings),
                "fixed_point": lambda wf=wf, static=static: _fixed_point_kernel(wf, static),
            },
            repeats,
            between=_clear_observed_caches,
        )
        fast, old = median(times["fast"]), median(times["fixed_point"])
        figures.append(
            Figure(
                f"observed_speedup_n16_{family}",
                old / fast,
                "x",
                ">=",
                target,
                note=(
                    f"{SPEEDUP_SPECTRUM!r} {family} (D = {int(static['family_dim'].values.max())}), d = all, "
                    f"T = 1e2/1e4/1e6, 2 draws: fixed point {old:.2f} s vs fast {fast:.3f} s, one process"
                ),
                details={"defined_cells": defined, "seconds_fast": fast, "seconds_fixed_point": old, "times": times},
            )
        )
        if family == "full":
            figures.append(
                Figure(
                    "observed_cells_per_s_n16",
                    defined / fast,
                    "cells/s",
                    note=f"{defined:,} defined cells of the n = 16 full workload above, fast kernel, one process",
                    details={"defined_cells": defined, "seconds": fast},
                )
            )
    return figures
