"""Object storage end to end: a local S3-compatible server (moto) on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from tests.helpers import REPO, assert_cubes_identical, done_count, emergence, run_quietly, write_workflow

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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import s3fs

        deadline = time.time() + 30
        while True:
            try:
                s3fs.S3FileSystem(skip_instance_cache=True).mkdir("cubes")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


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
