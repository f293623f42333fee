"""Dask orchestration: one task per block, region writes, done-marks, resume.

The engine knows experiments only through ``pipeline.experiments.base``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from pipeline import store
from pipeline.cluster import ClusterSpec, start_batch_cluster
from pipeline.config import Workflow
from pipeline.errors import RunError, UsageError
from pipeline.experiments import get_experiment
from pipeline.experiments.base import Settings, VariableSpec
from pipeline.grid import BlockKey, BlockPlan, as_key_string
from pipeline.lock import StoreLock


FAULT_ENV = "EMERGENCE_FAULT"
"""Fault injection for tests: comma-separated ``point=KEY`` items (KEY a block key like
``0.1.0.0.0`` or ``*``). Points: ``crash-before-write`` and ``crash-before-mark`` end the
worker process abruptly; ``fail-kernel`` raises inside the kernel; ``nan-result`` puts a
NaN into the kernel's first result; ``delay=SECONDS`` slows every block."""


def _inject_fault(point: str, key: BlockKey, arrays: dict[str, np.ndarray] | None = None) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, arg = item.strip().partition("=")
        if name == "delay" and point == "crash-before-write":
            time.sleep(float(arg))
        elif name == point and arg in ("*", as_key_string(key)):
            if point == "fail-kernel":
                raise FloatingPointError(f"injected kernel fault in block {as_key_string(key)}")
            if point == "nan-result" and arrays:
                first = np.array(next(iter(arrays.values())), dtype=np.float64)
                first.flat[-1] = np.nan
                arrays[next(iter(arrays))] = first
                return
            os._exit(17)


class BlockError(RuntimeError):
    """A block's kernel produced something that must not be written."""


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
    dashboard: str | None = None

    @property
    def complete(self) -> bool:
        return not self.failed and self.blocks_done_before + self.blocks_computed == self.blocks_total


@dataclass(frozen=True)
class StoreState:
    """The block plan a store was created with, and the region known complete
    before its latest extension (cells inside it are never recomputed)."""

    plan: BlockPlan
    complete_shape: tuple[int, ...]


def prepare_store(workflow: Workflow, location: store.StoreLocation, overwrite: bool = False,
                  extend: bool = False, say: Callable[[str], None] = print) -> StoreState:
    """Create, check or extend the cube for ``workflow``; return its block plan.

    Refuses (UsageError) a store made from a different workflow unless ``overwrite``,
    or unless ``extend`` and only axis values were added at the ends of axes.
    """
    if location.exists() and not overwrite:
        attrs = store.read_attrs(location)
        if attrs.get("workflow_fingerprint") != workflow.fingerprint():
            if extend:
                return extend_store(workflow, location, attrs, say)
            raise UsageError(
                f"store {location.url!r} was made from a different workflow "
                f"(fingerprint {attrs.get('workflow_fingerprint')} != {workflow.fingerprint()}); "
                "pass --overwrite to replace it, --extend to add axis values, or --out to write elsewhere"
            )
        return _stored_state(workflow, location, attrs)
    if location.anything_here() and not location.exists() and not overwrite:
        raise UsageError(f"{location.url!r} exists and is not an emergence cube; pass --overwrite to replace it")
    experiment = get_experiment(workflow.experiment)
    static = experiment.static(workflow.coords, workflow.settings)
    attrs = store.provenance(workflow.text, workflow.fingerprint(), workflow.experiment, workflow.plan)
    attrs["workflow_base_fingerprint"] = workflow.fingerprint(without_axes=True)
    ds, encoding = store.template(workflow.coords, static, experiment.variables(workflow.settings),
                                  workflow.plan, attrs)
    store.create_cube(location, ds, encoding, workflow.plan)
    return StoreState(workflow.plan, (0,) * len(workflow.plan.axes))


def _stored_state(workflow: Workflow, location: store.StoreLocation, attrs: Mapping[str, Any]) -> StoreState:
    """The stored plan, after checking the metadata agrees with the workflow."""
    try:
        chunks = json.loads(attrs["block_chunks"])
        plan = BlockPlan(workflow.plan.axes, workflow.plan.shape, tuple(int(chunks[a]) for a in workflow.plan.axes))
        group = store.open_group(location, mode="r")
        blocks = group[f"{store.DONE_GROUP}/done"]
        complete = tuple(int(n) for n in blocks.attrs.get("complete_shape", [0] * len(plan.axes)))
        shapes_ok = blocks.shape == plan.nblocks and all(
            group[a].shape == (n,) for a, n in zip(plan.axes, plan.shape, strict=True))
    except Exception as exc:
        raise UsageError(f"store {location.url!r}: metadata is corrupt or incomplete "
                         f"({type(exc).__name__}: {exc}); pass --overwrite to rebuild it") from None
    if not shapes_ok:
        raise UsageError(f"store {location.url!r}: array shapes disagree with its workflow "
                         "(an interrupted --extend?); pass --overwrite to rebuild it")
    return StoreState(plan, complete)


