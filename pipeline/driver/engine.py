"""Dask orchestration: one task per pending block, progress, failures, resume.

``run`` decides what to do from the store's status (``pipeline.driver.status``): create a
cube, resume it, extend it, or build a replacement beside it (``--overwrite``) that
takes its place only once complete. The task body is in ``tasks``, store bookkeeping
in ``resume``, clients in ``clients``; experiments are known only through the registry.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.core.errors import RunError, UsageError
from pipeline.core.wording import count
from pipeline.driver.clients import close, dashboard_link, discard_early, make_client, start_client_early
from pipeline.driver.estimate import PlannedWork, planned_work
from pipeline.driver.lock import StoreLock
from pipeline.driver.resume import StoreState, create_store, extend_store, extension_plan, new_regions, stored_state
from pipeline.driver.status import StoreStatus, store_status
from pipeline.driver.where import Where
from pipeline.experiments import get_experiment
from pipeline.plan.config import Workflow
from pipeline.plan.grid import BlockKey, as_key_string
from pipeline.storage import ledger
from pipeline.storage.guard import check_target, swap_into_place
from pipeline.storage.location import StoreLocation
from pipeline.worker.tasks import compute_task

COMPACT_SECONDS = 10.0
COMPACT_TASKS = 4096
"""The driver folds the tasks' done-marks into the ledger (``ledger.compact_done``) once
``COMPACT_SECONDS`` have passed or ``COMPACT_TASKS`` tasks have finished since the last fold,
so a killed run leaves at most about that many marks standing for readers to list (listing
is what a reader pays for; on object stores it is one request per 1,000 marks)."""


def fold_due(seconds_since: float, tasks_since: int) -> bool:
    """Whether the driver folds the marks now (see ``COMPACT_SECONDS`` and ``COMPACT_TASKS``)."""
    return seconds_since > COMPACT_SECONDS or tasks_since >= COMPACT_TASKS


REPLACEMENT_SUFFIX = ".next"
"""``--overwrite`` builds the new cube at ``<out>.next`` and moves it to ``<out>`` when complete."""


@dataclass
class RunReport:
    """What a run did: blocks total, already done before, computed now, failed."""

    location: str
    blocks_total: int
    blocks_done_before: int
    tasks_total: int = 0
    blocks_computed: int = 0
    cells_computed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    blocks_seconds: float = 0.0
    """Wall time from submitting the first block to the last result (no start-up)."""
    dashboard: str | None = None
    replaced: bool = False
    """Whether the run replaced a cube of another workflow (``--overwrite``)."""

    @property
    def complete(self) -> bool:
        return not self.failed and self.blocks_done_before + self.blocks_computed == self.blocks_total

    def summary(self) -> str:
        """The line ``emergence run`` prints."""
        return (
            f"{self.location}: computed {count(self.blocks_computed, 'block')}, "
            f"{count(self.cells_computed, 'cell')} "
            f"({self.blocks_done_before + self.blocks_computed}/{self.blocks_total} done) "
            f"in {self.seconds:.1f} s ({self.blocks_seconds:.2f} s computing blocks)"
            + ("; replaced the cube of another workflow" if self.replaced else "")
        )


def run(
    workflow: Workflow,
    location: StoreLocation,
    *,
    where: Where | None = None,
    overwrite: bool = False,
    extend: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> RunReport:
    """Run (or resume, extend, replace) the sweep of ``workflow`` into ``location``."""
    started = time.perf_counter()
    where = where or Where.choose(cluster=workflow.cluster)
    if overwrite and extend:
        raise UsageError("--overwrite and --extend exclude each other")
    with StoreLock(location):
        check_target(location, "cube")
        status = store_status(workflow, location)
        target, state, early = _prepare(workflow, location, status, where, overwrite, extend, say)
        report = _compute(workflow, target, state, where, progress, say, early)
        report.location = location.url
        if target != location and report.complete:
            swap_into_place(location, target)
            report.replaced = True
        report.seconds = time.perf_counter() - started
    if report.failed:
        lines = "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.items()))
        raise RunError(
            f"{len(report.failed)} of {count(report.tasks_total, 'task')} failed (re-run to retry them): {lines}"
        )
    return report


def _prepare(
    workflow: Workflow,
    location: StoreLocation,
    status: StoreStatus,
    where: Where,
    overwrite: bool,
    extend: bool,
    say: Callable[[str], None],
) -> tuple[StoreLocation, StoreState, Any]:
    """Where the blocks go and their plan; for a new store, a local cluster starting meanwhile."""
    if status.state == "new":
        early = start_client_early(where, workflow.plan.tasks_total)
        try:
            return location, create_store(workflow, location), early
        except BaseException:
            discard_early(early)
            raise
    if overwrite:
        return _prepare_replacement(workflow, location.sibling(REPLACEMENT_SUFFIX), where, say)
    if status.state in ("complete", "incomplete"):
        return location, stored_state(workflow, location), None
    if extend:
        return location, extend_store(workflow, location, say), None
    raise UsageError(
        f"store {location.url!r} was made from a different workflow; pass --overwrite to replace "
        f"it{', --extend to compute only the added cells' if status.state == 'extendable' else ''}"
        ", or --out to write elsewhere"
    )


def _prepare_replacement(
    workflow: Workflow, staged: StoreLocation, where: Where, say: Callable[[str], None]
) -> tuple[StoreLocation, StoreState, Any]:
    """The replacement cube beside the old one: new, or resumed after an interruption."""
    status = store_status(workflow, staged)
    if status.state in ("complete", "incomplete"):
        say(f"{staged.url}: resuming the unfinished replacement")
        return staged, stored_state(workflow, staged), None
    if status.state != "new":
        check_target(staged, "cube", what="the replacement path")
        staged.fs()[0].rm(staged.fs()[1], recursive=True)  # an abandoned replacement of ours
    return _prepare(workflow, staged, StoreStatus("new", status.found), where, False, False, say)


def _compute(
    workflow: Workflow,
    location: StoreLocation,
    state: StoreState,
    where: Where,
    progress: bool,
    say: Callable[[str], None],
    early: Any,
) -> RunReport:
    plan = state.plan
    ledger.compact_done(location)  # marks a killed run left: into the ledger
    done = ledger.done_tasks(location)
    pending = [t for t in plan.task_keys() if t not in done]
    report = RunReport(location.url, plan.total, plan.blocks_in(done), plan.tasks_total)
    if not pending:
        discard_early(early)
        say(f"{location.url}: all {count(plan.total, 'block')} already done; nothing to do")
        return report
    if done:
        say(f"{location.url}: resuming, {report.blocks_done_before}/{count(plan.total, 'block')} already done")
    client = early.result() if early is not None else make_client(where, len(pending))
    try:
        report.dashboard = dashboard_link(client)
        if report.dashboard:
            say(f"dask dashboard: {report.dashboard}")
        _run_blocks(client, workflow, location, state, pending, report, progress)
    finally:
        close(client, own_cluster=where.owns_cluster)
    return report


def _run_blocks(
    client: Any,
    workflow: Workflow,
    location: StoreLocation,
    state: StoreState,
    pending: list[BlockKey],
    report: RunReport,
    progress: bool,
) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    token = workflow.fingerprint()
    submitted = time.perf_counter()
    futures = {
        client.submit(
            compute_task,
            workflow.experiment,
            workflow.settings,
            location,
            token,
            task,
            new_regions(state.plan.task_slices(task), state.complete_shape),
            pure=False,
            key=f"task-{token}-{as_key_string(task)}-{time.monotonic_ns()}",
        ): task
        for task in pending
    }
    bar = tqdm(
        total=report.blocks_total,
        initial=report.blocks_done_before,
        unit="block",
        desc="blocks",
        disable=not progress,
        file=sys.stderr,
        mininterval=0.5,
        smoothing=0.1,
    )
    compacted, unfolded = time.monotonic(), 0
    try:
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
                report.blocks_computed += state.plan.task_block_count(task)
                report.cells_computed += result["cells"]
            except Exception as exc:  # a failed task is reported, the others go on
                report.failed[as_key_string(task)] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            bar.update(state.plan.task_block_count(task))
            future.release()
            unfolded += 1
            if fold_due(time.monotonic() - compacted, unfolded):
                ledger.compact_done(location)
                compacted, unfolded = time.monotonic(), 0
    except KeyboardInterrupt:
        for f in futures:
            f.cancel()
        raise
    finally:
        bar.close()
        report.blocks_seconds = time.perf_counter() - submitted
        with contextlib.suppress(Exception):  # a failure here must not hide the run's own
            ledger.compact_done(location)


def describe_plan(workflow: Workflow, location: StoreLocation, where: Where | None = None, extend: bool = False) -> str:
    """What ``run`` would do, without writing anything (``emergence run --dry-run``): the plan
    it would follow (the store's own when it resumes or extends one), what of it is left to
    compute and the estimated seconds of that (``pipeline.driver.estimate``)."""
    where = where or Where.choose(cluster=workflow.cluster)
    experiment = get_experiment(workflow.experiment)
    variables = experiment.variables(workflow.settings)
    nbytes = sum(  # inner dims (no grid axis) are sized by the static part, not computed here
        int(np.prod([len(workflow.coords[d]) for d in spec.dims if d in workflow.coords]))
        * np.dtype(spec.dtype).itemsize
        for spec in variables.values()
    )
    inner = any(d not in workflow.coords for spec in variables.values() for d in spec.dims)
    status = store_status(workflow, location)
    work, extension = _planned(workflow, location, status, extend)
    plan = work.plan
    left = "" if work.blocks == plan.total else f" for the {count(work.blocks, 'block')} to compute"
    lines = [
        f"workflow {workflow.name!r} (experiment {workflow.experiment}, method {workflow.settings.method})",
        "grid: "
        + " x ".join(f"{a}={n}" for a, n in zip(plan.axes, plan.shape, strict=True))
        + f" = {count(plan.cells, 'cell')}",
        f"blocks: {plan.total:,} of " + " x ".join(f"{a}={c}" for a, c in zip(plan.axes, plan.chunks, strict=True)),
        f"tasks: {plan.tasks_total:,} of "
        + " x ".join(f"{a}={t}" for a, t in zip(plan.axes, plan.task_blocks, strict=True))
        + " blocks",
        f"estimated compute: {_duration(work.seconds)} on one core{left}"
        + (f" ({_duration(work.seconds / work.tasks)} per task on average)" if work.tasks else ""),
        f"estimated size on disk: at most {_human(nbytes)} uncompressed ({count(len(variables), 'result variable')}"
        + (", per value of their inner dims)" if inner else ")"),
        f"store: {location.url} ({status.describe()})",
        f"workers: {where.describe()}",
    ]
    if extension:
        lines.append(extension)
    if where.kind == "batch":
        from pipeline.driver.cluster import job_script

        assert where.cluster is not None
        lines += [f"{where.cluster.kind} job script:", job_script(where.cluster).rstrip()]
    lines.append("dry run: nothing was written")
    return "\n".join(lines)


def _planned(workflow: Workflow, location: StoreLocation, status: StoreStatus, extend: bool) -> tuple[PlannedWork, str]:
    """The work a run would do (the store's plan where it resumes or extends one) and, for
    ``--extend``, the line saying what it adds."""
    args = (workflow.coords, workflow.experiment, workflow.settings)
    if status.state in ("complete", "incomplete"):
        state = stored_state(workflow, location)
        return planned_work(state.plan, *args, ledger.done_tasks(location), state.complete_shape), ""
    if extend and status.state == "extendable":
        old, grown = extension_plan(workflow, location)
        work = planned_work(grown, *args, complete_shape=old.shape)
        return work, (
            f"--extend would add {count(grown.cells - old.cells, 'cell')} "
            f"({old.cells:,} -> {grown.cells:,}) in {count(work.blocks, 'block')} "
            f"(of {grown.total:,}; the others are done)"
        )
    return planned_work(workflow.plan, *args), ""


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 600:
        return f"{seconds:.1f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 * 2 else f"{seconds / 60:.0f} min"


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"
