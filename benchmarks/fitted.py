"""Fitted-learner kernel figures (issue 20, item 7, the kernel half): normal draws per second
of the sampler and sufficient statistics against numpy's own ``standard_normal`` in the
same run, the draws prefix sharing saves on a Figure-1-like grid, and that grid's kernel
time against the per-cell computation a researcher would write."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.harness import Figure, alternate, median

# (figure, label, spectrum, T grid, m): n <= 8, m >= 100
RATE_CASES = (
    ("fitted_draw_rate_stable_n8", "stable, n = 8", "0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2", [100, 1000], 256),
    ("fitted_draw_rate_stable_n4", "stable, n = 4", "0.9, 0.7, 0.5, 0.3", [100, 1000], 256),
    ("fitted_draw_rate_jordan_n7", "1.0^4, 0.4^[1,1,1]", "1.0^4, 0.4^[1,1,1]", [100, 1000], 256),
    ("fitted_draw_rate_explosive_n7", "1.1^4, 0.4^[1,1,1] (compensated)", "1.1^4, 0.4^[1,1,1]", [100, 1000], 256),
    (
        "fitted_draw_rate_figure1_grid",
        "1.0^4, 0.4^[1,1,1], Figure 1 grid",
        "1.0^4, 0.4^[1,1,1]",
        list(range(10, 71, 10)),
        300,
    ),
)
RATE_FITS = 4  # training sets simulated side by side in the draw-rate figures (as a block of fits is)
FIGURE1 = ("1.0^4, 0.4^[1,1,1]", "1.1^4, 0.4^[1,1,1]")
FIGURE1_T = list(range(10, 71, 10))
FIGURE1_K = list(range(1, 8))
FIGURE1_M = 300


def _drawn(n: int, T: int, m: int) -> int:
    """Normals the sampler draws for ``m`` trajectories of ``T`` steps (whole groups and blocks)."""
    from pipeline.models.simulation.fitted_states import BLOCK, GROUP

    return -(-m // GROUP) * GROUP * -(-T // BLOCK) * BLOCK * n


def draw_rates(quick: bool) -> list[Figure]:
    """Normals per second of ``statistics.moments`` (sampler + statistics, one process) over
    numpy's ``Generator.standard_normal`` of the same count, interleaved in one run."""
    from pipeline.models.fitted.cells import training_sets
    from pipeline.models.spectra import parse_spectrum

    repeats = 3 if quick else 7
    out = []
    for name, label, spectrum, T, m in RATE_CASES:
        n = parse_spectrum(spectrum).n
        need = n * T[-1] * m * RATE_FITS
        rng = np.random.default_rng(0)
        buf = np.empty(need)
        keys = [(spectrum, f) for f in range(RATE_FITS)]
        training_sets(spectrum, 1, keys[:1], T, [m])  # warm caches (exponent schedule, imports)
        times = alternate(
            {
                "ours": lambda s=spectrum, T=T, m=m, keys=keys: training_sets(s, 1, keys, T, [m]),
                "numpy": lambda rng=rng, buf=buf: rng.standard_normal(out=buf),
            },
            repeats,
        )
        t_ours, t_np = min(times["ours"]), min(times["numpy"])
        ratio = t_np / t_ours
        drawn = _drawn(n, T[-1], m) * RATE_FITS
        out.append(
            Figure(
                name,
                ratio,
                "x numpy",
                ">=" if m >= 100 and n <= 8 else None,
                0.5 if m >= 100 and n <= 8 else None,
                note=(
                    f"{label}: T={T[-1]} ({len(T)} grid T), m={m}, {RATE_FITS} fits; "
                    f"{need / t_ours / 1e6:.1f} M normals/s (sampler + S, W at every grid T, m) "
                    f"vs numpy {need / t_np / 1e6:.1f} M/s; counting the padding to whole blocks and "
                    f"groups ({drawn / need:.2f}x the normals): {ratio * drawn / need:.2f}x numpy; best of {repeats}"
                ),
                details={
                    "normals_needed": need,
                    "normals_drawn": drawn,
                    "seconds_ours": times["ours"],
                    "seconds_numpy": times["numpy"],
                },
            )
        )
    return out


SAMPLER_CASES = (
    ("fitted_sampler_draw_rate_stable_n8", "0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2"),
    ("fitted_sampler_draw_rate_explosive_n7", "1.1^4, 0.4^[1,1,1]"),
)


