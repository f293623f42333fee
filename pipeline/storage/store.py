"""Zarr layout of a cube: template, region writes, done-marks, provenance.

A cube is a Zarr v3 group written by xarray (so ``xarray.open_zarr`` just works).
Result arrays are chunked by the block plan's blocks; when a task holds several blocks,
each variable's blocks of one task share one shard object (one writer per object).
The subgroup ``_blocks`` holds the done state, which resume trusts (never the presence of
data): ``done``, one uint8 per task (chunks of one element: each task's mark is its own
one-byte object with one writer, the worker, written after the task's data), and
``ledger``, one bit per task in a single object. The run's driver, which holds the store's
lock, folds the marks into the ledger now and then and at the end (``compact_done``), so a
finished cube of 10^5 tasks reads its done state with one object read and one near-empty
listing. Done = the ledger's tasks and the marks still listed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr
import zarr

from pipeline.core.errors import UsageError
from pipeline.core.types import AxisRule, VariableSpec
from pipeline.plan.grid import BlockKey, BlockPlan
from pipeline.storage.guard import OUTPUT_ATTR
from pipeline.storage.location import StoreLocation

DONE_GROUP = "_blocks"
LEDGER = "ledger"
FORMAT_VERSION = 2
"""2: theory stored as ``critical_d_theory``, ``emergence_output`` marker, ``history``."""
LIBRARIES = ("numpy", "scipy", "xarray", "zarr", "dask", "distributed")


def package_version() -> str:
    try:
        return metadata.version("emergence-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(
    workflow_text: str,
    fingerprint: str,
    base_fingerprint: str,
    experiment: str,
    plan: BlockPlan,
    workflow_file: str | None = None,
) -> dict[str, Any]:
    """Dataset attributes recording how a cube was made."""
    return {
        "title": f"emergence cube ({experiment})",
        OUTPUT_ATTR: "cube",
        "experiment": experiment,
        "workflow": workflow_text,
        "workflow_file": workflow_file or "",
        "workflow_fingerprint": fingerprint,
        "workflow_base_fingerprint": base_fingerprint,
        "block_chunks": json.dumps(dict(zip(plan.axes, plan.chunks, strict=True))),
        "blocks_total": plan.total,
        "tasks_total": plan.tasks_total,
        "package_version": package_version(),
        "git_commit": git_commit(),
        "library_versions": json.dumps(
            {lib: _version(lib) for lib in LIBRARIES} | {"python": platform.python_version()}
        ),
        "created": now(),
        "history": json.dumps([]),
        "cube_format": FORMAT_VERSION,
        "Conventions": "CF-1.10",
    }


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def history_entry(event: str, cells_before: int, cells_after: int) -> dict[str, Any]:
    """One entry of a cube's ``history`` attribute (JSON list): what changed, when, by which code."""
    return {
        "event": event,
        "when": now(),
        "cells_before": cells_before,
        "cells_after": cells_after,
        "git_commit": git_commit(),
        "package_version": package_version(),
    }


def _version(lib: str) -> str:
    try:
        return metadata.version(lib)
    except metadata.PackageNotFoundError:
        return "absent"


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
    for name, spec in variables.items():
        shape = tuple(len(coords[d]) for d in spec.dims)
        chunks = plan.chunk_of(spec.dims)
        data = da.full(shape, _fill(spec.dtype), dtype=spec.dtype, chunks=plan.shard_of(spec.dims))
        var_attrs = {"long_name": spec.long_name, "units": spec.units}
        if spec.description:
            var_attrs["description"] = spec.description
        ds[name] = xr.Variable(spec.dims, data, var_attrs)
        encoding[name] = {"chunks": chunks, "compressors": result_compressors(spec.dtype)}
        if plan.sharded:
            encoding[name]["shards"] = plan.shard_of(spec.dims)
        if np.dtype(spec.dtype).kind == "f":
            encoding[name]["_FillValue"] = np.nan
    ds.attrs.update(attrs)
    return ds, encoding


