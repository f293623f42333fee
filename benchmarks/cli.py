"""Command line of the benchmarks: runs every figure, prints the table, writes JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure, LoadWatch, machine, table

GROUPS = ("hidden", "observed", "hidden_spectrum", "fitted", "fitted_fir", "pipeline", "blocks", "estimates")
ORDER = (
    "exact_vs_montecarlo_speedup",
    "closed_form_vs_loop_speedup",
    "horizon_cost_ratio",
    "truncated_cells_per_s",
    "best_fir_cells_per_s",
    "startup_seconds",
    "pipeline_overhead_ratio",
    "two_worker_speedup",
    "peak_rss_mib",
    "many_blocks_speedup",
    "block_overhead_ms",
    "bytes_on_disk_per_cell",
    "done_scan_seconds_1e5",
    "done_scan_seconds_1e5_s3",
    "observed_horizon_cost_ratio",
    "observed_cells_per_s",
    "observed_speedup_n16_full",
    "observed_speedup_n16_block",
    "observed_cells_per_s_n16",
    "hidden_spectrum_cells_per_s_truncated_kalman",
    "hidden_spectrum_cells_per_s_best_fir",
    "hidden_spectrum_horizon_cost_ratio",
    "fitted_draw_rate_stable_n8",
    "fitted_draw_rate_stable_n4",
    "fitted_draw_rate_jordan_n7",
    "fitted_draw_rate_explosive_n7",
    "fitted_draw_rate_figure1_grid",
    "fitted_sampler_draw_rate_stable_n8",
    "fitted_sampler_draw_rate_explosive_n7",
    "fitted_sharing_draws_saved",
    "fitted_sharing_time_saved",
    "fitted_figure1_kernel_vs_naive",
    "fitted_figure1_command_vs_naive",
    "fitted_fir_draw_rate_ratio_k8",
    "fitted_fir_draw_rate_ratio_k32",
    "fitted_fir_sampler_draw_rate_ratio",
    "fitted_fir_sharing_factor",
    "fitted_fir_one_training_set_seconds",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats, smaller sweeps (10^7-cell memory sweep); about 5 minutes on 2 cores",
    )
    p.add_argument("--json", metavar="PATH", help="write {'machine': ..., 'figures': ...} here")
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="GROUP",
        choices=GROUPS,
        help="run only these groups (debugging)",
    )
    return p


def _pipeline_figures(quick: bool) -> list[Figure]:
    from benchmarks import pipeline_runs

    runner = pipeline_runs.Runner()
    try:
        return [*pipeline_runs.pipeline_figures(quick, runner), pipeline_runs.two_worker_figure(quick, runner)]
    finally:
        runner.close()


def _steps(quick: bool) -> list[tuple[str, str, Callable[[], Any]]]:
    """Every measurement as (group, label, thunk), in the order they run."""
    from benchmarks import blocks, estimates, fitted, fitted_fir, hidden_spectrum, kernels

    return [
        ("hidden", "exact vs Monte Carlo", lambda: kernels.exact_vs_montecarlo(quick)),
        ("hidden", "closed form vs O(T) loop", lambda: kernels.closed_form_vs_loop(quick)),
        ("hidden", "horizon cost", lambda: kernels.horizon_cost(quick)),
        ("hidden", "cells per second", lambda: kernels.cells_per_s(quick)),
        ("observed", "observed kernel", lambda: kernels.observed_figures(quick)),
        (
            "observed",
            "observed kernel at n = 16 vs fixed point",
            lambda: kernels.observed_speedup_figures(quick),
        ),
        ("hidden_spectrum", "hidden-state kernel over spectra", lambda: hidden_spectrum.figures(quick)),
        ("fitted", "fitted learners: draw rate, prefix sharing", lambda: fitted.figures(quick)),
        ("fitted_fir", "fitted FIR filters: draw rate, sharing, one training set", lambda: fitted_fir.figures(quick)),
        (
            "pipeline",
            "startup, overhead, two workers (runs)",
            lambda: _pipeline_figures(quick),
        ),
        ("blocks", "many small blocks (subprocess runs)", lambda: blocks.many_blocks(quick)),
        ("blocks", "done-state scan of 10^5 blocks", lambda: blocks.done_scan(quick)),
        ("blocks", "done-state scan of 10^5 blocks on loopback S3", lambda: blocks.done_scan_s3(quick)),
        ("estimates", "dry-run estimates vs measured compute (runs)", lambda: estimates.figures(1 if quick else 3)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quick = bool(args.quick)
    groups = set(args.only or GROUPS)
    info = machine()
    info["mode"] = "quick" if quick else "full"
    figures: list[Figure] = []
    started = time.perf_counter()
    busy: dict[str, float] = {}

    with LoadWatch() as watch:

        def step(label: str, fn: Callable[[], Any]) -> None:
            t0 = watch.elapsed()
            print(f"[{time.perf_counter() - started:6.1f} s] {label} ...", file=sys.stderr, flush=True)
            got = fn()
            new = got if isinstance(got, list) else [got]
            for f in new:
                busy[f.name] = round(watch.window(t0, watch.elapsed()), 2)
            figures.extend(new)

        for group, label, fn in _steps(quick):
            if group in groups:
                step(label, fn)

    elapsed = time.perf_counter() - started
    figures.sort(key=lambda f: ORDER.index(f.name) if f.name in ORDER else len(ORDER))
    for f in figures:
        f.details["other_processes_cpu_cores_max"] = busy.get(f.name, 0.0)
    info["load_average_at_end"] = [round(v, 2) for v in __import__("os").getloadavg()]
    info["other_processes_cpu_cores_max"] = max(busy.values(), default=0.0)
    info["benchmark_seconds"] = round(elapsed, 1)

    print(table(figures))
    print(
        f"\n{info['mode']} run, {elapsed:.0f} s on {info['cpu']} ({info['logical_cores']} cores, "
        f"{info['memory_gib']} GiB); CPU used by other processes while measuring: "
        f"at most {info['other_processes_cpu_cores_max']:.2f} cores"
    )
    failed = [f.name for f in figures if f.passed is False]
    print("targets: " + ("all met" if not failed else "missed: " + ", ".join(failed)))
    if args.json:
        payload = {"machine": info, "figures": {f.name: f.as_json() for f in figures}}
        Path(args.json).write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
        print(f"wrote {args.json}")
    return 0


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