def sampler_rates(quick: bool) -> list[Figure]:
    """Normals per second of the sampler alone (``simulation.fitted_states.simulate``: draws and
    the recursion, no statistics) over numpy's ``standard_normal`` of the same count, interleaved;
    T = 1000, m = 256, 4 fits side by side (one batch of 1024 trajectories)."""
    from pipeline.models.simulation import fitted_states as fs

    repeats = 3 if quick else 7
    out = []
    for name, spectrum in SAMPLER_CASES:
        rec = fs.Recursion.of(fs.chains(spectrum))
        parts = [p for f in range(RATE_FITS) for p in fs.segments((spectrum, f), 256)]
        need = rec.n * 1000 * 256 * RATE_FITS
        rng = np.random.default_rng(0)
        buf = np.empty(need)

        def ours(rec: Any = rec, parts: Any = parts) -> None:
            for batch in fs.batches(parts, fs.GROUP * fs.BATCH_GROUPS):
                for _ in fs.simulate(rec, 1, batch, 1000):
                    pass

        ours()  # compile and warm caches
        times = alternate({"ours": ours, "numpy": lambda rng=rng, buf=buf: rng.standard_normal(out=buf)}, repeats)
        t_ours, t_np = min(times["ours"]), min(times["numpy"])
        out.append(
            Figure(
                name,
                t_np / t_ours,
                "x numpy",
                ">=",
                0.5,
                note=(
                    f"{spectrum!r}: sampler alone (draws + recursion), T=1000, m=256, {RATE_FITS} fits; "
                    f"{need / t_ours / 1e6:.1f} M normals/s vs numpy {need / t_np / 1e6:.1f} M/s; best of {repeats}"
                ),
                details={"seconds_ours": times["ours"], "seconds_numpy": times["numpy"]},
            )
        )
    return out


def _figure1_cells(fits: int) -> list[tuple[str, int, int, int]]:
    return [(s, f, T, k) for s in FIGURE1 for f in range(fits) for T in FIGURE1_T for k in FIGURE1_K]


def sharing(quick: bool) -> list[Figure]:
    """Figure-1-like grid (both spectra, leading, k = 1..7, T = 10..70, m = 300, 20 fits):
    normals drawn with one simulation per (spectrum, fit) against one per cell, and the
    wall time of every cell (simulation, exact fit, exact risk) both ways."""
    from pipeline.models.fitted.cells import evaluate, training_set
    from pipeline.models.fitted.problem import leading_problem

    fits = 20
    n = 7
    cells = _figure1_cells(fits)
    per_cell = sum(_drawn(n, T, FIGURE1_M) for _, _, T, _ in cells)
    shared = len(FIGURE1) * fits * _drawn(n, FIGURE1_T[-1], FIGURE1_M)
    problems = {s: leading_problem(s, np.eye(n)) for s in FIGURE1}
    ds = [k * k for k in FIGURE1_K]
    timed_fits = 2 if quick else fits

    def shared_run() -> None:
        for s in FIGURE1:
            for f in range(timed_fits):
                evaluate(problems[s], training_set(s, 1, (s, f), FIGURE1_T, [FIGURE1_M]), ds)

    def per_cell_run() -> None:
        for s, f, T, k in _figure1_cells(timed_fits):
            evaluate(problems[s], training_set(s, 1, (s, f), [T], [FIGURE1_M]), [k * k])

    times = alternate({"shared": shared_run, "per_cell": per_cell_run}, 1)
    t_shared, t_cell = median(times["shared"]), median(times["per_cell"])
    scale = fits / timed_fits
    return [
        Figure(
            "fitted_sharing_draws_saved",
            per_cell / shared,
            "x",
            note=(
                f"{len(cells):,} cells (2 spectra x 20 fits x 7 T x 7 k, m = 300): {per_cell / 1e6:.0f} M normals "
                f"simulated per cell vs {shared / 1e6:.1f} M with one simulation per (spectrum, fit)"
            ),
            details={"cells": len(cells), "normals_per_cell_way": per_cell, "normals_shared": shared},
        ),
        Figure(
            "fitted_sharing_time_saved",
            t_cell / t_shared,
            "x",
            note=(
                f"every cell (simulation, exact fit, exact risk): {t_shared * scale:.1f} s shared vs "
                f"{t_cell * scale:.1f} s per cell" + (f" (timed on {timed_fits} fits, scaled)" if quick else "")
            ),
            details={"seconds_shared": t_shared * scale, "seconds_per_cell": t_cell * scale, "timed_fits": timed_fits},
        ),
    ]


