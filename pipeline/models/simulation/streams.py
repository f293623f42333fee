"""Random streams keyed by the run seed and plain values, and the fixed cuts of a simulation.

A stream never depends on where a cell sits in the block plan, so Monte Carlo results are
identical whatever the chunking, worker count or order.

* **Keys.** :func:`cell_rng` is a PCG64 generator determined by the seed and plain values
  (str, int, float; :func:`coordinate_key`).
* **Trajectory batches.** :func:`trajectory_batches` cuts ``samples`` trajectories into
  batches with one stream each (the best-learner Monte Carlo of every experiment).
* **Time blocks.** Noise is drawn in fixed blocks of ``chunk`` steps from ``t = 0``
  (:func:`time_blocks`), so a horizon ``T`` consumes only a prefix of a stream: the
  trajectory up to ``T`` is the prefix of any longer one. :func:`block_normals` draws one
  time block from one generator or from one generator per trajectory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "Batch",
    "Streams",
    "block_normals",
    "cell_rng",
    "coordinate_key",
    "time_blocks",
    "trajectory_batches",
]

FloatArray = npt.NDArray[np.float64]

Streams = np.random.Generator | Sequence[np.random.Generator]
"""One generator for a batch of trajectories, or one generator per trajectory."""


def coordinate_key(value: object) -> int:
    """Map one coordinate value to a stable non-negative integer.

    Floats use their IEEE-754 bit pattern (so 0.1 and 0.1000000001 differ),
    integers are taken as they are, strings through BLAKE2b.
    """
    if isinstance(value, (str, np.str_)):
        return _string_key(str(value))
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return v if v >= 0 else (1 << 64) + v
    if isinstance(value, (float, np.floating)):
        return int(np.array(float(value), dtype=np.float64).view(np.uint64))
    raise TypeError(f"cannot key a random stream on {type(value).__name__} {value!r}")


@lru_cache(maxsize=4096)
def _string_key(text: str) -> int:
    """BLAKE2b (8 bytes, little-endian) of the UTF-8 text (cached: spectra key every stream)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def cell_rng(seed: int, *coordinates: object) -> np.random.Generator:
    """A PCG64 generator determined by ``seed`` and the given coordinate values."""
    key = tuple(coordinate_key(c) for c in coordinates)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


@dataclass(frozen=True)
class Batch:
    """Trajectories ``start .. start + size - 1`` of a sample, drawn from one stream ``rng``
    (keyed by the sample's key and ``index``)."""

    index: int
    start: int
    size: int
    rng: np.random.Generator


def trajectory_batches(seed: int, key: tuple[object, ...], samples: int, size: int) -> Iterator[Batch]:
    """``samples`` trajectories in batches of ``size`` (the last may be smaller); batch ``b``
    draws from ``cell_rng(seed, *key, b)``. ``key`` holds plain values (str, int, float)."""
    for index in range(-(-int(samples) // int(size))):
        start = index * size
        yield Batch(index, start, min(size, samples - start), cell_rng(seed, *key, index))


def time_blocks(n_steps: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of the fixed blocks of ``chunk`` steps covering times ``0 .. n_steps - 1``
    (the last block may be shorter)."""
    for start in range(0, int(n_steps), int(chunk)):
        yield start, min(start + chunk, n_steps)


def block_normals(streams: Streams, steps: int, shape: tuple[int, ...], axis: int) -> FloatArray:
    """Standard normals for one time block: ``(steps, *shape)`` from one generator, or, from
    one generator per trajectory, each trajectory's ``(steps, *shape without axis)`` placed at
    index ``i`` of ``axis`` (the trajectory axis of ``shape``)."""
    if isinstance(streams, np.random.Generator):
        out: FloatArray = streams.standard_normal((steps, *shape))
        return out
    own = (steps, *shape[:axis], *shape[axis + 1 :])
    return np.stack([rng.standard_normal(own) for rng in streams], axis=axis + 1)
