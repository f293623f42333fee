"""glibc malloc settings for a process that computes blocks.

A block's kernel allocates a few dozen numpy arrays of block size (8 MiB at the
default 2^20 cells) and frees them again. With glibc's defaults those come from
fresh ``mmap`` calls or from heap top that is trimmed back after every block, so
every block faults its pages in anew: ~56,000 minor page faults per 10^7 cells, and
the kernels run 10-30% slower than with the memory kept for reuse (benchmarks/,
issue 6). Dask's nanny makes it worse by exporting ``MALLOC_TRIM_THRESHOLD_=65536``.

``keep_block_memory`` raises the mmap threshold above a block's arrays and the trim
threshold above a block's working set, at run time (``mallopt``), so it works for
every kind of worker (local, ``dask worker``, batch jobs) whatever its environment.
Elsewhere (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
"""Arrays below this come from the heap: glibc's documented maximum on 64-bit."""
TRIM_THRESHOLD_BYTES = 256 * 2**20
"""Freed heap memory up to this much is kept for the next block instead of returned."""

_done: bool | None = None


def keep_block_memory() -> bool:
    """Apply the settings once per process. Returns True where glibc accepted them."""
    global _done
    if _done is None:
        _done = _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    return _done


def _mallopt(param: int, value: int) -> bool:
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt(param, value) == 1
