"""``emergence run --dry-run``'s estimated compute beside the measured compute.

``python -m benchmarks.estimates [--repeats N] [--only NAME ...]`` (also the group
``estimates`` of ``python -m benchmarks``). For every shipped workflow (``workflows/*.toml``)
and ``theorem31`` with ``draw = 30``:

* estimate: the seconds ``--dry-run`` prints on its ``estimated compute`` line
  (``pipeline.driver.estimate.planned_work`` on the workflow's plan, a fresh store);
* measured: the blocks phase of a real ``emergence run --workers 1 --no-progress`` into a
  fresh store, as it prints it ("(X s computing blocks)": wall time from submitting the
  first task to the last result). One single-threaded worker process does nothing but these
  tasks, one after another, so the blocks phase is the compute of one core, which is what
  the estimate claims. Median of the repeats; the CPU other processes used meanwhile is
  reported beside it (the machine is shared);
* bare kernel: every task's kernel call in a fresh plain process (static part computed
  first, not timed), and from it the engine's cost per task (blocks phase - bare kernel,
  per task) against ``TASK_SECONDS_OVERHEAD``.

Target: the estimate within a factor of 3 of the measured compute on every workflow.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, Figure, check, emergence_command, foreign_cpu, median, run_timed, table

TARGET_FACTOR = 3.0
BARE_KERNEL = """
import json, sys
from pathlib import Path
from benchmarks.pipeline_runs import bare_kernel_seconds
seconds, cells = bare_kernel_seconds(Path(sys.argv[1]).read_text())
print(json.dumps({"seconds": seconds, "cells": cells}))
"""


def workflows(folder: Path) -> list[Path]:
    """The shipped workflows, and theorem31 with 30 draws (written into ``folder``)."""
    shipped = sorted((REPO / "workflows").glob("*.toml"))
    text = (REPO / "workflows" / "theorem31.toml").read_text()
    draws = re.sub(r"(?m)^draw = \d+", "draw = 30", text).replace('name = "theorem31"', 'name = "theorem31_draw30"')
    extra = folder / "theorem31_draw30.toml"
    extra.write_text(draws)
    return [*shipped, extra]


def estimate(path: Path) -> tuple[float, int, int]:
    """(estimated seconds, tasks, blocks) of a fresh run of the workflow at ``path``."""
    from pipeline.driver.estimate import planned_work
    from pipeline.plan.config import load_workflow

    wf = load_workflow(path)
    work = planned_work(wf.plan, wf.coords, wf.experiment, wf.settings)
    return work.seconds, work.tasks, work.blocks


def blocks_phase(path: Path, scratch: Path) -> float:
    """Seconds of the blocks phase of ``emergence run --workers 1`` into a fresh store."""
    out = scratch / f"{path.stem}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    _, done = run_timed([*emergence_command(), "run", str(path), "--out", str(out), "--workers", "1", "--no-progress"])
    check(done)
    shutil.rmtree(out, ignore_errors=True)
    found = re.search(r"\(([0-9.]+) s computing blocks\)", done.stdout)
    if found is None:
        raise RuntimeError(f"no blocks phase in the output of {path.name}: {done.stdout!r}")
    return float(found.group(1))


def bare_kernel(path: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", BARE_KERNEL, str(path)], cwd=REPO, capture_output=True, text=True, timeout=3600
    )
    check(done)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def measure(path: Path, scratch: Path, repeats: int) -> dict[str, Any]:
    from pipeline.driver.estimate import TASK_SECONDS_OVERHEAD

    seconds, tasks, blocks = estimate(path)
    runs, busy = [], []
    for _ in range(repeats):
        busy.append(foreign_cpu(0.5))
        runs.append(blocks_phase(path, scratch))
    measured = median(runs)
    kernel = bare_kernel(path)
    return {
        "workflow": path.stem,
        "tasks": tasks,
        "blocks": blocks,
        "estimate_s": seconds,
        "measured_s": measured,
        "runs_s": runs,
        "ratio": seconds / measured,
        "bare_kernel_s": kernel,
        "overhead_per_task_ms": 1e3 * (measured - kernel) / tasks,
        "overhead_assumed_ms": 1e3 * TASK_SECONDS_OVERHEAD,
        "other_processes_cpu_cores": max(busy),
    }


def figures(repeats: int = 3, only: Sequence[str] = ()) -> list[Figure]:
    """One figure per workflow: the factor between estimate and measured compute (<= 3)."""
    scratch = Path(tempfile.mkdtemp(prefix="emergence-estimates-"))
    try:
        out = []
        for path in workflows(scratch):
            if only and path.stem not in only:
                continue
            row = measure(path, scratch, repeats)
            factor = max(row["ratio"], 1 / row["ratio"])
            note = (
                f"{row['tasks']} tasks: estimate {row['estimate_s']:.3g} s vs blocks phase {row['measured_s']:.3g} s "
                f"(`--workers 1`, median of {repeats}: {', '.join(f'{r:.3g}' for r in row['runs_s'])}); "
                f"bare kernel {row['bare_kernel_s']:.3g} s, so {row['overhead_per_task_ms']:.0f} ms per task beside "
                f"it (assumed {row['overhead_assumed_ms']:.0f}); other processes used up to "
                f"{row['other_processes_cpu_cores']:.2f} cores"
            )
            out.append(Figure(f"estimate_factor_{row['workflow']}", factor, "x", "<=", TARGET_FACTOR, note, row))
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.estimates", description=__doc__)
    p.add_argument("--repeats", type=int, default=3, help="runs per workflow (median; default 3)")
    p.add_argument("--only", nargs="+", default=(), metavar="NAME", help="only these workflows (file stems)")
    p.add_argument("--json", metavar="PATH", help="write the rows here")
    args = p.parse_args(argv)
    found = figures(args.repeats, args.only)
    print(table(found))
    missed = [f.name for f in found if f.passed is False]
    print("targets: " + ("all met" if not missed else "missed: " + ", ".join(missed)))
    if args.json:
        Path(args.json).write_text(json.dumps({f.name: f.details for f in found}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
