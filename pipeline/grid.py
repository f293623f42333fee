"""Axis specifications -> coordinate arrays, and the block plan over a grid.

A block's identity is its tuple of integer chunk indices, never float coordinates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
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
    """Regular chunking of a grid: ``chunks[i]`` cells per block along axis ``i``."""

    axes: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]

    @property
    def nblocks(self) -> tuple[int, ...]:
        return tuple(math.ceil(s / c) for s, c in zip(self.shape, self.chunks, strict=True))

    @property
    def total(self) -> int:
        return math.prod(self.nblocks)

    @property
    def cells(self) -> int:
        return math.prod(self.shape)

    def keys(self) -> Iterator[BlockKey]:
        return itertools.product(*(range(n) for n in self.nblocks))

    def slices(self, key: BlockKey) -> dict[str, slice]:
        """Integer slices of the block ``key`` along every axis."""
        return {
            axis: slice(i * c, min((i + 1) * c, s))
            for axis, i, c, s in zip(self.axes, key, self.chunks, self.shape, strict=True)
        }

    def chunk_of(self, dims: tuple[str, ...]) -> tuple[int, ...]:
        """Chunk shape on disk for a variable with the given cube dims."""
        lookup = dict(zip(self.axes, self.chunks, strict=True))
        return tuple(lookup[d] for d in dims)


def plan_blocks(
    axes: tuple[str, ...],
    shape: tuple[int, ...],
    requested: Mapping[str, int],
    target_cells: int = DEFAULT_BLOCK_CELLS,
) -> BlockPlan:
    """Chunk sizes: the requested ones, others filled from the last axis backwards.

    Unrequested axes are taken whole from the innermost outwards while the block
    stays within ``target_cells``; the axis where it would overflow is split.
    """
    chunks = [0] * len(axes)
    budget = target_cells
    for i, axis in enumerate(axes):
        if axis in requested:
            chunks[i] = min(int(requested[axis]), shape[i])
            budget = max(1, budget // chunks[i])
    for i in reversed(range(len(axes))):
        if chunks[i]:
            continue
        chunks[i] = max(1, min(shape[i], budget))
        budget = max(1, budget // chunks[i])
    return BlockPlan(axes=axes, shape=shape, chunks=tuple(chunks))


def as_key_string(key: BlockKey) -> str:
    return ".".join(str(i) for i in key)
