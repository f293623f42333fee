"""The task body that runs on a worker: compute a block, check it, write it, mark it."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from pipeline.core.types import Settings, VariableSpec
from pipeline.experiments import get_experiment
from pipeline.plan.grid import BlockKey, as_key_string
from pipeline.storage import layout, ledger, nodes
from pipeline.storage.location import StoreLocation
from pipeline.worker import faults
from pipeline.worker.allocator import keep_block_memory


class BlockError(RuntimeError):
    """A block's kernel produced something that must not be written."""


# The worker's caches are shared by the tasks its threads run at once: every read, fill
# and eviction happens under this lock, and the cached static arrays are read-only.
_CACHE_LOCK = threading.RLock()
_STATIC_CACHE: dict[tuple[str, str], xr.Dataset] = {}


def load_static(location: StoreLocation, fingerprint: str, results: list[str]) -> xr.Dataset:
    """The cube without its blocked result variables (its static part), loaded once
    per worker process and cube version; its arrays are read-only (threads share them).

    Tasks read it themselves instead of depending on a shared future: tasks without
    dependencies are queued by the scheduler one per worker thread, so a worker that
    dies takes down only the block it was running.
    """
    key = (location.url, fingerprint)
    with _CACHE_LOCK:
        static = _STATIC_CACHE.get(key)
        if static is None:
            static = layout.open_dataset(location, dask=False).drop_vars(results).load()
            for variable in static.variables.values():
                if isinstance(variable.data, np.ndarray):
                    variable.data.setflags(write=False)
            _STATIC_CACHE.clear()
            _STATIC_CACHE[key] = static
    return static


class _Arrays(dict[str, Any]):
    """The cube's Zarr arrays by name, each opened (its metadata read) once."""

    def __init__(self, location: StoreLocation) -> None:
        super().__init__()
        self.group = nodes.open_group(location)

    def __missing__(self, name: str) -> Any:
        with _CACHE_LOCK:
            array = dict.get(self, name)
            if array is None:
                array = self[name] = self.group[name]
        return array


_ARRAYS_CACHE: dict[tuple[str, str], _Arrays] = {}


def open_store(location: StoreLocation, fingerprint: str) -> _Arrays:
    """The cube's arrays, opened once per worker process and cube version (on object
    storage every metadata read is a request)."""
    key = (location.url, fingerprint)
    with _CACHE_LOCK:
        arrays = _ARRAYS_CACHE.get(key)
        if arrays is None:
            arrays = _Arrays(location)
            _ARRAYS_CACHE.clear()
            _ARRAYS_CACHE[key] = arrays
    return arrays


def compute_task(
    experiment_name: str,
    settings: Settings,
    location: StoreLocation,
    fingerprint: str,
    task: BlockKey,
    regions: list[dict[str, slice]],
) -> dict[str, Any]:
    """Task body: compute the task's regions (one kernel call each), check them, write them,
    then mark the task done."""
    started = time.perf_counter()
    keep_block_memory()
    experiment = get_experiment(experiment_name)
    variables = experiment.variables(settings)
    static = load_static(location, fingerprint, list(variables))
    group = open_store(location, fingerprint)
    cells, kernel_seconds = 0, 0.0
    bounds = _bounds(regions)
    tiled = sum(_cells(r) for r in regions) == _cells(bounds)  # not after --extend: only new blocks
    shard: dict[str, np.ndarray] = {}
    inner = {str(d): static[d].values for d in static.dims if d not in regions[0]}  # dims no block cuts
    for slices in regions:
        coords = {axis: static[axis].values[s] for axis, s in slices.items()}
        region_static = static.isel({d: s for d, s in slices.items() if d in static.dims})
        kernel_started = time.perf_counter()
        try:
            faults.inject("fail-kernel", task)
            arrays = experiment.kernel(coords, region_static, settings)
        except Exception as exc:
            raise BlockError(f"task {as_key_string(task)}: kernel failed: {type(exc).__name__}: {exc}") from exc
        kernel_seconds += time.perf_counter() - kernel_started
        faults.inject("nan-result", task, arrays)
        check_block(task, coords | inner, arrays, variables)
        cells += _cells(slices)
        if tiled:
            _place(shard, bounds, slices, arrays, variables)
        else:
            faults.inject("crash-before-write", task)
            layout.write_task(group, task, slices, arrays, variables)
    if tiled:
        faults.inject("crash-before-write", task)
        layout.write_task(group, task, bounds, shard, variables)
    faults.inject("crash-before-mark", task)
    ledger.mark_done(group, task)
    return {"key": task, "seconds": time.perf_counter() - started, "kernel_seconds": kernel_seconds, "cells": cells}


def _cells(slices: Mapping[str, slice]) -> int:
    return int(np.prod([s.stop - s.start for s in slices.values()]))


def _bounds(regions: list[dict[str, slice]]) -> dict[str, slice]:
    """The rectangle a task's regions tile (they are contiguous along every axis)."""
    return {a: slice(min(r[a].start for r in regions), max(r[a].stop for r in regions)) for a in regions[0]}


def _place(
    shard: dict[str, np.ndarray],
    bounds: Mapping[str, slice],
    slices: Mapping[str, slice],
    arrays: Mapping[str, np.ndarray],
    variables: Mapping[str, VariableSpec],
) -> None:
    """Copy one region's arrays into the task's arrays, so each shard is written once:
    Zarr rewrites a whole shard on every partial write, which would cost a task of G blocks
    G (G + 1) / 2 block writes."""
    for name, spec in variables.items():
        if name not in arrays:
            continue
        whole = slice(None)  # along an inner dim (no grid axis)
        if name not in shard:
            shape = tuple(
                bounds[d].stop - bounds[d].start if d in bounds else n
                for d, n in zip(spec.dims, np.shape(arrays[name]), strict=True)
            )
            shard[name] = np.empty(shape, dtype=arrays[name].dtype)
        at = tuple(
            slice(slices[d].start - bounds[d].start, slices[d].stop - bounds[d].start) if d in slices else whole
            for d in spec.dims
        )
        shard[name][at] = arrays[name]


def check_block(
    key: BlockKey,
    coords: Mapping[str, np.ndarray],
    arrays: Mapping[str, np.ndarray],
    variables: Mapping[str, VariableSpec],
) -> None:
    """Shapes must match and no unexplained NaN may reach the cube (``coords``: the block's
    coordinates along every dim of the variables, inner dims whole)."""
    for name, spec in variables.items():
        if name not in arrays:
            raise BlockError(f"task {as_key_string(key)}: kernel returned no {name!r}")
        expected = tuple(len(coords[d]) for d in spec.dims)
        value = np.asarray(arrays[name])
        if value.shape != expected:
            raise BlockError(f"task {as_key_string(key)}: {name} has shape {value.shape}, expected {expected}")
        if value.dtype.kind == "f" and not spec.nan_means:
            with np.errstate(all="ignore"):
                if not np.isnan(np.add.reduce(value, axis=None)):
                    continue  # a NaN anywhere makes the sum NaN: no NaN here (fast path)
            bad = np.argwhere(np.isnan(value))
            if bad.size:
                cell = {d: _plain(coords[d][i]) for d, i in zip(spec.dims, bad[0], strict=True)}
                raise BlockError(
                    f"task {as_key_string(key)}: {name} is NaN at {cell} "
                    f"({len(bad)} NaN cells in the task); nothing was written"
                )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
