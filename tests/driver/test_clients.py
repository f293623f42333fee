"""Local clients: workers forked from a forkserver that imported the pipeline once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.driver import clients
from pipeline.driver.where import Where
from tests.helpers import REPO

pytestmark = pytest.mark.skipif(not clients.FORKSERVER, reason="forkserver start method unavailable")


def _worker_facts() -> dict:
    import os
    import sys

    return {
        "ppid": os.getppid(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "probe": os.environ.get("EMERGENCE_TEST_PROBE"),
        "imported": "pipeline.worker.tasks" in sys.modules and "pipeline.experiments.observed" in sys.modules,
    }


@pytest.mark.slow
def test_local_workers_are_forked_from_the_forkserver_with_the_current_environment(monkeypatch):
    monkeypatch.setenv("EMERGENCE_TEST_PROBE", "first")
    client = clients.make_client(Where.local(2), blocks=2)
    try:
        facts = list(client.run(_worker_facts).values())
    finally:
        clients.close(client, own_cluster=True)
    assert len(facts) == 2
    assert all(f["ppid"] != os.getpid() for f in facts)  # children of the forkserver, not of us
    assert len({f["ppid"] for f in facts}) == 1
    assert all(f["imported"] and f["omp"] == "1" and f["probe"] == "first" for f in facts)

    # a variable changed between runs reaches the next run's workers (a fresh forkserver)
    monkeypatch.setenv("EMERGENCE_TEST_PROBE", "second")
    client = clients.make_client(Where.local(1), blocks=2)
    try:
        (again,) = client.run(_worker_facts).values()
    finally:
        clients.close(client, own_cluster=True)
    assert again["probe"] == "second"
    assert again["ppid"] != facts[0]["ppid"]


def test_a_single_block_runs_in_a_thread_of_this_process():
    client = clients.make_client(Where.local(2), blocks=1)
    try:
        (pid,) = client.run(os.getpid).values()
    finally:
        clients.close(client, own_cluster=True)
    assert pid == os.getpid()


@pytest.mark.slow
def test_forkserver_exit_skips_interpreter_teardown():
    """atexit runs last-registered first: the handler registered before the import never runs."""
    code = "import atexit; atexit.register(print, 'teardown'); import pipeline.worker.forkserver_process; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.split() == ["ok"]


@pytest.mark.slow
def test_run_reads_the_workflow_before_importing_xarray_or_distributed():
    """`emergence run` starts the forkserver before its own heavy imports, so they overlap."""
    code = (
        "import sys; from pipeline.cli import build_parser; from pipeline.plan.config import load_workflow; "
        "from pipeline.driver.setup import setup_run; import pipeline; build_parser(); "
        "setup = setup_run(load_workflow('workflows/quickstart.toml'), environ={}); "
        "print(sorted(m for m in ('xarray', 'zarr', 'distributed', 'dask') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_local_workers_start_when_the_script_comes_from_standard_input(tmp_path):
    """``python -`` has no main file for worker processes to re-run (it used to fail every worker)."""
    script = (
        "import os\nfrom pipeline.driver import clients\nfrom pipeline.driver.where import Where\n"
        "client = clients.make_client(Where.local(2), blocks=2)\n"
        "print(sorted(client.run(os.getpid).values()) != [os.getpid()])\n"
        "clients.close(client, own_cluster=True)\n"
    )
    out = subprocess.run([sys.executable, "-"], input=script, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True"
