"""The engine on a real LocalCluster writing real Zarr stores in temporary folders."""

from __future__ import annotations

import json
import signal
import warnings

import numpy as np
import psutil
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.errors import RunError, UsageError
from pipeline.core.types import VariableSpec
from pipeline.driver.engine import RunReport, run
from pipeline.driver.setup import RunSetup
from pipeline.driver.where import Where
from pipeline.plan.config import parse_workflow
from pipeline.storage import ledger
from pipeline.storage.location import StoreLocation
from pipeline.worker.tasks import BlockError, check_block
from tests.helpers import (
    assert_cubes_identical,
    direct,
    done_count,
    emergence,
    hidden,
    run_quietly,
    start_emergence,
    wait_for,
    write_workflow,
)
from tests.references import (
    KALMAN,
    TRUNCATED_KALMAN_K,
    TRUNCATED_KALMAN_T,
    assert_as_printed,
    truncated_kalman_risk,
)

SMALL = hidden()


def test_cube_opens_with_plain_xarray_and_matches_the_kernel(tmp_path, threaded_cluster):
    out = tmp_path / "small.zarr"
    report = run_quietly(SMALL, out, where=threaded_cluster)
    assert report.complete and report.blocks_computed == report.blocks_total
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(out).load()
    assert list(ds["risk"].dims) == ["lam", "noise_ratio", "learner", "k", "T"]
    assert ds["learner"].values.tolist() == ["truncated_kalman", "best_fir"]
    for name in ds.variables:  # every variable and coordinate, so plain xarray plots label their axes
        assert ds[name].attrs["long_name"] and ds[name].attrs["units"], name
    assert ds["T"].attrs == {"long_name": "horizon T", "units": "steps"}
    for key in ("workflow", "package_version", "git_commit", "library_versions", "created"):
        assert ds.attrs[key]
    assert ds.attrs["workflow"] == SMALL
    arrays = direct(SMALL)
    for name in ("risk", "log10_risk", "kl_rate"):
        np.testing.assert_array_equal(ds[name].values, arrays[name])
    assert not np.isnan(ds["log10_risk"].values).any()
    # MATH §2.5 reference values come out of the cube
    cell = ds.sel(lam=1.0, noise_ratio=4.0, learner="truncated_kalman")
    for k in TRUNCATED_KALMAN_K:
        for T in TRUNCATED_KALMAN_T:
            assert_as_printed(float(cell["risk"].sel(k=k, T=T)), truncated_kalman_risk(k, T), f"risk at k={k}, T={T}")
    for lam in (1.0, 0.9):
        got = ds.sel(lam=lam, noise_ratio=4.0)
        got_pka = [float(got["P"]), float(got["kalman_gain"]), float(got["a"])]
        assert_as_printed(got_pka, KALMAN[lam, 4.0], f"P, K, a at lam={lam}")


def test_rerun_of_finished_store_does_nothing_and_says_so(tmp_path, threaded_cluster):
    out = tmp_path / "s.zarr"
    run_quietly(SMALL, out, where=threaded_cluster)
    said = []
    wf = parse_workflow(SMALL)
    report = run(RunSetup(wf, StoreLocation(str(out)), threaded_cluster), progress=False, say=said.append)
    assert report.blocks_computed == 0 and report.complete
    assert "nothing to do" in said[-1]


def test_changed_workflow_refused_unless_overwrite(tmp_path, threaded_cluster):
    out = tmp_path / "s.zarr"
    run_quietly(SMALL, out, where=threaded_cluster)
    changed = SMALL.replace("noise_ratio = [0.5, 4.0]", "noise_ratio = [0.5, 5.0]")
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(UsageError, match="different workflow"):
        run_quietly(changed, out, where=threaded_cluster)
    assert sorted(p.name for p in out.rglob("*")) == before
    run_quietly(changed, out, where=threaded_cluster, overwrite=True)
    assert xr.open_zarr(out)["noise_ratio"].values.tolist() == [0.5, 5.0]


