"""Random streams keyed by the run seed and a cell's coordinates only.

A stream never depends on where a cell sits in the block plan, so Monte Carlo
results are identical whatever the chunking, worker count or order.
"""

from __future__ import annotations

import hashlib

import numpy as np


def coordinate_key(value: object) -> int:
    """Map one coordinate value to a stable non-negative integer.

    Floats use their IEEE-754 bit pattern (so 0.1 and 0.1000000001 differ),
    integers are taken as they are, strings through BLAKE2b.
    """
    if isinstance(value, (str, np.str_)):
        digest = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little")
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return v if v >= 0 else (1 << 64) + v
    if isinstance(value, (float, np.floating)):
        return int(np.array(float(value), dtype=np.float64).view(np.uint64))
    raise TypeError(f"cannot key a random stream on {type(value).__name__} {value!r}")


def cell_rng(seed: int, *coordinates: object) -> np.random.Generator:
    """A PCG64 generator determined by ``seed`` and the given coordinate values."""
    key = tuple(coordinate_key(c) for c in coordinates)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))
