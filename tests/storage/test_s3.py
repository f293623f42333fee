"""Object storage end to end: a local S3-compatible server (moto) on loopback."""

from __future__ import annotations

import json
import re
import signal

import psutil
import pytest
import xarray as xr

from tests.helpers import (
    assert_cubes_identical,
    done_count,
    emergence,
    run_quietly,
    start_emergence,
    wait_for,
    write_workflow,
)
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
    run = ("run", str(wf), "--out", url, "--workers", "1", "--no-progress")
    with start_emergence(*run, env={"EMERGENCE_FAULT": "delay=0.3"}) as driver:
        wait_for(lambda: done_count(url) >= 2, 120, "2 blocks done", command=driver)
        session = psutil.Process(driver.pid).children(recursive=True)  # forkserver, its worker, resource tracker
        driver.signal_group(signal.SIGKILL)
        driver.finish(timeout=30)
    _, alive = psutil.wait_procs(session, timeout=30)  # none of them writes any more
    assert not alive, f"processes outlived the killed session: {alive}"
    partial = json.loads(emergence("info", url, "--format", "json").stdout)
    assert 2 <= partial["blocks_done"] < partial["blocks_total"] == 8
    rerun = emergence(*run)
    assert rerun.returncode == 0, rerun.stderr
    # A write the killed worker had fully sent may still land on the server after `info`
    # read the store; what the rerun found done is what it must not recompute.
    resumed = re.search(r"resuming, (\d+)/8 blocks already done", rerun.stdout)
    assert resumed, rerun.stdout
    before = int(resumed.group(1))
    assert partial["blocks_done"] <= before < 8
    assert f"computed {8 - before} blocks" in rerun.stdout
    again = emergence(*run)
    assert "nothing to do" in again.stdout
    local = tmp_path / "local.zarr"
    run_quietly(WORKFLOW, local)
    assert_cubes_identical(xr.open_zarr(url), xr.open_zarr(local))
