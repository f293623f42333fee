"""One writer per store: a second run is refused while the first lives; a dead holder's lock
does not block."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, emergence, write_workflow
from tests.plan.test_config import GOOD


@pytest.mark.slow
def test_second_writer_refused_while_first_runs(tmp_path):
    slow = GOOD + "[chunks]\nnoise_ratio = 1\nlearner = 1\nk = 1\nblocks_per_task = 1\n"
    wf = write_workflow(tmp_path, slow)
    out = tmp_path / "locked.zarr"
    first = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", str(wf), "--out", str(out), "--workers", "1", "--no-progress"],
        cwd=REPO,
        env=dict(os.environ, EMERGENCE_FAULT="delay=0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not Path(f"{out}.lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    second = emergence("run", str(wf), "--out", str(out), "--workers", "1", "--no-progress")
    assert second.returncode == 1
    assert "being written by another run" in second.stderr and second.stderr.count("\n") == 1
    first.kill()  # SIGKILL: the lock stays behind, but its holder is dead
    first.wait()
    assert Path(f"{out}.lock").exists()
    third = emergence("run", str(wf), "--out", str(out), "--workers", "1", "--no-progress")
    assert third.returncode == 0, third.stderr
    assert not Path(f"{out}.lock").exists()
