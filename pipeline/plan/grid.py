"""Axis specifications -> coordinate arrays, and the block plan over a grid.

A block's identity is its tuple of integer chunk indices, never float coordinates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

BlockKey = tuple[int, ...]

DEFAULT_BLOCK_CELLS = 1 << 20


def geom_axis(start: float, stop: float, num: int, integer: bool) -> np.ndarray:
    """``num`` geometrically spaced values from ``start`` to ``stop`` inclusive.

    Integer axes round to the nearest integer and drop repeats (order kept).
    """
    values = np.geomspace(start, stop, num)
    return _integerise(values) if integer else values


def linspace_axis(start: float, stop: float, num: int, integer: bool) -> np.ndarray:
    values = np.linspace(start, stop, num)
    return _integerise(values) if integer else values


def range_axis(start: int, stop: int, step: int = 1) -> np.ndarray:
    """Inclusive integer range ``start, start+step, ... <= stop``."""
    return np.arange(start, stop + 1, step, dtype=np.int64)


def _integerise(values: np.ndarray) -> np.ndarray:
    rounded = np.rint(values).astype(np.int64)
    _, first = np.unique(rounded, return_index=True)
    return rounded[np.sort(first)]


@dataclass(frozen=True)
class BlockPlan:
    """Regular chunking of a grid: ``chunks[i]`` cells per block along axis ``i``, and
    ``task_blocks[i]`` blocks per task (one Dask task computes and writes a task's blocks
    together; on disk they share one shard per variable and one done-mark)."""

    axes: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    task_blocks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.task_blocks:
            object.__setattr__(self, "task_blocks", (1,) * len(self.axes))

    @property
    def nblocks(self) -> tuple[int, ...]:
        return tuple(math.ceil(s / c) for s, c in zip(self.shape, self.chunks, strict=True))

    @property
    def total(self) -> int:
        return math.prod(self.nblocks)

    @property
    def cells(self) -> int:
        return math.prod(self.shape)

    @property
    def ntasks(self) -> tuple[int, ...]:
        return tuple(math.ceil(b / t) for b, t in zip(self.nblocks, self.task_blocks, strict=True))

    @property
    def tasks_total(self) -> int:
        return math.prod(self.ntasks)

    @property
    def shard(self) -> tuple[int, ...]:
        """Cells per task along every axis (the shard shape on disk)."""
        return tuple(c * t for c, t in zip(self.chunks, self.task_blocks, strict=True))

    @property
    def sharded(self) -> bool:
        return any(t > 1 for t in self.task_blocks)

    def keys(self) -> Iterator[BlockKey]:
        """Every block's key, in C order."""
        return itertools.product(*(range(n) for n in self.nblocks))

    def __iter__(self) -> Iterator[BlockKey]:
        return self.keys()

    def task_keys(self) -> Iterator[BlockKey]:
        return itertools.product(*(range(n) for n in self.ntasks))

    def slices(self, key: BlockKey) -> dict[str, slice]:
        """Integer slices of the block ``key`` along every axis."""
        return _slices(self.axes, key, self.chunks, self.shape)

    def task_slices(self, task: BlockKey) -> dict[str, slice]:
        """Integer slices of the cells of task ``task`` along every axis."""
        return _slices(self.axes, task, self.shard, self.shape)

    def task_block_count(self, task: BlockKey) -> int:
        """How many blocks task ``task`` holds (fewer at the far edges of the grid)."""
        return math.prod(min(t, n - i * t) for i, t, n in zip(task, self.task_blocks, self.nblocks, strict=True))

    def blocks_in(self, tasks: Iterable[BlockKey]) -> int:
        """How many blocks the given tasks hold together."""
        keys = np.array(list(tasks), dtype=np.int64).reshape(-1, len(self.axes))
        per = np.asarray(self.task_blocks, dtype=np.int64)
        counts = np.minimum(per, np.asarray(self.nblocks, dtype=np.int64) - keys * per)
        return int(np.prod(counts, axis=1).sum())

    def chunk_of(self, dims: tuple[str, ...]) -> tuple[int, ...]:
        """Chunk shape on disk for a variable with the given cube dims."""
        lookup = dict(zip(self.axes, self.chunks, strict=True))
        return tuple(lookup[d] for d in dims)

    def shard_of(self, dims: tuple[str, ...]) -> tuple[int, ...]:
        """Shard shape on disk for a variable with the given cube dims."""
        lookup = dict(zip(self.axes, self.shard, strict=True))
        return tuple(lookup[d] for d in dims)


def _slices(axes: tuple[str, ...], key: BlockKey, size: tuple[int, ...], shape: tuple[int, ...]) -> dict[str, slice]:
    return {axis: slice(i * c, min((i + 1) * c, s)) for axis, i, c, s in zip(axes, key, size, shape, strict=True)}


CostEstimate = Callable[[Mapping[str, slice]], float]
"""Estimated seconds (one core) to compute the cells of a rectangle of the grid."""

