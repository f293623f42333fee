"""Every experiment on a real multi-threaded ``dask worker`` gives the bits of a single-threaded run.

A plain ``dask worker`` runs several tasks at once in threads of one process, sharing its
python-flint precision, the models' caches and the task caches. Each workflow below is cut
into many one-block tasks, so the worker's 4 threads run several at once, and its cube must
be identical to the one a local single-threaded worker computes.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import xarray as xr

from pipeline.driver.where import Where
from pipeline.experiments import get_experiment, known_experiments
from pipeline.plan.config import parse_workflow
from tests.helpers import comparable, run_quietly
from tests.processes import DASK, DaskProcesses

THREADS = 4

# Loaded by the worker: it switches threads every few microseconds instead of every 5 ms, so
# a task that changed shared state (flint's precision, a cache) is likely to be interrupted.
SWITCH_OFTEN = "import sys\n\nsys.setswitchinterval(1e-5)\n"

ONE_BLOCK_TASKS = "[chunks]\nblocks_per_task = 1\n"

WORKFLOWS = {
    "observed exact": """
experiment = "observed"
name = "threads_observed"
seed = 4
basis = "random"
[grid]
spectrum = ["1.0^2, 0.5", "1.05@30", "1.0^3"]
family = ["block", "full", "similarity"]
d = "all"
T = [10, 1000, 100000]
draw = 2
[chunks]
blocks_per_task = 1
spectrum = 1
family = 1
T = 1
""",
    "observed learner_family exact": """
experiment = "observed"
name = "threads_learners"
seed = 5
[grid]
spectrum = ["1.0^2, 0.5", "1.0, 0.5", "1.05@30, 0.3"]
family = ["block", "full"]
learner_family = ["same", "diagonal", "full", "similarity"]
d = "all"
T = [10, 10000]
draw = 2
[chunks]
blocks_per_task = 1
spectrum = 1
learner_family = 1
T = 1
""",
    "observed montecarlo": """
experiment = "observed"
name = "threads_observed_mc"
seed = 6
method = "montecarlo"
mc_samples = 40
[grid]
spectrum = ["1.0^2, 0.5", "1.05@30"]
family = ["block", "full"]
d = "all"
T = [10, 120]
draw = 2
[chunks]
blocks_per_task = 1
spectrum = 1
family = 1
T = 1
""",
    "hidden lam exact": """
experiment = "hidden"
name = "threads_hidden"
seed = 1
[grid]
lam = [0.9, 1.0, 1.05]
noise_ratio = [0.5, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 8] }
T = [10, 1000, 1000000]
[chunks]
blocks_per_task = 1
lam = 1
noise_ratio = 1
learner = 1
""",
    "hidden lam montecarlo": """