def _naive_cell(spectrum: str, seed: int, T: int, m: int, k: int) -> float:
    """A researcher's cell: simulate, least squares on the explicit design, float64 risk."""
    from pipeline.models.precision.doubling import sigmabar
    from pipeline.models.spectra import parse_spectrum

    A = parse_spectrum(spectrum).jordan_matrix()
    n = A.shape[0]
    rng = np.random.default_rng(seed)
    x = np.zeros((m, T + 1, n))
    w = rng.standard_normal((m, T, n))
    for t in range(T):
        x[:, t + 1] = x[:, t] @ A.T + w[:, t]
    X = np.zeros((m * T * k, k * k))
    for r in range(k):
        X[r::k, r * k : (r + 1) * k] = x[:, :T, :k].reshape(m * T, k)
    y = x[:, 1:, :k].reshape(-1)
    phi = np.linalg.lstsq(X, y, rcond=None)[0]
    Ahat = np.zeros((n, n))
    Ahat[:k, :k] = phi.reshape(k, k)
    D = A - Ahat
    return float(np.trace(D @ sigmabar(A, T) @ D.T))


def figure1_vs_naive(quick: bool) -> Figure:
    """The Figure-1-like grid's kernel time (shared simulation, exact fits) against the naive
    per-cell script on a sample of its cells, extrapolated to all cells (report only: the
    whole-command target belongs to the workflow run)."""
    from pipeline.models.fitted.cells import evaluate, training_set
    from pipeline.models.fitted.problem import leading_problem

    fits = 20
    cells = _figure1_cells(fits)
    sample = cells[:: 41 if quick else 9]  # strides prime to 7, so every k is sampled
    t0 = time.perf_counter()
    for s, f, T, k in sample:
        _naive_cell(s, f, T, FIGURE1_M, k)
    t_naive = (time.perf_counter() - t0) * len(cells) / len(sample)
    problems = {s: leading_problem(s, np.eye(7)) for s in FIGURE1}
    timed_fits = 2 if quick else fits
    t0 = time.perf_counter()
    for s in FIGURE1:
        for f in range(timed_fits):
            evaluate(problems[s], training_set(s, 1, (s, f), FIGURE1_T, [FIGURE1_M]), [k * k for k in FIGURE1_K])
    t_ours = (time.perf_counter() - t0) * fits / timed_fits
    details: dict[str, Any] = {"seconds_naive_extrapolated": t_naive, "seconds_ours": t_ours, "sampled": len(sample)}
    return Figure(
        "fitted_figure1_kernel_vs_naive",
        t_naive / t_ours,
        "x",
        note=(
            f"{len(cells):,} cells: {t_ours:.1f} s (one simulation per spectrum and fit, exact fits and risks) vs "
            f"{t_naive:.0f} s per cell with numpy (simulate, lstsq on the design, float risk; "
            f"{len(sample)} cells timed and extrapolated)"
        ),
        details=details,
    )


def figure1_command_vs_naive(quick: bool) -> Figure:
    """The whole ``emergence run workflows/figure1.toml`` (2 local workers, a fresh store)
    against ``python benchmarks/naive_figure1.py`` (the same cells, per cell with numpy), both
    as whole commands; the naive command computes every 97th cell (997th in ``--quick``) and
    extrapolates its time to all cells (its startup counted once)."""
    import json
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from benchmarks.harness import emergence_command

    repo = Path(__file__).resolve().parents[1]
    scratch = Path(tempfile.mkdtemp(prefix="emergence-figure1-"))
    try:
        cmd = [*emergence_command(), "run", str(repo / "workflows" / "figure1.toml"), "--out", str(scratch / "f1.zarr")]
        t0 = time.perf_counter()
        done = subprocess.run([*cmd, "--no-progress"], capture_output=True, text=True, check=True)
        t_ours = time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    every = 997 if quick else 97
    t0 = time.perf_counter()
    naive = subprocess.run(
        [sys.executable, str(repo / "benchmarks" / "naive_figure1.py"), "--every", str(every)],
        capture_output=True,
        text=True,
        check=True,
        cwd=repo,
    )
    t_naive_wall = time.perf_counter() - t0
    got = json.loads(naive.stdout.strip().splitlines()[-1])
    t_naive = float(got["seconds_all"]) + (t_naive_wall - float(got["seconds"]))
    return Figure(
        "fitted_figure1_command_vs_naive",
        t_naive / t_ours,
        "x",
        ">=",
        20.0,
        note=(
            f"emergence run workflows/figure1.toml ({got['cells']:,} cells, 2 workers): {t_ours:.1f} s vs the "
            f"per-cell numpy script {t_naive:.0f} s ({got['computed']} cells timed, extrapolated)"
        ),
        details={
            "seconds_ours": t_ours,
            "seconds_naive_extrapolated": t_naive,
            "naive_cells_timed": got["computed"],
            "cells": got["cells"],
            "run_output": done.stdout.strip().splitlines()[-1:],
        },
    )


def figures(quick: bool) -> list[Figure]:
    return [
        *draw_rates(quick),
        *sampler_rates(quick),
        *sharing(quick),
        figure1_vs_naive(quick),
        figure1_command_vs_naive(quick),
    ]