chunk_choice = st.fixed_dictionaries(
    {},
    optional={
        "lam": st.integers(1, 3),
        "noise_ratio": st.integers(1, 2),
        "learner": st.integers(1, 2),
        "k": st.integers(1, 6),
        "T": st.integers(1, 5),
        "blocks_per_task": st.integers(1, 8),
        "task_seconds": st.sampled_from([1e-6, 0.25, 5.0]),
    },
)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=chunk_choice)
def test_chunking_does_not_change_the_cube(tmp_path_factory, shared_cluster, chunks):
    text = SMALL + "\n[chunks]\n" + "".join(f"{k} = {v}\n" for k, v in chunks.items())
    out = tmp_path_factory.mktemp("chunks") / "c.zarr"
    run_quietly(text, out, where=shared_cluster)
    arrays = direct(SMALL)
    ds = xr.open_zarr(out)
    assert tuple(ds["risk"].encoding["chunks"]) == parse_workflow(text).plan.chunk_of(ds["risk"].dims)
    for name in ("risk", "log10_risk", "kl_rate"):
        np.testing.assert_array_equal(ds[name].values, arrays[name])


@pytest.mark.slow
def test_worker_count_does_not_change_the_cube(tmp_path):
    one, two = tmp_path / "one.zarr", tmp_path / "two.zarr"
    text = SMALL + "\n[chunks]\nk = 2\n"
    run_quietly(text, one, Where.local(1))
    run_quietly(text, two, Where.local(2))
    assert_cubes_identical(one, two)


def test_check_block_refuses_nan_and_names_the_cell():
    spec = {"risk": VariableSpec(("k", "T"), "r", "1")}
    coords = {"k": np.array([1, 2]), "T": np.array([10, 100])}
    with pytest.raises(BlockError, match=r"risk is NaN at \{'k': 2, 'T': 100\}"):
        check_block((0, 0), coords, {"risk": np.array([[1.0, 2.0], [3.0, np.nan]])}, spec)
    allowed = {"risk": VariableSpec(("k", "T"), "r", "1", nan_means="undefined")}
    check_block((0, 0), coords, {"risk": np.array([[1.0, 2.0], [3.0, np.nan]])}, allowed)


@pytest.mark.slow
def test_failed_block_is_reported_and_retried_on_rerun(tmp_path, monkeypatch):
    out = tmp_path / "f.zarr"
    text = SMALL + "\n[chunks]\nlam = 1\nblocks_per_task = 1\n"
    monkeypatch.setenv("EMERGENCE_FAULT", "fail-kernel=1.0.0.0.0")
    with pytest.raises(RunError, match=r"1 of 3 tasks failed.*1\.0\.0\.0\.0.*injected kernel fault"):
        run_quietly(text, out)
    assert ledger.done_tasks(StoreLocation(str(out))) == {(0, 0, 0, 0, 0), (2, 0, 0, 0, 0)}
    assert np.isnan(xr.open_zarr(out)["risk"].sel(lam=1.0).values).all()
    monkeypatch.delenv("EMERGENCE_FAULT")
    report = run_quietly(text, out)
    assert report.blocks_done_before == 2 and report.blocks_computed == 1
    arrays = direct(SMALL)
    np.testing.assert_array_equal(xr.open_zarr(out)["risk"].values, arrays["risk"])


@pytest.mark.slow
def test_a_failure_repeated_by_many_tasks_is_reported_once_with_a_count(tmp_path, monkeypatch):
    text = SMALL + "\n[chunks]\nlam = 1\nblocks_per_task = 1\n"
    monkeypatch.setenv("EMERGENCE_FAULT", "fail-kernel=*")
    with pytest.raises(RunError) as failed:
        run_quietly(text, tmp_path / "f.zarr")
    assert str(failed.value) == (
        "3 of 3 tasks failed (re-run to retry them): BlockError: task <task>: kernel failed: "
        "FloatingPointError: injected kernel fault in block <task> (3 tasks: 0.0.0.0.0, 1.0.0.0.0, 2.0.0.0.0)"
    )


