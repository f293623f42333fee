"""Shared fixtures: a real Dask LocalCluster for the session (helpers live in ``tests.helpers``).

And one rule, checked rather than hoped: a test that starts a process (itself or through a
fixture, even one another test set up first) is marked ``slow``, so ``make test-fast``
(``-m "not slow"``) starts none. A test that breaks the rule fails, naming what it started.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator

import pytest

from pipeline.driver.where import Where
from pipeline.storage import provenance
from tests.processes import ProcessStarts

PROCESS_STARTS = ProcessStarts()
_SESSION_PATCHES = pytest.MonkeyPatch()
_FIXTURES_STARTING_PROCESSES: dict[tuple[str, str], list[str]] = {}
"""(baseid, name) of each fixture whose setup started processes -> what it started."""


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[Where]:
    """A real LocalCluster (2 worker processes) shared by the session, as a ``Where``."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", silence_logs=40
    ) as cluster:
        yield Where.scheduler(cluster.scheduler_address)


@pytest.fixture(scope="session")
def threaded_cluster() -> Iterator[Where]:
    """A real LocalCluster whose one worker is a thread of this process, as a ``Where``: real
    Dask scheduling and real Zarr writes for tests not marked slow (it starts no process)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, silence_logs=40
    ) as cluster:
        yield Where.scheduler(cluster.scheduler_address)


def pytest_configure(config: pytest.Config) -> None:
    # A Dask worker reports platform.uname().processor, which platform finds by running
    # `uname -p` once per interpreter; answer it from os.uname() so that an in-process
    # worker starts no process (the name only appears in Dask's version report).
    platform.uname().__dict__.setdefault("processor", os.uname().machine)
    # A new cube records the commit of the code that made it by running `git`; in this
    # process cubes record "unknown", as where git is absent (cubes made by `emergence`
    # subprocesses record the real commit: tests/storage/test_provenance.py).
    _SESSION_PATCHES.setattr(provenance, "git_commit", lambda: "unknown")
    PROCESS_STARTS.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    PROCESS_STARTS.uninstall()
    _SESSION_PATCHES.undo()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> Iterator[object]:
    mark = len(PROCESS_STARTS.seen)
    try:
        return (yield)
    finally:
        started = PROCESS_STARTS.since(mark)
        if started:
            _FIXTURES_STARTING_PROCESSES[(fixturedef.baseid, fixturedef.argname)] = started


def _is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


def _refuse_processes(item: pytest.Item, phase: str, started: list[str]) -> None:
    """Fail a test not marked slow that started processes or uses a fixture that did."""
    if _is_slow(item):
        return
    by_fixtures = [
        f"fixture {name!r}: {what[0]}"
        for name, defs in item._fixtureinfo.name2fixturedefs.items()  # pytest has no public map
        for fixturedef in defs
        if (what := _FIXTURES_STARTING_PROCESSES.get((fixturedef.baseid, fixturedef.argname)))
    ]
    if started or by_fixtures:
        lines = "\n  ".join([*started, *by_fixtures])
        pytest.fail(
            f"{item.nodeid} starts processes in {phase} but is not marked slow "
            f"(`make test-fast` must start none):\n  {lines}",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    mark = len(PROCESS_STARTS.seen)
    result = yield
    _refuse_processes(item, "setup", PROCESS_STARTS.since(mark))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    mark = len(PROCESS_STARTS.seen)
    try:
        return (yield)
    finally:
        _refuse_processes(item, "its body", PROCESS_STARTS.since(mark))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    mark = len(PROCESS_STARTS.seen)
    try:
        return (yield)
    finally:
        started = PROCESS_STARTS.since(mark)
        if started:  # a fixture's teardown (its setup was checked already)
            _refuse_processes(item, "teardown", started)
