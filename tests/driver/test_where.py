"""Where a run computes: what a user gives is read by Dask's own address parser and
refused in one line before anything starts (no scheduler is needed to refuse it)."""

from __future__ import annotations

import json

import pytest

from pipeline.core.errors import UsageError
from pipeline.driver.where import Where

NOT_ADDRESSES = ["not-an-address", "tcp://10.0.0.5", "http://10.0.0.5:8786", "tcp://10.0.0.5:0", "tcp://h:99999"]


@pytest.mark.parametrize("address", NOT_ADDRESSES)
def test_an_address_dask_cannot_read_is_refused(address):
    with pytest.raises(UsageError, match=r"is not a Dask scheduler address .*expected one like tcp://") as refused:
        Where.choose(scheduler=address)
    assert repr(address) in str(refused.value) and "\n" not in str(refused.value)


def test_the_environment_variable_is_checked_and_named():
    with pytest.raises(UsageError, match=r"^DASK_SCHEDULER_ADDRESS 'nowhere' is not a Dask scheduler address"):
        Where.choose(environ={"DASK_SCHEDULER_ADDRESS": "nowhere"})
    assert Where.choose(environ={"DASK_SCHEDULER_ADDRESS": ""}).kind == "local"


@pytest.mark.parametrize("address", ["tcp://10.0.0.5:8786", "127.0.0.1:8786", "tcp://[::1]:8786", "tls://h.example:1"])
def test_addresses_dask_reads_are_kept_as_given(address):
    where = Where.choose(scheduler=address, connect_timeout=5)
    assert (where.kind, where.address, where.connect_timeout) == ("scheduler", address, 5.0)
    assert not where.owns_cluster


def test_a_scheduler_file_is_read_before_anything_starts(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(UsageError, match=r"scheduler file '.*none\.json' does not exist"):
        Where.choose(scheduler_file=str(missing))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(UsageError, match="cannot be read as a Dask scheduler file"):
        Where.choose(scheduler_file=str(garbage))
    no_address = tmp_path / "no_address.json"
    no_address.write_text(json.dumps({"id": "Scheduler-1"}))
    with pytest.raises(UsageError, match="holds no scheduler address"):
        Where.choose(scheduler_file=str(no_address))
    bad_address = tmp_path / "bad_address.json"
    bad_address.write_text(json.dumps({"address": "somewhere"}))
    with pytest.raises(UsageError, match=r"bad_address\.json': address 'somewhere' is not a Dask scheduler address"):
        Where.choose(scheduler_file=str(bad_address))
    good = tmp_path / "scheduler.json"
    good.write_text(json.dumps({"address": "tcp://10.0.0.5:8786", "id": "Scheduler-1"}))
    where = Where.choose(scheduler_file=str(good))
    assert (where.kind, where.address) == ("scheduler_file", "tcp://10.0.0.5:8786")
    assert where.describe() == f"the Dask scheduler of {good} (at tcp://10.0.0.5:8786)"


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf"), "soon"])
def test_a_connect_timeout_is_a_positive_number_of_seconds(seconds):
    with pytest.raises(UsageError, match=r"connect timeout .*: must be a number of seconds > 0"):
        Where.choose(scheduler="tcp://10.0.0.5:8786", connect_timeout=seconds)


def test_a_connect_timeout_needs_a_running_scheduler():
    with pytest.raises(UsageError, match="a connect timeout is for a running scheduler"):
        Where.choose(workers=2, connect_timeout=5)
