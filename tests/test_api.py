"""The public Python API, and the README's Python examples run verbatim: from a script and
from standard input (``python -``), with a local cluster."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import xarray as xr

import pipeline
from pipeline.core.errors import RunError, UsageError
from tests.helpers import REPO, hidden
from tests.references import assert_as_printed, truncated_kalman_risk

README_PYTHON = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_a_python_example():
    assert README_PYTHON and all("pipeline" in block for block in README_PYTHON)


@pytest.fixture
def project(tmp_path):
    shutil.copytree(REPO / "workflows", tmp_path / "workflows")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("how", ["script", "stdin"])
def test_readme_examples_run_verbatim(project, how):
    code = "\n".join(README_PYTHON)
    if how == "script":
        (project / "example.py").write_text(code)
        argv, stdin = [sys.executable, "example.py"], None
    else:
        argv, stdin = [sys.executable, "-"], code
    out = subprocess.run(argv, input=stdin, cwd=project, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert float(lines[0].strip("[]")) > 0  # a risk
    assert float(lines[1]) > 0  # a measured slope of k* in ln T
    assert lines[2].split()[1].startswith("quickstart_")  # figures labelled by their file stems


@pytest.mark.slow
def test_run_takes_a_dict_and_text_and_open_cube_checks(tmp_path):
    text = hidden("api", lam=[1.0], noise_ratio=[4.0], k=[1, 3], T=[10, 1000])
    report = pipeline.run(text, tmp_path / "a.zarr", workers=1, quiet=True)
    assert report.complete and report.cells_computed == 8
    workflow = {
        "experiment": "hidden",
        "name": "api",
        "grid": {
            "lam": [1.0],
            "noise_ratio": [4.0],
            "learner": ["truncated_kalman", "best_fir"],
            "k": [1, 3],
            "T": [10, 1000],
        },
    }
    again = pipeline.run(workflow, tmp_path / "b.zarr", workers=1, quiet=True)
    assert again.complete
    ds = pipeline.open_cube(tmp_path / "b.zarr")
    assert_as_printed(
        float(ds.risk.sel(learner="truncated_kalman", k=1, T=10).squeeze()), truncated_kalman_risk(k=1, T=10)
    )
    th = pipeline.thresholds(tmp_path / "b.zarr")
    assert "k_star" in th and th.attrs["experiment"] == "hidden"
    with pytest.raises(UsageError, match=r"pipeline\.open_cube"):
        pipeline.thresholds(xr.open_zarr(tmp_path / "b.zarr"))
    with pytest.raises(UsageError):
        pipeline.open_cube(tmp_path / "nothing.zarr")


@pytest.mark.slow
def test_run_from_a_jupyter_kernel_with_local_worker_processes(project):
    from jupyter_client.manager import start_new_kernel

    text = hidden("jupyter", chunks={"lam": 1, "blocks_per_task": 1})
    (project / "jupyter.toml").write_text(text)
    code = (
        "import pipeline\n"
        "r = pipeline.run('jupyter.toml', workers=2, quiet=True)\n"
        "print(r.complete, r.blocks_computed, r.tasks_total)\n"
    )
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(project))
    try:
        msg_id = client.execute(code)
        printed, errors = [], []
        while True:
            msg = client.get_iopub_msg(timeout=240)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert not errors, errors
    assert "".join(printed).split() == ["True", "3", "3"]


def test_run_refuses_a_scheduler_it_cannot_use_and_writes_nothing(tmp_path):
    text = hidden("api", lam=[1.0], noise_ratio=[4.0], k=[1, 3], T=[10, 1000])
    out = tmp_path / "a.zarr"
    with pytest.raises(UsageError, match="scheduler address 'not-an-address' is not a Dask scheduler address"):
        pipeline.run(text, out, scheduler="not-an-address")
    with pytest.raises(UsageError, match=r"scheduler file '.*none\.json' does not exist"):
        pipeline.run(text, out, scheduler_file=tmp_path / "none.json")
    with pytest.raises(RunError, match=r"no Dask scheduler answered at tcp://127\.0\.0\.1:1: gave up after .*1 s"):
        pipeline.run(text, out, scheduler="tcp://127.0.0.1:1", connect_timeout=1)
    assert list(tmp_path.iterdir()) == []