TARGET_BLOCK_SECONDS = 2.0
"""Default blocks are at most this costly: a lost worker loses little, and a few expensive
cells still spread over every worker."""
MIN_PARALLEL = 16
"""Below this many blocks (or tasks), a sweep worth more than ``MIN_PARALLEL * PARALLEL_SECONDS``
is split further, so that every worker of a laptop or a small cluster has work."""
PARALLEL_SECONDS = 0.05
TASK_SECONDS = 0.25
"""Blocks cheaper than this are grouped into tasks of about this cost: a Dask task, a shard
write and a done-mark cost milliseconds, more than a tiny block's kernel."""
SAMPLE_BLOCKS = 256


def plan_blocks(
    axes: tuple[str, ...],
    shape: tuple[int, ...],
    requested: Mapping[str, int],
    estimate: CostEstimate | None = None,
    max_blocks_per_task: int | None = None,
    max_cells: int = DEFAULT_BLOCK_CELLS,
    task_seconds: float = TASK_SECONDS,
) -> BlockPlan:
    """The block plan: requested chunk sizes kept; other axes filled from the last axis
    backwards up to the largest block that the cost ``estimate`` keeps within
    ``TARGET_BLOCK_SECONDS`` (and that leaves ``MIN_PARALLEL`` blocks when the sweep is worth
    splitting); cheap blocks grouped into tasks of about ``task_seconds`` (estimated seconds,
    default ``TASK_SECONDS``; at most ``max_blocks_per_task`` blocks, and never so few tasks
    that a sweep worth splitting leaves workers idle). Without an estimate, blocks of
    ``max_cells`` cells."""
    if estimate is None:
        return BlockPlan(axes, shape, _fill(shape, axes, requested, max_cells))
    total = estimate({a: slice(0, n) for a, n in zip(axes, shape, strict=True)})
    worth_splitting = total > MIN_PARALLEL * PARALLEL_SECONDS
    sizes = _fill(shape, axes, requested, max_cells)
    chosen = BlockPlan(axes, shape, sizes)
    biggest = max(_sampled_costs(chosen, estimate))
    while biggest > TARGET_BLOCK_SECONDS or (worth_splitting and chosen.total < MIN_PARALLEL):
        split = _cheapest_split(chosen, requested, estimate, biggest)
        if split is None:
            break  # no halving makes blocks cheaper: it would only repeat the work their cells share
        chosen, biggest = split
    mean = float(np.mean(_sampled_costs(chosen, estimate)))
    group = int(task_seconds / max(mean, 1e-9))
    if worth_splitting or chosen.total > MIN_PARALLEL:
        group = min(group, max(1, chosen.total // MIN_PARALLEL))
    if max_blocks_per_task is not None:
        group = min(group, max_blocks_per_task)
    task_blocks = _fill(chosen.nblocks, axes, {}, max(1, group))
    return BlockPlan(axes, shape, chosen.chunks, task_blocks)


SPLIT_GAIN = 0.9
"""A halving must bring the costliest block below this fraction of its cost to be worth it:
cells that share one expensive computation (an observed factorisation per horizon, shared by
every ``d`` and draw) are not split apart, which would repeat it in every block."""


def _cheapest_split(
    plan: BlockPlan, requested: Mapping[str, int], estimate: CostEstimate, biggest: float
) -> tuple[BlockPlan, float] | None:
    """The plan with one free axis's chunk halved that most reduces the costliest block (the
    earliest such axis among near-equal ones, so trailing axes stay whole), or ``None``."""
    trials: list[tuple[float, int, BlockPlan]] = []
    for i, axis in enumerate(plan.axes):
        if axis in requested or plan.chunks[i] == 1:
            continue
        chunks = list(plan.chunks)
        chunks[i] = -(-chunks[i] // 2)
        trial = BlockPlan(plan.axes, plan.shape, tuple(chunks))
        trials.append((max(_sampled_costs(trial, estimate)), i, trial))
    if not trials:
        return None
    best = min(cost for cost, _, _ in trials)
    if best > SPLIT_GAIN * biggest:
        return None
    cost, _, trial = min((t for t in trials if t[0] <= best * 1.05), key=lambda t: t[1])
    return trial, cost


def _fill(shape: tuple[int, ...], axes: tuple[str, ...], requested: Mapping[str, int], budget: int) -> tuple[int, ...]:
    """Sizes along each axis: requested ones, others taken whole from the last axis backwards
    while the product stays within ``budget``; the axis where it would overflow is split."""
    sizes = [0] * len(axes)
    for i, axis in enumerate(axes):
        if axis in requested:
            sizes[i] = min(int(requested[axis]), shape[i])
            budget = max(1, budget // sizes[i])
    for i in reversed(range(len(axes))):
        if sizes[i]:
            continue
        sizes[i] = max(1, min(shape[i], budget))
        budget = max(1, budget // sizes[i])
    return tuple(sizes)


def _sampled_costs(plan: BlockPlan, estimate: CostEstimate) -> list[float]:
    """Estimated seconds of every block, or of an evenly spaced sample of them."""
    flat = np.unique(np.linspace(0, plan.total - 1, min(plan.total, SAMPLE_BLOCKS)).astype(np.int64))
    keys = zip(*np.unravel_index(flat, plan.nblocks), strict=True)
    return [estimate(plan.slices(tuple(int(i) for i in k))) for k in keys]


def as_key_string(key: BlockKey) -> str:
    return ".".join(str(i) for i in key)
