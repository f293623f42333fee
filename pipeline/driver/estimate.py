"""What a run would compute, and its estimated seconds on one core (``emergence run --dry-run``).

The plan is the one the run would follow: the store's own when the store exists (a
resume, or an ``--extend`` that keeps the stored chunking), else the workflow's. The
seconds add, over the tasks still to compute, the experiment's estimate of every kernel
call the task makes (``Experiment.estimate_seconds``, one call per region the task
computes) and the engine's own cost of a task (``TASK_SECONDS_OVERHEAD``, and
``FIRST_TASK_SECONDS`` once: the estimate is of one core, one worker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.types import Settings
from pipeline.driver.resume import new_regions
from pipeline.experiments import get_experiment
from pipeline.plan.grid import BlockKey, BlockPlan

TASK_SECONDS_OVERHEAD = 0.03
"""Seconds a task costs a worker beside its kernel calls: the static part restricted to the
task, the NaN check, one shard write per result variable, the done-mark and Dask's
bookkeeping. Measured ~25 ms per task on the shared 2-core machine (the task bodies of
``theorem31`` with 30 draws in one process: 12 ms selecting the static part, 17 ms writing
~400 KB), 30-50 ms per task in the blocks phase of real runs (``benchmarks/estimates.py``)."""
FIRST_TASK_SECONDS = 0.04
"""Seconds more of a worker's first task: opening the store and loading its static part
(a run on one core pays it once; ``benchmarks/estimates.py``: 50-80 ms one-task runs)."""
SAMPLED_TASKS = 2048
"""Above this many tasks to compute, the estimate adds up an evenly spaced sample of them."""


@dataclass(frozen=True)
class PlannedWork:
    """The plan a run follows, what of it is still to compute and its estimated seconds."""

    plan: BlockPlan
    tasks: int
    """Tasks still to compute."""
    blocks: int
    """Blocks those tasks hold."""
    seconds: float
    """Estimated seconds on one core: every kernel call of those tasks, and their overhead."""


def planned_work(
    plan: BlockPlan,
    coords: Mapping[str, np.ndarray],
    experiment: str,
    settings: Settings,
    done: set[BlockKey] | frozenset[BlockKey] = frozenset(),
    complete_shape: Sequence[int] | None = None,
) -> PlannedWork:
    """The work of ``plan`` over the grid ``coords`` left after the tasks ``done``, with the
    cells inside ``complete_shape`` (after ``--extend``: the cube before) already computed."""
    known = tuple(complete_shape) if complete_shape is not None else (0,) * len(plan.axes)
    model = get_experiment(experiment)

    def call_seconds(region: Mapping[str, slice]) -> float:
        return model.estimate_seconds({a: coords[a][s] for a, s in region.items()}, settings)

    pending = [t for t in plan.task_keys() if t not in done and new_regions(plan.task_slices(t), known)]
    if any(known):  # after --extend: only the blocks that reach outside the cube before
        tasks = set(pending)
        per = plan.task_blocks
        blocks = sum(
            1
            for key in plan
            if tuple(i // t for i, t in zip(key, per, strict=True)) in tasks and new_regions(plan.slices(key), known)
        )
    else:
        blocks = plan.blocks_in(pending)
    return PlannedWork(plan, len(pending), blocks, _seconds(plan, pending, known, call_seconds))


def _seconds(
    plan: BlockPlan,
    pending: list[BlockKey],
    known: tuple[int, ...],
    call_seconds: Callable[[Mapping[str, slice]], float],
) -> float:
    if not pending:
        return 0.0
    at = np.unique(np.linspace(0, len(pending) - 1, min(len(pending), SAMPLED_TASKS)).astype(np.int64))
    sampled = [pending[i] for i in at]
    per_task = [
        TASK_SECONDS_OVERHEAD + sum(call_seconds(r) for r in new_regions(plan.task_slices(t), known)) for t in sampled
    ]
    return FIRST_TASK_SECONDS + float(np.mean(per_task)) * len(pending)
