"""A real single-node Slurm (``.ci/slurm-up``): sweeps through ``--cluster slurm``.

Workers are dask-jobqueue batch jobs on 127.0.0.1 running this venv's Python. Without a
usable Slurm the tests skip with the reason (``.ci/slurm-up`` writes it to its status file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import xarray as xr

from tests.helpers import comparable, done_count, emergence, run_quietly, start_emergence, wait_for, write_workflow

pytestmark = pytest.mark.slow

STATUS = Path(os.environ.get("EMERGENCE_SLURM_DIR", "/tmp/emergence-slurm")) / "status"
SWEEP = """
experiment = "hidden"
name = "slurm"
[grid]
lam = [0.95, 1.0]
noise_ratio = [0.5, 1.0, 2.0, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 4] }
T = [10, 1000]
[chunks]
lam = 1
noise_ratio = 1
learner = 1
k = 2
blocks_per_task = 1
"""
BLOCKS = 32


def _slurm_unusable() -> str | None:
    reason = _probe()
    status = STATUS.read_text().strip() if reason and STATUS.exists() else ""
    return f".ci/slurm-up: {status[5:].strip()}" if status.startswith("down:") else reason


def _probe() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm is not installed (run .ci/slurm-up as root)"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if states.returncode != 0:
        return f"sinfo failed: {states.stderr.strip()[:200]}"
    if not {"idle", "mix", "alloc"} & set(states.stdout.split()):
        return f"no Slurm node is up (sinfo: {' '.join(states.stdout.split()) or 'no nodes'})"
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        return "dask-jobqueue is not installed (extra 'cluster')"
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = _slurm_unusable()
    if reason:
        pytest.skip(f"no usable Slurm: {reason}")


@pytest.fixture
def job_name():
    """A name for this test's batch jobs; any left at the end are cancelled."""
    name = f"emergence-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["scancel", "--name", name], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "ref.zarr"
    run_quietly(SWEEP, out)
    return comparable(xr.open_zarr(out))


def _profile(folder: Path, job_name: str, scaling: str, prologue: list[str] = ()) -> Path:
    """One single-core worker per job, on loopback; job output in ``folder``."""
    lines = [f"export {assignment}" for assignment in prologue]
    lines.append("echo EMERGENCE_FAULT=${EMERGENCE_FAULT:-}")
    path = folder / "slurm.toml"
    path.write_text(
        '[cluster]\ncores = 1\nmemory = "1GiB"\nwalltime = "00:10:00"\n'
        f'interface = "lo"\npython = {str(sys.executable)!r}\nlocal_directory = {str(folder)!r}\n'
        f'job_extra_directives = ["--job-name={job_name}", "--output={folder}/job-%j.out"]\n'
        f"job_script_prologue = {lines!r}\n{scaling}\n"
    )
    return path


def _jobs(job_name: str) -> dict[str, str]:
    """Job id -> state of this test's jobs that Slurm still lists."""
    out = subprocess.run(
        ["squeue", "-h", "--name", job_name, "-o", "%i %T"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return dict(line.split() for line in out.splitlines())


def _job_state(job_id: str) -> str:
    """The state of a job that may have ended (kept by slurmctld for MinJobAge)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return next(f.split("=", 1)[1] for f in out.split() if f.startswith("JobState="))


def test_sweep_through_slurm_jobs_equals_local_run(slurm, job_name, tmp_path, local_reference):
    profile = _profile(tmp_path, job_name, "jobs = 2")
    wf = write_workflow(tmp_path, SWEEP)
    out = tmp_path / "x.zarr"
    result = emergence(
        "run",
        str(wf),
        "--cluster",
        "slurm",
        "--cluster-profile",
        str(profile),
        "--out",
        str(out),
        "--no-progress",
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert f"{BLOCKS}/{BLOCKS} done" in result.stdout
    xr.testing.assert_identical(comparable(xr.open_zarr(out)), local_reference)
    logs = {log.stem.removeprefix("job-"): log.read_text() for log in tmp_path.glob("job-*.out")}
    assert any("Registered to:" in text for text in logs.values()), f"no worker joined from a job: {logs}"
    assert {_job_state(job_id) for job_id in logs} <= {"CANCELLED", "COMPLETED"}  # the driver ended them
    assert _jobs(job_name) == {}


def test_scancel_of_a_worker_job_mid_sweep_is_replaced_and_completes(slurm, job_name, tmp_path, local_reference):
    profile = _profile(
        tmp_path, job_name, "adaptive_minimum = 2\nadaptive_maximum = 2", prologue=["EMERGENCE_FAULT=delay=0.3"]
    )  # in the job script itself
    wf = write_workflow(tmp_path, SWEEP)
    out = tmp_path / "x.zarr"
    # Dask forgets a lost worker after lost-worker-timeout (15 s by default) and only then
    # does the adaptive cluster submit a job in its place.
    env = {"DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT": "1s"}
    seen: dict[str, str] = {}

    def cancel_one_of_two_running_jobs() -> str | None:
        jobs = _jobs(job_name)
        seen.update(jobs)
        running = sorted(j for j, state in jobs.items() if state == "RUNNING")
        if len(running) < 2 or done_count(out) < 2:
            return None
        assert done_count(out) < BLOCKS, "sweep finished before a job could be cancelled"
        subprocess.run(["scancel", running[0]], check=True, timeout=30)
        return running[0]

    def what_was_seen() -> str:
        return f"two running jobs and 2 blocks done, to cancel one (jobs seen: {seen})"

    run = ("run", str(wf), "--cluster", "slurm", "--cluster-profile", str(profile), "--out", str(out), "--no-progress")
    with start_emergence(*run, env=env) as driver:
        victim = wait_for(cancel_one_of_two_running_jobs, 120, what_was_seen, command=driver, interval=0.2)

        def sweep_ended() -> bool:
            seen.update(_jobs(job_name))  # the job that replaces the cancelled one
            return not driver.running()

        wait_for(sweep_ended, 180, "the sweep to end after the cancel", interval=0.2)
        result = driver.finish(timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{BLOCKS}/{BLOCKS} done" in result.stdout
    xr.testing.assert_identical(comparable(xr.open_zarr(out)), local_reference)
    assert _job_state(victim) == "CANCELLED"
    assert len(seen) >= 3, f"no job replaced the cancelled one: {seen}"
    assert "EMERGENCE_FAULT=delay=0.3" in (tmp_path / f"job-{victim}.out").read_text()