def create_cube(location: StoreLocation, ds: xr.Dataset, encoding: Mapping[str, Any], plan: BlockPlan) -> None:
    """Write metadata, coordinates, static variables and the empty done-mark array.

    Result arrays stay unwritten (their chunks are filled block by block). The caller
    has checked (``guard.check_target``) that nothing but an empty folder is here.
    """
    ds.to_zarr(
        location.zarr_store(), mode="w", compute=False, consolidated=False, zarr_format=3, encoding=dict(encoding)
    )
    group = open_group(location)
    blocks = group.create_group(
        DONE_GROUP,
        attributes={
            "description": "1 where every block of the task is computed and written",
            "axes": list(plan.axes),
            "chunks": list(plan.chunks),
            "task_blocks": list(plan.task_blocks),
        },
    )
    blocks.create_array(
        "done",
        shape=plan.ntasks,
        chunks=(1,) * len(plan.axes),
        dtype="uint8",
        fill_value=0,
        compressors=None,
        dimension_names=[f"task_{a}" for a in plan.axes],
        chunk_key_encoding={"name": "default", "separator": "."},
    )  # marks side by side
    nbytes = math.ceil(plan.tasks_total / 8)
    blocks.create_array(
        LEDGER,
        shape=(nbytes,),
        chunks=(max(1, nbytes),),
        dtype="uint8",
        fill_value=0,
        dimension_names=["task_bits"],
        attributes={"description": "bit i (numpy packbits order) set: task i (C order) done"},
    )
    consolidate(location)


