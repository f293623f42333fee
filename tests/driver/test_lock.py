"""One writer per store: a second run is refused while the first lives; a dead holder's lock
does not block."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers import emergence, start_emergence, wait_for, write_workflow
from tests.references import GOOD


@pytest.mark.slow
def test_second_writer_refused_while_first_runs(tmp_path):
    slow = GOOD + "[chunks]\nnoise_ratio = 1\nlearner = 1\nk = 1\nblocks_per_task = 1\n"
    wf = write_workflow(tmp_path, slow)
    out = tmp_path / "locked.zarr"
    lock = Path(f"{out}.lock")
    run = ("run", str(wf), "--out", str(out), "--workers", "1", "--no-progress")
    with start_emergence(*run, env={"EMERGENCE_FAULT": "delay=0.2"}) as first:
        wait_for(lock.exists, 60, f"the first run's lock {lock}", command=first)
        second = emergence(*run)
        assert second.returncode == 1
        assert "being written by another run" in second.stderr and second.stderr.count("\n") == 1
        first.send_signal(signal.SIGKILL)  # the lock stays behind, but its holder is dead
        first.finish(timeout=30)
    assert lock.exists()
    third = emergence(*run)
    assert third.returncode == 0, third.stderr
    assert not lock.exists()
