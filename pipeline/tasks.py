"""The task body that runs on a worker: compute a block, check it, write it, mark it.

Also the fault-injection hooks the tests use to prove that a crash at any point
loses nothing and writes nothing false.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from pipeline import store
from pipeline.allocator import keep_block_memory
from pipeline.experiments import get_experiment
from pipeline.experiments.base import Settings, VariableSpec
from pipeline.grid import BlockKey, as_key_string

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
    keep_block_memory()
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
