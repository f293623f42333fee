"""Dask clients: an existing scheduler, a batch cluster, or a local cluster."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from pipeline import store
from pipeline.cluster import ClusterSpec, start_batch_cluster
from pipeline.config import Workflow

LOCAL_CLUSTER_CONFIG = {
    # A worker holds only the block it is running, so a worker that dies takes no
    # innocent queued block down with it.
    "distributed.scheduler.worker-saturation": 1.0,
    # Dask's default also sets MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
    # dynamic mmap threshold: every large numpy temporary is then mmapped and faulted
    # in afresh, and the kernels run 2.4x slower (benchmarks/, issue 6).
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                                             "OPENBLAS_NUM_THREADS": 1},
}


def make_client(scheduler: str | None, workers: int | None, scheduler_file: str | None = None,
                cluster: ClusterSpec | None = None, blocks: int | None = None,
                preload: tuple[str, ...] = ()) -> Any:
    """A distributed Client: to an existing scheduler, a batch cluster, or a new local cluster.

    A local cluster gets at most one single-threaded worker process per pending block;
    for a single block, one worker thread in this process (starting and stopping a
    worker process costs more than the block). Local workers import ``preload`` while
    they start, not on their first block.
    """
    from distributed import Client, LocalCluster

    if cluster is not None and cluster.is_batch and not (scheduler or scheduler_file):
        return Client(start_batch_cluster(cluster))
    if scheduler_file:
        return Client(scheduler_file=scheduler_file, timeout="30s")
    if scheduler:
        return Client(scheduler, timeout="30s")
    import dask

    n = min(workers or os.cpu_count() or 1, blocks or sys.maxsize)
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=blocks != 1,
                               dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL,
                               preload=list(preload))
    return Client(cluster)


def worker_preload(workflow: Workflow) -> tuple[str, ...]:
    """Modules a local worker needs for this workflow's blocks."""
    from pipeline.experiments import experiment_module

    return ("pipeline.tasks", experiment_module(workflow.experiment))


def _local(scheduler: str | None, scheduler_file: str | None, cluster: ClusterSpec | None) -> bool:
    return not (scheduler or scheduler_file or (cluster is not None and cluster.is_batch))


def start_client_early(workflow: Workflow, location: store.StoreLocation, scheduler: str | None,
                        scheduler_file: str | None, workers: int | None, cluster: ClusterSpec | None,
                        overwrite: bool) -> Any:
    """For a new local-cluster run, start the cluster in a thread while the driver creates
    the store (on a fresh store every block is pending). Returns a Future or None."""
    if not _local(scheduler, scheduler_file, cluster) or (location.anything_here() and not overwrite):
        return None
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="emergence-cluster-start")
    future = pool.submit(make_client, None, workers, None, cluster, workflow.plan.total,
                         worker_preload(workflow))
    pool.shutdown(wait=False)  # the thread ends when the cluster is up
    return future


def discard_early(early: Any) -> None:
    if early is None:
        return
    try:
        client = early.result()
    except Exception:  # noqa: BLE001 - the run is failing already
        return
    close(client, own_cluster=True)


def close(client: Any, own_cluster: bool) -> None:
    cluster = client.cluster if own_cluster else None
    client.close()
    if cluster is not None:
        cluster.close()
