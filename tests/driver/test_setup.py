"""The one setup of a run, shared by ``emergence run`` and ``pipeline.run``: every check on
the input before anything starts or is written."""

from __future__ import annotations

import pytest

from pipeline.core.errors import ConfigError, UsageError
from pipeline.driver.setup import RunSetup, setup_run
from pipeline.plan.config import parse_workflow
from tests.helpers import hidden

WORKFLOW = parse_workflow(hidden("setup"))


def test_the_default_store_is_absolute_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup = setup_run(WORKFLOW, environ={})
    assert setup.location.url == str(tmp_path / "data" / "setup.zarr")
    assert setup.where.kind == "local" and not setup.overwrite and not setup.extend
    assert setup_run(WORKFLOW, "elsewhere/x.zarr", environ={}).location.url == str(tmp_path / "elsewhere" / "x.zarr")


def test_overwrite_and_extend_exclude_each_other_wherever_a_run_is_set_up(tmp_path):
    with pytest.raises(UsageError, match="--overwrite and --extend exclude each other"):
        setup_run(WORKFLOW, tmp_path / "x.zarr", overwrite=True, extend=True, environ={})
    with pytest.raises(UsageError, match="--overwrite and --extend exclude each other"):
        RunSetup(WORKFLOW, setup_run(WORKFLOW, tmp_path / "x.zarr").location, setup_run(WORKFLOW).where, True, True)


def test_a_cluster_profile_is_keys_or_the_path_of_a_file(tmp_path):
    profile = tmp_path / "slurm.toml"
    profile.write_text('[cluster]\ncores = 4\nmemory = "8GiB"\n')
    from_file = setup_run(WORKFLOW, tmp_path / "x.zarr", cluster="slurm", cluster_profile=profile, environ={})
    from_keys = setup_run(
        WORKFLOW, tmp_path / "x.zarr", cluster="slurm", cluster_profile={"cores": 4, "memory": "8GiB"}, environ={}
    )
    assert from_file.where == from_keys.where and from_file.where.kind == "batch"
    with pytest.raises(UsageError, match=r"cluster profile .* does not exist"):
        setup_run(WORKFLOW, cluster="slurm", cluster_profile=tmp_path / "none.toml", environ={})
    with pytest.raises(ConfigError, match=r"cluster\.memory is required for a slurm cluster"):
        setup_run(WORKFLOW, cluster="slurm", cluster_profile={"cores": 4}, environ={})


def test_the_scheduler_comes_from_the_arguments_or_the_environment(tmp_path):
    environ = {"DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.5:8786"}
    assert setup_run(WORKFLOW, environ=environ).where.address == "tcp://10.0.0.5:8786"
    assert setup_run(WORKFLOW, scheduler="tcp://10.0.0.6:8786", environ=environ).where.address == "tcp://10.0.0.6:8786"
    with pytest.raises(UsageError, match="--workers is for local clusters"):
        setup_run(WORKFLOW, workers=2, environ=environ)
    assert not list(tmp_path.iterdir())
