"""Object storage end to end: a local S3-compatible server (moto) on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import xarray as xr

from tests.helpers import REPO, assert_cubes_identical, done_count, emergence, run_quietly, write_workflow
from tests.processes import loopback_s3

pytestmark = pytest.mark.slow

WORKFLOW = """
experiment = "hidden"
name = "s3"
[grid]
lam = [1.0]
noise_ratio = [0.5, 1.0, 2.0, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 4] }
T = [10, 1000]
[chunks]
blocks_per_task = 1
noise_ratio = 1
learner = 1
"""


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server process on 127.0.0.1 and the environment that points at it."""
    with loopback_s3() as env:
        yield env


def test_s3_run_kill_resume_equals_local(s3_env, tmp_path):
    wf = write_workflow(tmp_path, WORKFLOW)
    url = "s3://cubes/resume.zarr"
    driver = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", str(wf), "--out", url, "--workers", "1", "--no-progress"],
        cwd=REPO,
        env=dict(os.environ, EMERGENCE_FAULT="delay=0.3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while done_count(url) < 2 and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    time.sleep(1.0)
    partial = json.loads(emergence("info", url, "--format", "json").stdout)
    assert 2 <= partial["blocks_done"] < partial["blocks_total"] == 8
    rerun = emergence("run", str(wf), "--out", url, "--workers", "1", "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert f"computed {8 - partial['blocks_done']} blocks" in rerun.stdout
    again = emergence("run", str(wf), "--out", url, "--workers", "1", "--no-progress")
    assert "nothing to do" in again.stdout
    local = tmp_path / "local.zarr"
    run_quietly(WORKFLOW, local)
    assert_cubes_identical(xr.open_zarr(url), xr.open_zarr(local))