def extend_store(workflow: Workflow, location: store.StoreLocation, attrs: Mapping[str, Any],
                 say: Callable[[str], None] = print) -> StoreState:
    """Grow a complete cube to the workflow's axes (old values must be a prefix of new)."""
    if attrs.get("workflow_base_fingerprint") != workflow.fingerprint(without_axes=True):
        raise UsageError(f"store {location.url!r}: --extend may only add axis values; the workflow's "
                         "experiment, seed, method, mc_samples or settings differ from the store's")
    old_ds = store.open_cube(location)
    for axis in workflow.plan.axes:
        old = old_ds[axis].values
        new = workflow.coords[axis]
        prefix = new[: len(old)]
        same = len(new) >= len(old) and all(str(a) == str(b) if old.dtype.kind in "OUT" else a == b
                                            for a, b in zip(old.tolist(), prefix.tolist(), strict=True))
        if not same:
            raise UsageError(f"--extend: axis {axis!r} must keep its {len(old)} existing values first, in order, "
                             "and add new values after them")
    old_state = _stored_state_from(location, attrs, workflow.plan.axes, old_ds)
    group = store.open_group(location, mode="r")
    done = store.done_blocks(group)
    if len(done) != old_state.plan.total:
        raise UsageError(f"--extend: the cube has {len(done)}/{old_state.plan.total} blocks done; "
                         "finish it first (re-run the old workflow without --extend)")
    plan = BlockPlan(workflow.plan.axes, workflow.plan.shape, old_state.plan.chunks)
    experiment = get_experiment(workflow.experiment)
    static = experiment.static(workflow.coords, workflow.settings)
    store.grow_cube(location, workflow.coords, static, experiment.variables(workflow.settings), plan,
                    complete_shape=old_state.plan.shape,
                    attrs={"workflow": workflow.text, "workflow_fingerprint": workflow.fingerprint(),
                           "blocks_total": plan.total})
    say(f"{location.url}: extended from {old_state.plan.cells:,} to {plan.cells:,} cells")
    return StoreState(plan, old_state.plan.shape)


def _stored_state_from(location: store.StoreLocation, attrs: Mapping[str, Any], axes: tuple[str, ...],
                       ds: xr.Dataset) -> StoreState:
    chunks = json.loads(attrs["block_chunks"])
    shape = tuple(ds.sizes[a] for a in axes)
    return StoreState(BlockPlan(axes, shape, tuple(int(chunks[a]) for a in axes)), shape)


def new_regions(block: Mapping[str, slice], complete_shape: tuple[int, ...]) -> list[dict[str, slice]]:
    """The block's cells outside the complete region, as disjoint rectangles.

    Rectangle ``i`` takes axes before ``i`` inside the complete region, axis ``i``
    outside it, and later axes whole. For a fresh cube this is the block itself.
    """
    axes = list(block)
    regions = []
    for i in range(len(axes)):
        region = {}
        for j, axis in enumerate(axes):
            s = block[axis]
            lo, hi = s.start, s.stop
            if j < i:
                hi = min(hi, complete_shape[j])
            elif j == i:
                lo = max(lo, complete_shape[j])
            if hi <= lo:
                break
            region[axis] = slice(lo, hi)
        else:
            regions.append(region)
    return regions


_STATIC_CACHE: dict[tuple[str, str], xr.Dataset] = {}


def load_static(location: store.StoreLocation, fingerprint: str, results: list[str]) -> xr.Dataset:
    """The cube without its blocked result variables (its static part), loaded once
    per worker process and cube version.

    Tasks read it themselves instead of depending on a shared future: tasks without
    dependencies are queued by the scheduler one per worker thread, so a worker that
    dies takes down only the block it was running.
    """
    key = (location.url, fingerprint)
    if key not in _STATIC_CACHE:
        _STATIC_CACHE.clear()
        _STATIC_CACHE[key] = store.open_cube(location, dask=False).drop_vars(results).load()
    return _STATIC_CACHE[key]


def compute_block(
    experiment_name: str,
    settings: Settings,
    location: store.StoreLocation,
    fingerprint: str,
    key: BlockKey,
    regions: list[dict[str, slice]],
) -> dict[str, Any]:
    """Task body: compute the block's regions, check them, write them, then mark the block done."""
    started = time.perf_counter()
    experiment = get_experiment(experiment_name)
    variables = experiment.variables(settings)
    static = load_static(location, fingerprint, list(variables))
    group = store.open_group(location)
    cells, kernel_seconds = 0, 0.0
    for slices in regions:
        block_coords = {axis: static[axis].values[s] for axis, s in slices.items()}
        block_static = static.isel({d: s for d, s in slices.items() if d in static.dims})
        kernel_started = time.perf_counter()
        try:
            _inject_fault("fail-kernel", key)
            arrays = experiment.kernel(block_coords, block_static, settings)
        except Exception as exc:
            raise BlockError(f"block {as_key_string(key)}: kernel failed: {type(exc).__name__}: {exc}") from exc
        kernel_seconds += time.perf_counter() - kernel_started
        _inject_fault("nan-result", key, arrays)
        check_block(key, block_coords, arrays, variables)
        _inject_fault("crash-before-write", key)
        store.write_block(group, key, slices, arrays, variables)
        cells += int(np.prod([s.stop - s.start for s in slices.values()]))
    _inject_fault("crash-before-mark", key)
    store.mark_done(group, key)
    return {"key": key, "seconds": time.perf_counter() - started, "kernel_seconds": kernel_seconds,
            "cells": cells}


