"""Dask orchestration: one task per pending block, progress, failures, resume.

The engine knows experiments only through ``pipeline.experiments.base``; the task
body is in ``tasks``, store bookkeeping in ``resume``, clients in ``clients``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline import store
from pipeline.clients import close, discard_early, make_client, start_client_early
from pipeline.cluster import ClusterSpec
from pipeline.config import Workflow
from pipeline.errors import RunError
from pipeline.experiments import get_experiment
from pipeline.experiments.base import VariableSpec
from pipeline.grid import BlockKey, as_key_string
from pipeline.lock import StoreLock
from pipeline.resume import StoreState, new_regions, prepare_store
from pipeline.tasks import compute_block


@dataclass
class RunReport:
    """What a run did: blocks total, already done before, computed now, failed."""

    location: str
    blocks_total: int
    blocks_done_before: int
    blocks_computed: int = 0
    cells_computed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    blocks_seconds: float = 0.0
    """Wall time from submitting the first block to the last result (no start-up)."""
    dashboard: str | None = None

    @property
    def complete(self) -> bool:
        return not self.failed and self.blocks_done_before + self.blocks_computed == self.blocks_total


def run(
    workflow: Workflow,
    location: store.StoreLocation,
    *,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    cluster: ClusterSpec | None = None,
    overwrite: bool = False,
    extend: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> RunReport:
    """Run (or resume) a sweep into ``location``; see the module docstring."""
    started = time.perf_counter()
    experiment = get_experiment(workflow.experiment)
    variables = experiment.variables(workflow.settings)
    with StoreLock(location):
        early = start_client_early(workflow, location, scheduler, scheduler_file, workers, cluster, overwrite)
        try:
            state = prepare_store(workflow, location, overwrite, extend, say)
        except BaseException:
            discard_early(early)
            raise
        return _run_locked(workflow, location, state, variables, scheduler, scheduler_file, workers,
                           cluster, progress, say, started, early)


def _run_locked(workflow: Workflow, location: store.StoreLocation, state: StoreState,
                variables: Mapping[str, VariableSpec], scheduler: str | None, scheduler_file: str | None,
                workers: int | None, cluster: ClusterSpec | None, progress: bool,
                say: Callable[[str], None], started: float, early: Any = None) -> RunReport:
    plan = state.plan
    group = store.open_group(location)
    done = store.done_blocks(group)
    pending = [k for k in plan.keys() if k not in done]
    report = RunReport(location.url, plan.total, len(done))
    if not pending:
        discard_early(early)
        say(f"{location.url}: all {plan.total} blocks already done; nothing to do")
        return report
    if done:
        say(f"{location.url}: resuming, {len(done)}/{plan.total} blocks already done")
    if early is not None:
        client = early.result()
    else:
        client = make_client(scheduler, workers, scheduler_file, cluster, len(pending))
    try:
        report.dashboard = client.dashboard_link
        say(f"dask dashboard: {client.dashboard_link}")
        _run_blocks(client, workflow, location, state, pending, report, progress)
    finally:
        close(client, own_cluster=not (scheduler or scheduler_file))
    report.seconds = time.perf_counter() - started
    if report.failed:
        lines = "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.items()))
        raise RunError(f"{len(report.failed)} of {plan.total} blocks failed (re-run to retry them): {lines}")
    return report


def _run_blocks(client: Any, workflow: Workflow, location: store.StoreLocation, state: StoreState,
                pending: list[BlockKey], report: RunReport, progress: bool) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    token = workflow.fingerprint()
    submitted = time.perf_counter()
    futures = [
        client.submit(compute_block, workflow.experiment, workflow.settings, location, token, key,
                      new_regions(state.plan.slices(key), state.complete_shape), pure=False,
                      key=f"block-{token}-{as_key_string(key)}-{time.monotonic_ns()}")
        for key in pending
    ]
    bar = tqdm(total=report.blocks_total, initial=report.blocks_done_before, unit="block",
               desc="blocks", disable=not progress, file=sys.stderr, mininterval=0.5, smoothing=0.1)
    try:
        for future in as_completed(futures):
            key_text = future.key.split("-")[2]
            try:
                result = future.result()
                report.blocks_computed += 1
                report.cells_computed += result["cells"]
            except Exception as exc:  # a failed block is reported, the others go on
                report.failed[key_text] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            bar.update(1)
            future.release()
    except KeyboardInterrupt:
        for f in futures:
            f.cancel()
        raise
    finally:
        bar.close()
        report.blocks_seconds = time.perf_counter() - submitted


def describe_plan(workflow: Workflow, location: store.StoreLocation, cluster: ClusterSpec | None = None) -> str:
    """What ``run`` would do, without writing anything (``emergence run --dry-run``)."""
    experiment = get_experiment(workflow.experiment)
    plan = workflow.plan
    variables = experiment.variables(workflow.settings)
    nbytes = sum(int(np.prod([len(workflow.coords[d]) for d in spec.dims])) * np.dtype(spec.dtype).itemsize
                 for spec in variables.values())
    lines = [
        f"workflow {workflow.name!r} (experiment {workflow.experiment}, method {workflow.settings.method})",
        "grid: " + " x ".join(f"{a}={n}" for a, n in zip(plan.axes, plan.shape, strict=True))
        + f" = {plan.cells:,} cells",
        "blocks: " + f"{plan.total:,} of " + " x ".join(f"{a}={c}" for a, c in zip(plan.axes, plan.chunks, strict=True)),
        f"estimated size on disk: at most {_human(nbytes)} uncompressed ({len(variables)} result variables)",
        f"store: {location.url} ({_store_state(workflow, location)})",
    ]
    if cluster is not None and cluster.is_batch:
        from pipeline.cluster import job_script

        lines += [f"{cluster.kind} job script:", job_script(cluster).rstrip()]
    lines.append("dry run: nothing was written")
    return "\n".join(lines)


def _store_state(workflow: Workflow, location: store.StoreLocation) -> str:
    if not location.exists():
        return "exists, not a cube: run would refuse without --overwrite" if location.anything_here() else "new"
    attrs = store.read_attrs(location)
    if attrs.get("workflow_fingerprint") != workflow.fingerprint():
        return ("made from a different workflow: run refuses without --overwrite "
                "(or --extend, if only axis values were added)")
    done = len(store.done_blocks(store.open_group(location, mode="r")))
    return f"{done}/{attrs.get('blocks_total')} blocks done"


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"
