"""Zarr layout of a cube: the template, its creation, region writes of a task, growth.

A cube is a Zarr v3 group written by xarray (so ``xarray.open_zarr`` just works).
Result arrays are chunked by the block plan's blocks; when a task holds several blocks,
each variable's blocks of one task share one shard object (one writer per object).
Its done state lives in ``_blocks`` (:mod:`pipeline.storage.ledger`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from pipeline.core.errors import UsageError
from pipeline.core.types import AxisRule, VariableSpec
from pipeline.plan.grid import BlockKey, BlockPlan
from pipeline.storage import ledger
from pipeline.storage.location import StoreLocation
from pipeline.storage.nodes import array, consolidate, open_group
from pipeline.storage.provenance import history_entry


def _fill(dtype: str) -> Any:
    return {"f": np.nan, "b": False, "i": 0}[np.dtype(dtype).kind]


def result_compressors(dtype: str) -> tuple[Any, ...]:
    """Codec of the blocked result variables: none.

    Risk-like float64 values have nearly full-entropy mantissas: Zstd level 1 keeps
    ~0.93-0.96 of the raw size yet doubles the cost of writing a block, which is
    already as large as computing it (hidden kernel ~0.16 s vs Zstd-1 write ~0.15 s
    vs raw write ~0.06 s per 2^20-cell block; benchmarks/, issue 6). Chunks that are
    entirely fill (e.g. observed cells with d > family_dim) are not stored at all.
    """
    return ()


def template(
    coords: Mapping[str, np.ndarray],
    axis_rules: Mapping[str, AxisRule],
    static: xr.Dataset,
    variables: Mapping[str, VariableSpec],
    plan: BlockPlan,
    attrs: Mapping[str, Any],
) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """The lazy cube (dask-backed result variables) and its Zarr encoding."""
    import dask.array as da

    ds = static.copy()
    for axis in plan.axes:
        values = coords[axis]
        if values.dtype == object:
            values = np.array([str(v) for v in values], dtype=object)
        rule = axis_rules[axis]
        ds = ds.assign_coords({axis: (axis, values, {"long_name": rule.long_name, "units": rule.units})})
    encoding: dict[str, dict[str, Any]] = {}
    sizes = variable_sizes(coords, static)
    for name, spec in variables.items():
        shape = tuple(sizes[d] for d in spec.dims)
        chunks = _blocked(plan.axes, plan.chunks, spec.dims, sizes)
        shards = _blocked(plan.axes, plan.shard, spec.dims, sizes)
        data = da.full(shape, _fill(spec.dtype), dtype=spec.dtype, chunks=shards)
        var_attrs = {"long_name": spec.long_name, "units": spec.units}
        if spec.description:
            var_attrs["description"] = spec.description
        ds[name] = xr.Variable(spec.dims, data, var_attrs)
        encoding[name] = {"chunks": chunks, "compressors": result_compressors(spec.dtype)}
        if plan.sharded:
            encoding[name]["shards"] = shards
        if np.dtype(spec.dtype).kind == "f":
            encoding[name]["_FillValue"] = np.nan
    ds.attrs.update(attrs)
    return ds, encoding


def variable_sizes(coords: Mapping[str, np.ndarray], static: xr.Dataset) -> dict[str, int]:
    """Length of every dim a result variable may have: the grid axes, and the static part's
    dims (a variable's inner dims, whole in every block)."""
    return {**{str(d): int(n) for d, n in static.sizes.items()}, **{a: len(v) for a, v in coords.items()}}


def _blocked(
    axes: tuple[str, ...], per_axis: tuple[int, ...], dims: tuple[str, ...], sizes: Mapping[str, int]
) -> tuple[int, ...]:
    """Chunk (or shard) shape of a variable: the plan's along grid axes, whole along inner dims."""
    lookup = dict(zip(axes, per_axis, strict=True))
    return tuple(lookup.get(d, sizes[d]) for d in dims)


def create_cube(location: StoreLocation, ds: xr.Dataset, encoding: Mapping[str, Any], plan: BlockPlan) -> None:
    """Write metadata, coordinates, static variables and the empty done-mark array.

    Result arrays stay unwritten (their chunks are filled block by block). The caller
    has checked (``guard.check_target``) that nothing but an empty folder is here.
    """
    ds.to_zarr(
        location.zarr_store(), mode="w", compute=False, consolidated=False, zarr_format=3, encoding=dict(encoding)
    )
    ledger.create_done_state(open_group(location), plan)
    consolidate(location)


def write_task(
    group: Mapping[str, Any],
    task: BlockKey,
    slices: Mapping[str, slice],
    arrays: Mapping[str, np.ndarray],
    variables: Mapping[str, VariableSpec],
) -> list[str]:
    """Write one region of a task into every variable the task owns.

    A variable whose dims omit an axis (e.g. ``bounded`` has no ``T``) is written only by
    the tasks at index 0 along the omitted axes, so every shard has exactly one writer;
    inner dims (no grid axis) are written whole.
    Returns the names written.
    """
    axes = list(slices)
    written = []
    for name, spec in variables.items():
        omitted = [i for i, a in enumerate(axes) if a not in spec.dims]
        if any(task[i] != 0 for i in omitted):
            continue
        group[name][tuple(slices.get(d, slice(None)) for d in spec.dims)] = arrays[name]
        written.append(name)
    return written


def open_dataset(location: StoreLocation, *, dask: bool = True) -> xr.Dataset:
    """The store as xarray opens it, complete or not (readers use ``cubes.open_cube``,
    which checks completeness; ``dask=False`` spares a worker the ~1 s import of
    ``dask.array``)."""
    if not dask:
        return xr.open_zarr(location.zarr_store(), consolidated=True, zarr_format=3, chunks=None)
    return xr.open_zarr(location.zarr_store(), consolidated=True, zarr_format=3)


def grow_cube(
    location: StoreLocation,
    coords: Mapping[str, np.ndarray],
    static: xr.Dataset,
    variables: Mapping[str, VariableSpec],
    plan: BlockPlan,
    complete_shape: tuple[int, ...],
    attrs: Mapping[str, Any],
) -> None:
    """Resize a cube to larger axes (old values first), rewrite coordinates and static
    variables, and clear the done-marks of blocks that reach outside ``complete_shape``.

    The root attributes (workflow, fingerprint) are written last, so an interrupted
    extension is detected as a shape mismatch rather than silently mixed.
    """
    group = open_group(location)
    for axis in plan.axes:
        values = coords[axis]
        array(group, axis).resize((len(values),))
        array(group, axis)[:] = np.array([str(v) for v in values], dtype=object) if values.dtype == object else values
    for name, var in static.variables.items():
        if name in plan.axes:
            continue
        if str(name) not in group:
            raise UsageError(f"--extend: the cube has no static variable {name!r}; rebuild it with --overwrite")
        array(group, str(name)).resize(var.shape)
        array(group, str(name))[...] = var.values
    sizes = variable_sizes(coords, static)
    for name, spec in variables.items():
        array(group, name).resize(tuple(sizes[d] for d in spec.dims))
    ledger.keep_done_within(location, plan, complete_shape)
    history = json.loads(str(group.attrs.get("history", "[]")))
    history.append(history_entry("extend", math.prod(complete_shape), plan.cells))
    group.attrs.update(dict(attrs) | {"history": json.dumps(history)})
    consolidate(location)