def check_block(
    key: BlockKey,
    coords: Mapping[str, np.ndarray],
    arrays: Mapping[str, np.ndarray],
    variables: Mapping[str, VariableSpec],
) -> None:
    """Shapes must match and no unexplained NaN may reach the cube."""
    for name, spec in variables.items():
        if name not in arrays:
            raise BlockError(f"block {as_key_string(key)}: kernel returned no {name!r}")
        expected = tuple(len(coords[d]) for d in spec.dims)
        value = np.asarray(arrays[name])
        if value.shape != expected:
            raise BlockError(f"block {as_key_string(key)}: {name} has shape {value.shape}, expected {expected}")
        if value.dtype.kind == "f" and not spec.nan_means:
            with np.errstate(all="ignore"):
                if not np.isnan(np.add.reduce(value, axis=None)):
                    continue  # a NaN anywhere makes the sum NaN: no NaN here (fast path)
            bad = np.argwhere(np.isnan(value))
            if bad.size:
                cell = {d: _plain(coords[d][i]) for d, i in zip(spec.dims, bad[0], strict=True)}
                raise BlockError(f"block {as_key_string(key)}: {name} is NaN at {cell} "
                                 f"({len(bad)} NaN cells in the block); nothing was written")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


LOCAL_CLUSTER_CONFIG = {
    # A worker holds only the block it is running, so a worker that dies takes no
    # innocent queued block down with it.
    "distributed.scheduler.worker-saturation": 1.0,
    # Dask's default also sets MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
    # dynamic mmap threshold: every large numpy temporary is then mmapped and faulted
    # in afresh, and the kernels run 2.4x slower (benchmarks/, issue 6).
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                                             "OPENBLAS_NUM_THREADS": 1},
}


def make_client(scheduler: str | None, workers: int | None, scheduler_file: str | None = None,
                cluster: ClusterSpec | None = None, blocks: int | None = None) -> Any:
    """A distributed Client: to an existing scheduler, a batch cluster, or a new local cluster.

    A local cluster gets at most one single-threaded worker process per pending block;
    for a single block, one worker thread in this process (starting and stopping a
    worker process costs more than the block).
    """
    from distributed import Client, LocalCluster

    if cluster is not None and cluster.is_batch and not (scheduler or scheduler_file):
        return Client(start_batch_cluster(cluster))
    if scheduler_file:
        return Client(scheduler_file=scheduler_file, timeout="30s")
    if scheduler:
        return Client(scheduler, timeout="30s")
    import dask

    n = min(workers or os.cpu_count() or 1, blocks or sys.maxsize)
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=blocks != 1,
                               dashboard_address=":0", silence_logs=logging.CRITICAL)
    return Client(cluster)


def _local(scheduler: str | None, scheduler_file: str | None, cluster: ClusterSpec | None) -> bool:
    return not (scheduler or scheduler_file or (cluster is not None and cluster.is_batch))


def _start_client_early(workflow: Workflow, location: store.StoreLocation, scheduler: str | None,
                        scheduler_file: str | None, workers: int | None, cluster: ClusterSpec | None,
                        overwrite: bool) -> Any:
    """For a new local-cluster run, start the cluster in a thread while the driver creates
    the store (on a fresh store every block is pending). Returns a Future or None."""
    if not _local(scheduler, scheduler_file, cluster) or not (overwrite or not location.anything_here()):
        return None
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="emergence-cluster-start")
    future = pool.submit(make_client, None, workers, None, cluster, workflow.plan.total)
    pool.shutdown(wait=False)  # the thread ends when the cluster is up
    return future


def _discard_early(early: Any) -> None:
    if early is None:
        return
    try:
        client = early.result()
    except Exception:  # noqa: BLE001 - the run is failing already
        return
    _close(client, own_cluster=True)


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
        early = _start_client_early(workflow, location, scheduler, scheduler_file, workers, cluster, overwrite)
        try:
            state = prepare_store(workflow, location, overwrite, extend, say)
        except BaseException:
            _discard_early(early)
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
        _discard_early(early)
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
        _close(client, own_cluster=not (scheduler or scheduler_file))
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


def _close(client: Any, own_cluster: bool) -> None:
    cluster = client.cluster if own_cluster else None
    client.close()
    if cluster is not None:
        cluster.close()


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