def test_distinct_failures_one_line_each_most_frequent_first_and_capped():
    report = RunReport("s.zarr", blocks_total=40, blocks_done_before=0, tasks_total=40)
    report.failed = {f"{i}.0": "OSError: disk full" for i in range(5, 12)}
    report.failed |= {f"{i}.0": f"BlockError: risk is NaN at {{'k': {i}}}" + "!" * 500 * (i == 0) for i in range(5)}
    lines = report.failures().splitlines()
    assert lines[0] == "12 of 40 tasks failed (re-run to retry them):"
    assert lines[1] == "  OSError: disk full (7 tasks: 5.0, 6.0, 7.0, ...)"
    assert lines[2].startswith("  BlockError: risk is NaN at {'k': 0}!!!") and lines[2].endswith("... (1 task: 0.0)")
    assert len(lines[2]) < 320
    assert lines[3:] == [
        "  BlockError: risk is NaN at {'k': 1} (1 task: 1.0)",
        "  BlockError: risk is NaN at {'k': 2} (1 task: 2.0)",
        "  BlockError: risk is NaN at {'k': 3} (1 task: 3.0)",
        "  and 1 other error in 1 task",
    ]


def test_a_run_hashes_its_workflow_once(tmp_path, threaded_cluster, monkeypatch):
    """Each fingerprint (with and without axis values) is computed once per workflow."""
    import hashlib

    hashed: list[bytes] = []
    sha256 = hashlib.sha256

    def spy(data: bytes = b"", **kwargs):
        if data.startswith(b'{"') and b'"seed"' in data and b'"experiment"' in data:
            hashed.append(data)
        return sha256(data, **kwargs)

    wf = parse_workflow(SMALL)
    monkeypatch.setattr(hashlib, "sha256", spy)
    run_quietly(wf, tmp_path / "once.zarr", where=threaded_cluster)
    run_quietly(wf, tmp_path / "once.zarr", where=threaded_cluster)  # and a rerun: nothing to do
    assert hashed and len(hashed) == len(set(hashed)) <= 2


SLOW = hidden(
    "slow",
    lam=[1.0],
    noise_ratio=[0.5, 1.0, 2.0, 4.0],
    learner=["truncated_kalman"],
    k={"range": [1, 4]},
    T=[10, 1000],
    chunks={"noise_ratio": 1, "k": 1, "blocks_per_task": 1},
)


@pytest.mark.slow
def test_resume_after_kill_9_of_the_driver(tmp_path):
    wf_path = write_workflow(tmp_path, SLOW)
    out = tmp_path / "slow.zarr"
    run = ("run", str(wf_path), "--out", str(out), "--workers", "1", "--no-progress")
    with start_emergence(*run, env={"EMERGENCE_FAULT": "delay=0.3"}) as driver:
        wait_for(lambda: done_count(out) >= 3, 120, "3 blocks done", command=driver)
        helpers = psutil.Process(driver.pid).children(recursive=True)  # forkserver, its worker, resource tracker
        assert helpers
        driver.send_signal(signal.SIGKILL)  # the driver alone: what it started must notice and end
        driver.finish(timeout=30)
        _, left = psutil.wait_procs(helpers, timeout=20)
        assert not left, f"processes outlived the killed driver: {[p.pid for p in left]}"
    info = json.loads(emergence("info", str(out), "--format", "json").stdout)
    assert 3 <= info["blocks_done"] < info["blocks_total"] == 16
    before = info["blocks_done"]
    rerun = emergence(*run)
    assert rerun.returncode == 0, rerun.stderr
    assert f"computed {16 - before} blocks, {(16 - before) * 2} cells (16/16 done)" in rerun.stdout
    reference = tmp_path / "ref.zarr"
    run_quietly(SLOW, reference)
    assert_cubes_identical(out, reference)


@pytest.mark.slow
def test_crash_between_write_and_mark_leaves_block_for_resume(tmp_path):
    wf_path = write_workflow(tmp_path, SLOW)
    out = tmp_path / "torn.zarr"
    crashed = emergence(
        "run",
        str(wf_path),
        "--out",
        str(out),
        "--workers",
        "1",
        "--no-progress",
        env={"EMERGENCE_FAULT": "crash-before-mark=0.2.0.1.0", "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"},
    )
    assert crashed.returncode == 1, crashed.stderr
    assert "0.2.0.1.0" in crashed.stderr and "\n" not in crashed.stderr.strip()
    ds = xr.open_zarr(out)
    assert np.isfinite(ds["risk"].isel(noise_ratio=2, k=1).values).all()  # data bytes were written...
    info = json.loads(emergence("info", str(out), "--format", "json").stdout)
    assert info["blocks_done"] == 15  # ...but the block is not marked done
    rerun = emergence("run", str(wf_path), "--out", str(out), "--workers", "1", "--no-progress")
    assert rerun.returncode == 0 and "computed 1 block, 2 cells (16/16 done)" in rerun.stdout