def consolidate(location: StoreLocation) -> None:
    """Consolidate metadata so a plain ``xarray.open_zarr`` opens the cube quietly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(location.zarr_store(), zarr_format=3)


def open_group(location: StoreLocation, mode: Literal["r", "r+", "a", "w", "w-"] = "r+") -> zarr.Group:
    return zarr.open_group(location.zarr_store(), mode=mode, zarr_format=3, use_consolidated=False)


def array(group: zarr.Group, path: str) -> zarr.Array[Any]:
    """The array at ``path`` in ``group`` (TypeError if a group stands there)."""
    node = group[path]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{path!r} is a group, not an array")
    return node


def subgroup(group: zarr.Group, path: str) -> zarr.Group:
    """The group at ``path`` in ``group`` (TypeError if an array stands there)."""
    node = group[path]
    if not isinstance(node, zarr.Group):
        raise TypeError(f"{path!r} is an array, not a group")
    return node


def int_list(value: object, default: list[int]) -> list[int]:
    """A JSON attribute holding a list of integers (``default`` if absent)."""
    if value is None:
        return default
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of integers, got {value!r}")
    return [int(v) for v in value]


def write_task(
    group: Mapping[str, Any],
    task: BlockKey,
    slices: Mapping[str, slice],
    arrays: Mapping[str, np.ndarray],
    variables: Mapping[str, VariableSpec],
) -> list[str]:
    """Write one region of a task into every variable the task owns.

    A variable whose dims omit an axis (e.g. ``bounded`` has no ``T``) is written only by
    the tasks at index 0 along the omitted axes, so every shard has exactly one writer.
    Returns the names written.
    """
    axes = list(slices)
    written = []
    for name, spec in variables.items():
        omitted = [i for i, a in enumerate(axes) if a not in spec.dims]
        if any(task[i] != 0 for i in omitted):
            continue
        group[name][tuple(slices[d] for d in spec.dims)] = arrays[name]
        written.append(name)
    return written


def mark_done(group: Mapping[str, Any], task: BlockKey) -> None:
    """Record that task ``task`` is fully written (call only after ``write_task``)."""
    group[f"{DONE_GROUP}/done"][task] = 1


def _done_array(location: StoreLocation) -> zarr.Array[Any]:
    try:
        done = array(open_group(location, mode="r"), f"{DONE_GROUP}/done")
    except Exception as exc:  # missing or unreadable: the store cannot say what is done
        raise UsageError(
            f"store {location.url!r}: metadata is corrupt or incomplete (no readable done-marks: "
            f"{type(exc).__name__}); pass --overwrite to rebuild it"
        ) from None
    return done


def done_tasks(location: StoreLocation) -> set[BlockKey]:
    """The tasks done: the marks listed (no mark is read), then the ledger (in this order,
    so a compaction between the two can hide no task)."""
    marks = _mark_paths(location, paths=False)
    return set(marks) | read_ledger(location)


def _mark_paths(location: StoreLocation, paths: bool = True) -> dict[BlockKey, str]:
    """The marks still standing, by task, with their paths.

    Marks are ``_blocks/done/c.<i>.<j>...`` side by side (cubes of the first format nest
    them as ``c/<i>/<j>/...``); a mark exists only once wholly written (local writes go
    through a renamed temporary file, object stores put whole objects)."""
    done = _done_array(location)
    nested = getattr(getattr(done.metadata, "chunk_key_encoding", None), "separator", "/") == "/"
    fs, root = location.fs()
    folder = f"{root}/{DONE_GROUP}/done"
    if location.is_local:
        found = _scan_nested(f"{folder}/c", done.ndim) if nested else _scan_flat(folder, done.ndim)
        sep = "/" if nested else "."
        return {k: (f"{folder}/c{sep}" + sep.join(map(str, k))) if paths else "" for k in found}
    fs.invalidate_cache(folder)
    try:
        listed = fs.find(f"{folder}/c/" if nested else folder, detail=True)
    except FileNotFoundError:
        return {}
    out = {}
    for path, info in listed.items():
        name = path[len(folder) + 1 :]
        key = name[2:].split("/" if nested else ".") if name.startswith("c/" if nested else "c.") else []
        if len(key) == done.ndim and info.get("size", 0) > 0 and all(k.isdigit() for k in key):
            out[tuple(int(k) for k in key)] = path
    return out


def read_ledger(location: StoreLocation) -> set[BlockKey]:
    """The tasks folded into the ledger (none for cubes that have no ledger)."""
    blocks = subgroup(open_group(location, mode="r"), DONE_GROUP)
    if LEDGER not in blocks:
        return set()
    ntasks = _done_array(location).shape
    bits = np.unpackbits(np.asarray(array(blocks, LEDGER)[...], dtype=np.uint8))[: math.prod(ntasks)]
    return {tuple(int(i) for i in k) for k in zip(*np.unravel_index(np.flatnonzero(bits), ntasks), strict=True)}


def write_ledger(location: StoreLocation, tasks: set[BlockKey], ntasks: tuple[int, ...]) -> None:
    """Replace the ledger (one object) by ``tasks`` over a task grid of ``ntasks``."""
    blocks = subgroup(open_group(location), DONE_GROUP)
    bits = np.zeros(math.prod(ntasks), dtype=np.uint8)
    if tasks:
        bits[np.ravel_multi_index(np.array(sorted(tasks)).T, ntasks)] = 1
    packed = np.packbits(bits)
    ledger = array(blocks, LEDGER)
    if ledger.shape != packed.shape:
        ledger.resize(packed.shape)  # one chunk spans the ledger: resize keeps the chunk shape
    ledger[...] = packed


def compact_done(location: StoreLocation) -> int:
    """Fold the standing marks into the ledger, then remove those marks (only the store's
    lock holder calls this). Returns the number of tasks done."""
    blocks = subgroup(open_group(location, mode="r"), DONE_GROUP)
    if LEDGER not in blocks:
        return len(done_tasks(location))
    marks = _mark_paths(location)
    done = set(marks) | read_ledger(location)
    if marks:
        write_ledger(location, done, _done_array(location).shape)
        location.fs()[0].rm(sorted(marks.values()))
    return len(done)


def _scan_nested(folder: str, ndim: int) -> set[BlockKey]:
    """Local marks of the first format: the files of the nested chunk folders."""
    out: set[BlockKey] = set()
    stack: list[tuple[str, tuple[int, ...]]] = [(folder, ())]
    while stack:
        path, key = stack.pop()
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not entry.name.isdigit():
                continue
            index = (*key, int(entry.name))
            if len(index) < ndim and entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, index))
            elif len(index) == ndim and entry.is_file(follow_symlinks=False):
                out.add(index)
    return out


def _scan_flat(folder: str, ndim: int) -> set[BlockKey]:
    """Local marks side by side: one ``scandir`` (10^5 marks in ~0.1 s)."""
    out: set[BlockKey] = set()
    try:
        names = [e.name for e in os.scandir(folder)]
    except FileNotFoundError:
        return out
    for name in names:
        if name.startswith("c."):
            key = name[2:].split(".")
            if len(key) == ndim and all(map(str.isdigit, key)):
                out.add(tuple(map(int, key)))
    return out


def task_blocks(location: StoreLocation) -> tuple[int, ...]:
    """Blocks per task along every axis (one for cubes written before tasks grouped blocks)."""
    done = _done_array(location)
    blocks = subgroup(open_group(location, mode="r"), DONE_GROUP)
    return tuple(int_list(blocks.attrs.get("task_blocks"), [1] * done.ndim))


def count_done(location: StoreLocation, plan: BlockPlan | None = None) -> int:
    """How many blocks are done (blocks of done tasks)."""
    tasks = done_tasks(location)
    if plan is None:
        plan = stored_plan(location)
    return plan.blocks_in(tasks)


def stored_plan(location: StoreLocation) -> BlockPlan:
    """The block plan recorded in a cube (its axes and their current lengths)."""
    attrs = read_attrs(location)
    chunks = json.loads(attrs["block_chunks"])
    group = open_group(location, mode="r")
    axes = tuple(chunks)
    return BlockPlan(
        axes,
        tuple(int(array(group, a).shape[0]) for a in axes),
        tuple(int(chunks[a]) for a in axes),
        task_blocks(location),
    )


def done_marks(location: StoreLocation) -> np.ndarray:
    """Boolean over the plan's blocks: the blocks of done tasks."""
    plan = stored_plan(location)
    marks = np.zeros(plan.ntasks, dtype=bool)
    for task in done_tasks(location):
        marks[task] = True
    for axis, t in enumerate(plan.task_blocks):
        marks = np.repeat(marks, t, axis=axis)
    return marks[tuple(slice(0, n) for n in plan.nblocks)]


