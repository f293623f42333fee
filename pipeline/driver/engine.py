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
from pipeline.driver.clients import RunClient, dashboard_link
from pipeline.driver.estimate import PlannedWork, planned_work
from pipeline.driver.lock import StoreLock
from pipeline.driver.resume import StoreState, create_store, extend_store, extension_plan, new_regions, stored_state
from pipeline.driver.setup import RunSetup
from pipeline.driver.status import StoreStatus, store_status
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

    def failures(self) -> str:
        """What failed, for ``RunError``: each distinct error once (a task's own key in its
        text stands as ``<task>``), with how many tasks and which it failed, most frequent
        first; one line when there is one error, else one line per error below a head line,
        at most ``FAILURES_SHOWN`` of them."""
        tasks_of: dict[str, list[str]] = {}
        for task, error in sorted(self.failed.items(), key=lambda item: _task_order(item[0])):
            tasks_of.setdefault(_shortened(error.replace(task, TASK_PLACEHOLDER)), []).append(task)
        ranked = sorted(tasks_of.items(), key=lambda item: -len(item[1]))
        lines = [
            f"{error if len(tasks) > 1 else error.replace(TASK_PLACEHOLDER, tasks[0])} "
            f"({count(len(tasks), 'task')}: {', '.join(tasks[:3])}{', ...' if len(tasks) > 3 else ''})"
            for error, tasks in ranked[:FAILURES_SHOWN]
        ]
        if len(ranked) > FAILURES_SHOWN:
            rest = ranked[FAILURES_SHOWN:]
            lines.append(f"and {count(len(rest), 'other error')} in {count(sum(len(t) for _, t in rest), 'task')}")
        head = f"{len(self.failed)} of {count(self.tasks_total, 'task')} failed (re-run to retry them):"
        return f"{head} {lines[0]}" if len(lines) == 1 else "\n  ".join([head, *lines])


FAILURES_SHOWN = 5
"""Distinct errors a failed run names, one line each (the others are counted)."""
TASK_PLACEHOLDER = "<task>"
ERROR_CHARS = 300
"""An error's text is cut to this many characters."""


def _task_order(key: str) -> tuple[int, ...]:
    return tuple(int(i) for i in key.split("."))


def _shortened(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


def run(setup: RunSetup, *, progress: bool = True, say: Callable[[str], None] = print) -> RunReport:
    """Run (or resume, extend, replace) the sweep of ``setup.workflow`` into ``setup.location``.

    A running scheduler is connected to before anything is written; the store (and its
    lock) are made only then."""
    started = time.perf_counter()
    location = setup.location
    with RunClient(setup.where) as dask_client, StoreLock(location):
        try:
            status = store_status(setup.workflow, location)
            if status.state == "foreign":
                check_target(location, "cube")  # raises: what this tool did not make is never touched
            target, state = _prepare(setup, location, status, dask_client, say)
            report = _compute(setup.workflow, target, state, dask_client, progress, say)
        finally:
            dask_client.close()  # workers the run started stop before the lock is released
        report.location = location.url
        if target != location and report.complete:
            swap_into_place(location, target)
            report.replaced = True
        report.seconds = time.perf_counter() - started
    if report.failed:
        raise RunError(report.failures())
    return report


def _prepare(
    setup: RunSetup, location: StoreLocation, status: StoreStatus, dask_client: RunClient, say: Callable[[str], None]
) -> tuple[StoreLocation, StoreState]:
    """Where the blocks go and their plan; for a new store, a local cluster starting meanwhile."""
    workflow = setup.workflow
    if status.state == "new":
        return _create(workflow, location, dask_client)
    if setup.overwrite:
        return _prepare_replacement(setup, location.sibling(REPLACEMENT_SUFFIX), dask_client, say)
    if status.state in ("complete", "incomplete"):
        return location, stored_state(workflow, location)
    if setup.extend:
        return location, extend_store(workflow, location, say)
    raise UsageError(
        f"store {location.url!r} was made from a different workflow; pass --overwrite to replace "
        f"it{', --extend to compute only the added cells' if status.state == 'extendable' else ''}"
        ", or --out to write elsewhere"
    )


def _prepare_replacement(
    setup: RunSetup, staged: StoreLocation, dask_client: RunClient, say: Callable[[str], None]
) -> tuple[StoreLocation, StoreState]:
    """The replacement cube beside the old one: new, or resumed after an interruption."""
    status = store_status(setup.workflow, staged)
    if status.state in ("complete", "incomplete"):
        say(f"{staged.url}: resuming the unfinished replacement")
        return staged, stored_state(setup.workflow, staged)
    if status.state != "new":
        check_target(staged, "cube", what="the replacement path")
        staged.fs()[0].rm(staged.fs()[1], recursive=True)  # an abandoned replacement of ours
    return _create(setup.workflow, staged, dask_client)


def _create(workflow: Workflow, location: StoreLocation, dask_client: RunClient) -> tuple[StoreLocation, StoreState]:
    """A new cube at ``location``; a local cluster starts meanwhile (every task is pending)."""
    dask_client.start_early(workflow.plan.tasks_total)
    return location, create_store(workflow, location)


def _compute(
    workflow: Workflow,
    location: StoreLocation,
    state: StoreState,
    dask_client: RunClient,
    progress: bool,
    say: Callable[[str], None],
) -> RunReport:
    plan = state.plan
    ledger.compact_done(location)  # marks a killed run left: into the ledger
    done = ledger.done_tasks(location)
    pending = [t for t in plan.task_keys() if t not in done]
    report = RunReport(location.url, plan.total, plan.blocks_in(done), plan.tasks_total)
    if not pending:
        say(f"{location.url}: all {count(plan.total, 'block')} already done; nothing to do")
        return report
    if done:
        say(f"{location.url}: resuming, {report.blocks_done_before}/{count(plan.total, 'block')} already done")
    client = dask_client.get(len(pending))
    report.dashboard = dashboard_link(client)
    if report.dashboard:
        say(f"dask dashboard: {report.dashboard}")
    _run_blocks(client, workflow, location, state, pending, report, progress)
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

    token = workflow.fingerprint
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


def describe_plan(setup: RunSetup) -> str:
    """What ``run`` would do, without writing anything (``emergence run --dry-run``): the plan
    it would follow (the store's own when it resumes or extends one), what of it is left to
    compute and the estimated seconds of that (``pipeline.driver.estimate``)."""
    workflow, location, where = setup.workflow, setup.location, setup.where
    experiment = get_experiment(workflow.experiment)
    variables = experiment.variables(workflow.settings)
    nbytes = sum(  # inner dims (no grid axis) are sized by the static part, not computed here
        int(np.prod([len(workflow.coords[d]) for d in spec.dims if d in workflow.coords]))
        * np.dtype(spec.dtype).itemsize
        for spec in variables.values()
    )
    inner = any(d not in workflow.coords for spec in variables.values() for d in spec.dims)
    status = store_status(workflow, location)
    work, extension = _planned(workflow, location, status, setup.extend)
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
