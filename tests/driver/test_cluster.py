"""Real ``dask scheduler``/``dask worker`` processes: equality, worker loss, driver loss, the
README's recipe with a worker started in another folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from pipeline.plan.config import load_workflow
from tests.helpers import (
    REPO,
    assert_cubes_identical,
    comparable,
    done_count,
    emergence,
    run_quietly,
    start_emergence,
    wait_for,
    write_workflow,
)
from tests.processes import DaskProcesses

pytestmark = pytest.mark.slow

SWEEP = """
experiment = "hidden"
name = "sweep"
[grid]
lam = [0.95, 1.0]
noise_ratio = [0.5, 1.0, 2.0, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 8] }
T = [10, 1000, 100000]
[chunks]
blocks_per_task = 1
lam = 1
noise_ratio = 1
learner = 1
"""


@pytest.fixture
def processes(tmp_path):
    procs = DaskProcesses(tmp_path)
    procs.start_scheduler()
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "ref.zarr"
    run_quietly(SWEEP, out)
    return comparable(xr.open_zarr(out))


def test_sweep_through_scheduler_file_equals_local_run(processes, tmp_path, local_reference):
    processes.start_worker()
    processes.start_worker()
    processes.wait_for_workers(2)
    wf = write_workflow(tmp_path, SWEEP)
    out = tmp_path / "remote.zarr"
    result = emergence(
        "run", str(wf), "--out", str(out), "--scheduler-file", str(processes.scheduler_file), "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    xr.testing.assert_identical(comparable(xr.open_zarr(out)), local_reference)


def test_scheduler_from_environment_variable(processes, tmp_path, local_reference):
    processes.start_worker()
    processes.wait_for_workers(1)
    wf = write_workflow(tmp_path, SWEEP)
    out = tmp_path / "env.zarr"
    result = emergence(
        "run", str(wf), "--out", str(out), "--no-progress", env={"DASK_SCHEDULER_ADDRESS": processes.address}
    )
    assert result.returncode == 0, result.stderr
    assert processes.address.split("//")[1].split(":")[0] == "127.0.0.1"
    xr.testing.assert_identical(comparable(xr.open_zarr(out)), local_reference)


def test_sigkill_of_a_worker_mid_sweep_still_completes(processes, tmp_path, local_reference):
    slow = {"EMERGENCE_FAULT": "delay=0.25"}
    victim = processes.start_worker(env=slow)
    processes.start_worker(env=slow)
    processes.wait_for_workers(2)
    wf = write_workflow(tmp_path, SWEEP)
    out = tmp_path / "killed.zarr"
    with start_emergence(
        "run", str(wf), "--out", str(out), "--scheduler", processes.address, "--no-progress"
    ) as driver:
        wait_for(lambda: done_count(out) >= 3, 120, "3 blocks done", command=driver)
        assert done_count(out) < 16, "sweep finished before the worker could be killed"
        processes.kill(victim)
        result = driver.finish(timeout=180)
    assert result.returncode == 0, result.stderr
    assert "16/16 done" in result.stdout
    xr.testing.assert_identical(comparable(xr.open_zarr(out)), local_reference)


def test_driver_kill_then_rerun_recomputes_only_unfinished_blocks(processes, tmp_path, local_reference):
    processes.start_worker(env={"EMERGENCE_FAULT": "delay=0.3"})
    processes.wait_for_workers(1)
    wf = write_workflow(tmp_path, SWEEP)
    out = tmp_path / "driver.zarr"
    with start_emergence(
        "run", str(wf), "--out", str(out), "--scheduler", processes.address, "--no-progress"
    ) as driver:
        wait_for(lambda: done_count(out) >= 4, 120, "4 blocks done", command=driver)
        driver.signal_group(signal.SIGKILL)
        driver.finish(timeout=30)
    # The scheduler forgets the dead client's tasks, but a block already running on the
    # worker still finishes and marks itself done: count only once nothing runs any more.
    wait_for(processes.idle, 60, "the scheduler and its worker idle after the driver died", interval=0.5)
    partial = json.loads(emergence("info", str(out), "--format", "json").stdout)
    assert 4 <= partial["blocks_done"] < partial["blocks_total"] == 16
    rerun = emergence("run", str(wf), "--out", str(out), "--scheduler", processes.address, "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    remaining = 16 - partial["blocks_done"]
    assert f"resuming, {partial['blocks_done']}/16 blocks already done" in rerun.stdout
    assert f"computed {remaining} blocks" in rerun.stdout
    xr.testing.assert_identical(comparable(xr.open_zarr(out)), local_reference)


def _readme_cluster_runs() -> list[str]:
    """The ``emergence run`` lines of the README's recipe for a running scheduler."""
    section = (REPO / "README.md").read_text().split("## Running on a cluster")[1].split("\n## ")[0]
    lines = [
        line.split("#")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", section, re.S)
        for line in block.splitlines()
    ]
    assert "dask worker tcp://10.0.0.5:8786" in lines  # the worker the test starts elsewhere
    return [line for line in lines if "emergence run" in line and "--cluster" not in line]


def test_readme_recipe_with_a_worker_started_in_another_folder(processes, tmp_path):
    """Without --out the cube goes under the driver's folder, whatever the worker's folder."""
    elsewhere, project = tmp_path / "worker-home", tmp_path / "project"
    elsewhere.mkdir()
    shutil.copytree(REPO / "workflows", project / "workflows")
    processes.start_worker(cwd=elsewhere)
    processes.wait_for_workers(1)
    reference = tmp_path / "reference.zarr"
    run_quietly(load_workflow(REPO / "workflows" / "random_walk.toml"), reference)
    runs = _readme_cluster_runs()
    assert len(runs) == 3
    for line in runs:
        command = line.replace("tcp://10.0.0.5:8786", processes.address)
        command = command.replace("~/scheduler.json", str(processes.scheduler_file))
        shutil.rmtree(project / "data", ignore_errors=True)
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=240,
            env=dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"),
        )
        assert result.returncode == 0, (command, result.stderr)
        assert_cubes_identical(project / "data" / "random_walk.zarr", reference)
        assert list(elsewhere.iterdir()) == [], "the worker wrote into its own folder"