def complete_shape(location: StoreLocation) -> tuple[int, ...]:
    """The region known complete before the cube's latest extension (zeros if never extended)."""
    done = _done_array(location)
    return tuple(int_list(done.attrs.get("complete_shape"), [0] * done.ndim))


def read_attrs(location: StoreLocation) -> dict[str, Any]:
    """Root attributes of a cube; UsageError if the path holds no readable cube."""
    if not location.exists():
        raise UsageError(f"{location.url!r} is not an emergence cube (no zarr.json)")
    try:
        attrs = dict(open_group(location, mode="r").attrs)
    except Exception as exc:  # zarr raises many types for corrupt metadata
        raise UsageError(f"{location.url!r}: cube metadata is unreadable ({type(exc).__name__}: {exc})") from None
    if "workflow_fingerprint" not in attrs:
        raise UsageError(f"{location.url!r} is a Zarr group but not an emergence cube (no workflow_fingerprint)")
    return attrs


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
    for name, spec in variables.items():
        array(group, name).resize(tuple(len(coords[d]) for d in spec.dims))
    done = array(group, f"{DONE_GROUP}/done")
    finished = done_tasks(location)
    marks = _mark_paths(location)
    if marks:
        location.fs()[0].rm(sorted(marks.values()))
    done.resize(plan.ntasks)
    kept = {
        task
        for task in finished
        if all(s.stop <= n for s, n in zip(plan.task_slices(task).values(), complete_shape, strict=True))
    }
    if LEDGER in subgroup(group, DONE_GROUP):
        write_ledger(location, kept, plan.ntasks)
    else:
        for task in kept:  # cubes of the first format: marks only
            done[task] = 1
    done.attrs["complete_shape"] = list(complete_shape)
    history = json.loads(str(group.attrs.get("history", "[]")))
    history.append(history_entry("extend", math.prod(complete_shape), plan.cells))
    group.attrs.update(dict(attrs) | {"history": json.dumps(history)})
    consolidate(location)
