"""``pipeline.worker.allocator``: block-sized arrays are reused instead of faulted in afresh."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

ALLOCATE_BLOCKS = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from pipeline.worker.allocator import keep_block_memory
    assert keep_block_memory()
n = 2**20  # one default block of float64
for _ in range(3):  # warm up: the first arrays fault in whatever the settings
    [np.full(n, 1.0) for _ in range(6)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # the pattern of a block kernel: several block-sized temporaries, freed
    arrays = [np.full(n, float(i)) for i in range(6)]
    del arrays
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, env_extra: dict[str, str]) -> int:
    import os

    env = {**os.environ, **env_extra}
    out = subprocess.run(
        [sys.executable, "-c", ALLOCATE_BLOCKS, mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(out.stdout.strip())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_block_arrays_are_reused_even_under_dasks_trim_threshold():
    # Dask's nanny exports this to every worker it spawns
    nanny_env = {"MALLOC_TRIM_THRESHOLD_": "65536"}
    default = _faults("default", nanny_env)
    tuned = _faults("tuned", nanny_env)
    rounds_pages = 20 * 6 * 2**20 * 8 // 4096
    assert default > rounds_pages // 10  # every round faults its arrays in again (some as huge pages)
    assert tuned < default // 20  # the warm-up's memory serves every later round


def test_keep_block_memory_is_idempotent():
    from pipeline.worker.allocator import keep_block_memory

    first = keep_block_memory()
    assert keep_block_memory() is first
    if sys.platform.startswith("linux"):
        assert first is True
