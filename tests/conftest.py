"""Shared fixtures: a real Dask LocalCluster for the session (helpers live in ``tests.helpers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.driver.where import Where


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[Where]:
    """A real LocalCluster (2 worker processes) shared by the session, as a ``Where``."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", silence_logs=40
    ) as cluster:
        yield Where.scheduler(cluster.scheduler_address)