experiment = "hidden"
name = "threads_hidden_mc"
seed = 2
method = "montecarlo"
mc_samples = 200
[grid]
lam = [0.9, 1.0]
noise_ratio = [1.0, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = [1, 3]
T = [10, 300]
[chunks]
blocks_per_task = 1
lam = 1
noise_ratio = 1
learner = 1
""",
    "hidden spectrum exact": """
experiment = "hidden"
name = "threads_spectrum"
seed = 3
[grid]
spectrum = ["1.0^2", "1.0@60, 0.5", "1.0^3", "1.05, 1.02"]
noise_ratio = [1.0, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = [1, 2, 3, 5]
T = [10, 300, 3000]
[chunks]
blocks_per_task = 1
spectrum = 1
noise_ratio = 1
learner = 1
""",
    "hidden fitted exact": """
experiment = "hidden"
fit = "least_squares"
name = "threads_hidden_fitted"
seed = 6
[grid]
lam = [0.5, 1.0]
noise_ratio = [1.0, 4.0]
k = [1, 2, 3]
T = [10, 300]
trajectories = [1, 3]
fits = 4
[chunks]
blocks_per_task = 1
lam = 1
noise_ratio = 1
fit = 1
""",
    "hidden spectrum fitted exact": """
experiment = "hidden"
fit = "least_squares"
name = "threads_spectrum_fitted"
seed = 7
[grid]
spectrum = ["1.0^2", "1.0@60, 0.5"]
noise_ratio = [1.0, 4.0]
k = [1, 2, 3]
T = [10, 300]
trajectories = [1, 3]
fits = 4
[chunks]
blocks_per_task = 1
spectrum = 1
noise_ratio = 1
fit = 1
""",
    "observed fitted exact": """
experiment = "observed"
fit = "least_squares"
name = "threads_fitted"
seed = 6
basis = "random"
[grid]
spectrum = ["1.0^2, 0.5", "1.1, 0.5"]
learner_family = ["leading", "full"]
d = [1, 2, 4, 9]
T = [3, 20, 60]
trajectories = [1, 10]
fits = 4
[chunks]
blocks_per_task = 1
spectrum = 1
learner_family = 1
T = 1
""",
    "hidden spectrum montecarlo": """
experiment = "hidden"
name = "threads_spectrum_mc"
seed = 3
method = "montecarlo"
mc_samples = 150
[grid]
spectrum = ["1.0^2", "1.0@60, 0.5"]
noise_ratio = [1.0, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = [1, 2]
T = [10, 1100]
[chunks]
blocks_per_task = 1
spectrum = 1
noise_ratio = 1
learner = 1
""",
}


def test_the_workflows_cover_every_experiment_and_method():
    covered = {(wf.experiment, wf.settings.method) for wf in map(parse_workflow, WORKFLOWS.values())}
    assert covered == {(name, method) for name in known_experiments() for method in get_experiment(name).methods}
    for text in WORKFLOWS.values():
        assert parse_workflow(text).plan.tasks_total >= 2 * THREADS


@pytest.fixture(scope="module")
def threaded_worker(tmp_path_factory):
    """A real ``dask scheduler`` and one real ``dask worker --nthreads 4`` process that
    switches threads often."""
    folder = tmp_path_factory.mktemp("threads")
    procs = DaskProcesses(folder)
    procs.start_scheduler()
    preload = folder / "switch_often.py"
    preload.write_text(SWITCH_OFTEN)
    procs.workers.append(
        subprocess.Popen(
            [
                DASK,
                "worker",
                "--scheduler-file",
                str(procs.scheduler_file),
                "--nthreads",
                str(THREADS),
                "--nworkers",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--death-timeout",
                "30",
                "--preload",
                str(preload),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ),
        )
    )
    try:
        procs.wait_for_workers(1)
        yield procs
    finally:
        procs.stop()


def _overlapping(stream: list[dict]) -> int:
    """The largest number of tasks whose compute intervals overlap at one time."""
    events = sorted(
        (t, step)
        for task in stream
        for part in task["startstops"]
        if part["action"] == "compute"
        for t, step in ((part["start"], 1), (part["stop"], -1))
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_multithreaded_worker_gives_the_bits_of_a_single_threaded_run(name, threaded_worker, tmp_path):
    from distributed import Client, get_task_stream

    text = WORKFLOWS[name]
    remote = Where.from_scheduler_file(str(threaded_worker.scheduler_file))
    with Client(threaded_worker.address, timeout="30s") as observer, get_task_stream(client=observer) as stream:
        run_quietly(text, tmp_path / "threads.zarr", where=remote)
    assert _overlapping(stream.data) >= 2, "the worker's threads never ran two tasks at once"
    run_quietly(text, tmp_path / "local.zarr", where=Where.local(1))
    threaded = comparable(xr.open_zarr(tmp_path / "threads.zarr"))
    local = comparable(xr.open_zarr(tmp_path / "local.zarr"))
    xr.testing.assert_identical(threaded, local)
    for variable in local.data_vars:
        assert threaded[variable].values.tobytes() == local[variable].values.tobytes(), variable