MC = hidden(
    "mc", method="montecarlo", mc_samples=400, seed=7, lam=[0.9, 1.0], noise_ratio=[1.0, 4.0], k=[1, 3], T=[20, 200]
)


@pytest.mark.slow
def test_montecarlo_cube_agrees_with_exact_and_ignores_chunking(tmp_path, shared_cluster):
    whole, split = tmp_path / "whole.zarr", tmp_path / "split.zarr"
    run_quietly(MC, whole, where=shared_cluster)
    run_quietly(MC + "\n[chunks]\nlam = 1\nk = 1\nT = 1\n", split, where=shared_cluster)
    a = xr.open_zarr(whole).load()
    assert_cubes_identical(whole, split, layout=False)
    assert a["risk_stderr"].attrs["long_name"]
    exact_arrays = direct(MC.replace('method = "montecarlo"', 'method = "exact"'))
    z = (a["risk"].values - exact_arrays["risk"]) / a["risk_stderr"].values
    assert np.all(np.abs(z) < 4.5), z
    assert np.all(a["risk_stderr"].values > 0)


@pytest.mark.slow
def test_nan_from_a_kernel_fails_the_block_naming_the_cell(tmp_path, monkeypatch):
    out = tmp_path / "nan.zarr"
    text = SMALL + "\n[chunks]\nlam = 1\nblocks_per_task = 1\n"
    monkeypatch.setenv("EMERGENCE_FAULT", "nan-result=2.0.0.0.0")
    with pytest.raises(RunError) as err:
        run_quietly(text, out)
    message = str(err.value)
    assert "1 of 3 tasks failed" in message and "2.0.0.0.0" in message
    assert "is NaN at {'lam': 1.05, 'noise_ratio': 4.0, 'learner': 'best_fir', 'k': 6, 'T': 100000}" in message
    assert np.isnan(xr.open_zarr(out)["risk"].sel(lam=1.05).values).all()  # nothing of it was written
    monkeypatch.delenv("EMERGENCE_FAULT")
    report = run_quietly(text, out)
    assert report.blocks_computed == 1 and not np.isnan(xr.open_zarr(out)["risk"].values).any()


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_the_rerun_resumes(tmp_path):
    """A terminal's Ctrl-C signals the whole foreground process group: only the driver hears it."""
    wf_path = write_workflow(tmp_path, SLOW)
    out = tmp_path / "interrupted.zarr"
    run = ("run", str(wf_path), "--out", str(out), "--workers", "2", "--no-progress")
    with start_emergence(*run, env={"EMERGENCE_FAULT": "delay=0.3"}) as driver:
        wait_for(lambda: done_count(out) >= 3, 120, "3 blocks done", command=driver)
        driver.signal_group(signal.SIGINT)
        interrupted = driver.finish(timeout=60)
    assert interrupted.returncode == 130
    assert interrupted.stderr.strip() == "emergence: interrupted; finished blocks are kept, re-run to resume", (
        interrupted.stderr
    )
    rerun = emergence("run", str(wf_path), "--out", str(out), "--no-progress")
    assert rerun.returncode == 0 and "(16/16 done)" in rerun.stdout, rerun.stderr
    reference = tmp_path / "ref.zarr"
    run_quietly(SLOW, reference)
    assert_cubes_identical(out, reference)


@pytest.mark.slow
def test_single_block_run_prints_a_dashboard_it_listens_on(tmp_path):
    one = hidden("one", lam=[1.0], noise_ratio=[1.0], learner=["best_fir"], k=[1], T=[10])
    result = emergence("run", str(write_workflow(tmp_path, one)), "--out", str(tmp_path / "one.zarr"), "--no-progress")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "dashboard" in line]
    assert line.startswith("dask dashboard: http://127.0.0.1:"), line
    assert "computed 1 block, 1 cell (1/1 done)" in result.stdout
