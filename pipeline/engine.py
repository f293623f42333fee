"""Dask orchestration: one task per block, region writes, done-marks, resume.

The engine knows experiments only through ``pipeline.experiments.base``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from pipeline import store
from pipeline.config import Workflow
from pipeline.errors import RunError, UsageError
from pipeline.experiments import get_experiment
from pipeline.experiments.base import Settings, VariableSpec
from pipeline.grid import BlockKey, as_key_string


class BlockError(RuntimeError):
    """A block's kernel produced something that must not be written."""


@dataclass
class RunReport:
    """What a run did: blocks total, already done before, computed now, failed."""

    location: str
    blocks_total: int
    blocks_done_before: int
    blocks_computed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    dashboard: str | None = None

    @property
    def complete(self) -> bool:
        return not self.failed and self.blocks_done_before + self.blocks_computed == self.blocks_total


def prepare_store(workflow: Workflow, location: store.StoreLocation, overwrite: bool) -> bool:
    """Create the cube if needed. Returns True when a new cube was created.

    Refuses (UsageError) a store made from a different workflow unless ``overwrite``.
    """
    if location.exists() and not overwrite:
        attrs = store.read_attrs(location)
        if attrs.get("workflow_fingerprint") != workflow.fingerprint():
            raise UsageError(
                f"store {location.url!r} was made from a different workflow "
                f"(fingerprint {attrs.get('workflow_fingerprint')} != {workflow.fingerprint()}); "
                "pass --overwrite to replace it or --out to write elsewhere"
            )
        return False
    if location.anything_here() and not location.exists() and not overwrite:
        raise UsageError(f"{location.url!r} exists and is not an emergence cube; pass --overwrite to replace it")
    experiment = get_experiment(workflow.experiment)
    static = experiment.static(workflow.coords, workflow.settings)
    attrs = store.provenance(workflow.text, workflow.fingerprint(), workflow.experiment, workflow.plan)
    ds, encoding = store.template(workflow.coords, static, experiment.variables(workflow.settings),
                                  workflow.plan, attrs)
    store.create_cube(location, ds, encoding, workflow.plan)
    return True


def static_variables(location: store.StoreLocation, variables: Mapping[str, VariableSpec]) -> xr.Dataset:
    """The cube's static part (everything but the blocked result variables), loaded."""
    ds = store.open_cube(location)
    return ds.drop_vars(list(variables)).load()


def compute_block(
    experiment_name: str,
    settings: Settings,
    location: store.StoreLocation,
    key: BlockKey,
    slices: Mapping[str, slice],
    static: xr.Dataset,
) -> dict[str, Any]:
    """Task body: compute a block, check it, write its region, then mark it done."""
    started = time.perf_counter()
    experiment = get_experiment(experiment_name)
    variables = experiment.variables(settings)
    block_coords = {axis: static[axis].values[s] for axis, s in slices.items()}
    block_static = static.isel({d: s for d, s in slices.items() if d in static.dims})
    try:
        arrays = experiment.kernel(block_coords, block_static, settings)
    except Exception as exc:
        raise BlockError(f"block {as_key_string(key)}: kernel failed: {type(exc).__name__}: {exc}") from exc
    check_block(key, block_coords, arrays, variables)
    group = store.open_group(location)
    store.write_block(group, key, slices, arrays, variables)
    store.mark_done(group, key)
    return {"key": key, "seconds": time.perf_counter() - started,
            "cells": int(np.prod([s.stop - s.start for s in slices.values()]))}


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
            bad = np.argwhere(np.isnan(value))
            if bad.size:
                cell = {d: _plain(coords[d][i]) for d, i in zip(spec.dims, bad[0], strict=True)}
                raise BlockError(f"block {as_key_string(key)}: {name} is NaN at {cell} "
                                 f"({len(bad)} NaN cells in the block); nothing was written")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def make_client(scheduler: str | None, workers: int | None, scheduler_file: str | None = None) -> Any:
    """A distributed Client: to an existing scheduler, or a new local cluster."""
    from distributed import Client, LocalCluster

    if scheduler_file:
        return Client(scheduler_file=scheduler_file, timeout="30s")
    if scheduler:
        return Client(scheduler, timeout="30s")
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=40)
    return Client(cluster)


def run(
    workflow: Workflow,
    location: store.StoreLocation,
    *,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> RunReport:
    """Run (or resume) a sweep into ``location``; see the module docstring."""
    started = time.perf_counter()
    experiment = get_experiment(workflow.experiment)
    variables = experiment.variables(workflow.settings)
    plan = workflow.plan
    prepare_store(workflow, location, overwrite)
    group = store.open_group(location)
    done = store.done_blocks(group)
    pending = [k for k in plan.keys() if k not in done]
    report = RunReport(location.url, plan.total, len(done))
    if not pending:
        say(f"{location.url}: all {plan.total} blocks already done; nothing to do")
        return report
    if done:
        say(f"{location.url}: resuming, {len(done)}/{plan.total} blocks already done")
    static = static_variables(location, variables)
    client = make_client(scheduler, workers, scheduler_file)
    try:
        report.dashboard = client.dashboard_link
        say(f"dask dashboard: {client.dashboard_link}")
        _run_blocks(client, workflow, location, pending, static, report, progress)
    finally:
        _close(client, own_cluster=not (scheduler or scheduler_file))
    report.seconds = time.perf_counter() - started
    if report.failed:
        lines = "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.items()))
        raise RunError(f"{len(report.failed)} of {plan.total} blocks failed (re-run to retry them): {lines}")
    return report


def _run_blocks(client: Any, workflow: Workflow, location: store.StoreLocation, pending: list[BlockKey],
                static: xr.Dataset, report: RunReport, progress: bool) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    static_future = client.scatter(static, broadcast=True)
    token = workflow.fingerprint()
    futures = [
        client.submit(compute_block, workflow.experiment, workflow.settings, location, key,
                      workflow.plan.slices(key), static_future, pure=False,
                      key=f"block-{token}-{as_key_string(key)}-{time.monotonic_ns()}")
        for key in pending
    ]
    bar = tqdm(total=report.blocks_total, initial=report.blocks_done_before, unit="block",
               desc="blocks", disable=not progress, file=sys.stderr, mininterval=0.5, smoothing=0.1)
    try:
        for future in as_completed(futures):
            key_text = future.key.split("-")[2]
            try:
                future.result()
                report.blocks_computed += 1
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
