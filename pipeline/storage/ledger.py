"""The done state of a cube, which resume trusts (never the presence of data).

The subgroup ``_blocks`` holds ``done``, one uint8 per task (chunks of one element: each
task's mark is its own one-byte object with one writer, the worker, written after the
task's data), and ``ledger``, one bit per task in a single object. The run's driver, which
holds the store's lock, folds the marks into the ledger now and then and at the end
(``compact_done``), so a finished cube of 10^5 tasks reads its done state with one object
read and one near-empty listing. Done = the ledger's tasks and the marks still listed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr

from pipeline.core.errors import UsageError
from pipeline.plan.grid import BlockKey, BlockPlan
from pipeline.storage.location import StoreLocation
from pipeline.storage.nodes import array, int_list, open_group, read_attrs, subgroup

DONE_GROUP = "_blocks"
LEDGER = "ledger"


def create_done_state(group: zarr.Group, plan: BlockPlan) -> None:
    """Create the empty done-marks and ledger of a new cube in its root ``group``."""
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


def keep_done_within(location: StoreLocation, plan: BlockPlan, complete_shape: tuple[int, ...]) -> None:
    """After a cube grew to ``plan``: keep done only the tasks inside ``complete_shape``
    (the region complete before), resize the marks to the new task grid and record it."""
    group = open_group(location)
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
