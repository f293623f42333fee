"""Dask clients: a running scheduler, a batch cluster, or a local cluster."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pipeline.core.errors import RunError
from pipeline.driver.cluster import cluster_class, start_batch_cluster
from pipeline.driver.where import Where

# Set before a worker's interpreter starts: one BLAS thread per single-threaded worker.
# Dask's own default also sets MALLOC_TRIM_THRESHOLD_=65536; we leave it out (workers
# set their malloc thresholds themselves, see ``pipeline.worker.allocator``).
WORKER_ENVIRON = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONHASHSEED": "6640",
}  # Dask's choice for the workers it spawns

# Local worker processes are forked from a forkserver that imported distributed and
# the pipeline once (``start_worker_forkserver``) instead of each one spawning a fresh
# interpreter: two workers start and stop in ~0.25 s instead of ~2.7 s.
FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()

DASHBOARD_HOST = "127.0.0.1"
DASHBOARD_ADDRESS = f"{DASHBOARD_HOST}:0"

LOCAL_CLUSTER_CONFIG = {
    # A worker holds only the block it is running, so a worker that dies takes no
    # innocent queued block down with it.
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.nanny.pre-spawn-environ": WORKER_ENVIRON,
    "distributed.worker.multiprocessing-method": "forkserver" if FORKSERVER else "spawn",
    # Quieter housekeeping: with Dask's defaults (event-loop ticks every 20 ms, system
    # monitors every 0.5 s, memory checks every 0.1 s, profiling every 10 ms) an idle
    # two-worker cluster costs the driver 7-9% of a core, 1.5% with these; on a laptop
    # every worker shares its cores with the driver (benchmarks/, issue 6).
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.worker.profile.interval": "100ms",
}


def worker_modules() -> list[str]:
    """What a local worker process imports before its first block: distributed, the
    task body, dask.array (xarray imports it on a worker's first selection of a static part
    with string coordinates: ~0.3 s, over a second on a loaded machine, inside the first block
    otherwise) and every experiment (each experiment module imports in ~10-30 ms)."""
    from pipeline.experiments import experiment_module, known_experiments

    modules = ["distributed", "pipeline.worker.tasks", "dask.array"]
    return [*modules, *(experiment_module(n) for n in known_experiments())]


def _forkserver_modules() -> list[str]:
    return [*worker_modules(), "pipeline.worker.forkserver_process"]


_forkserver_key: tuple | None = None


def start_worker_forkserver() -> bool:
    """Start the process local workers are forked from, unless it runs already with
    this process's current environment and ``sys.path``.

    It is a fresh single-threaded interpreter that imports ``worker_modules()`` with
    ``WORKER_ENVIRON`` added to our environment, while this process goes on (call it
    early: the imports take ~1.6 s of the other core). Workers inherit its environment,
    so it is started afresh when ours has changed since (a library user or a test
    setting a variable between runs). Returns False where forkserver is unavailable.
    """
    global _forkserver_key
    if not FORKSERVER:
        return False
    from multiprocessing import forkserver

    forget_unimportable_main()

    # as in Dask's pre-spawn-environ, a variable the user has set wins over ours
    added = {name: value for name, value in WORKER_ENVIRON.items() if name not in os.environ}
    key = (tuple(sorted(os.environ.items())), tuple(sys.path))
    if _forkserver_key is not None and key != _forkserver_key:
        forkserver._forkserver._stop()  # type: ignore[attr-defined]  # the stdlib's own way to stop it (its tests use it)
    multiprocessing.get_context("forkserver").set_forkserver_preload(_forkserver_modules())
    os.environ.update(added)
    try:
        forkserver.ensure_running()
    finally:
        for name in added:
            os.environ.pop(name, None)
    _forkserver_key = key
    return True


def forget_unimportable_main() -> None:
    """Let worker processes start when ``__main__`` is no file (``python -`` reads the
    script from standard input, so ``__main__.__file__`` is ``'<stdin>'``).

    multiprocessing re-runs the parent's main file in every child it starts (to find
    functions defined there); a file that does not exist made every worker fail.
    Without ``__file__`` (as under ``python -c``) children skip that step.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is not None and path is not None and getattr(main, "__spec__", None) is None and not os.path.isfile(path):
        del main.__file__


def make_client(where: Where, blocks: int | None = None) -> Any:
    """A distributed Client for ``where``.

    A running scheduler is connected to (``connect``). A local cluster gets at most one
    single-threaded worker process per pending block; for a single block, one worker
    thread in this process (starting and stopping a worker process costs more than the
    block). Local worker processes fork from the forkserver of ``start_worker_forkserver``,
    which has imported ``worker_modules()`` already; where they are spawned instead (no
    forkserver), they import those modules while they start, not on their first block.
    """
    from distributed import Client, LocalCluster

    if not where.owns_cluster:
        return connect(where)
    if where.kind == "batch":
        assert where.cluster is not None
        return Client(start_batch_cluster(where.cluster))
    import dask

    n = min(where.workers or os.cpu_count() or 1, blocks or sys.maxsize)
    in_process = blocks == 1
    if not in_process:
        forget_unimportable_main()
        start_worker_forkserver()
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=not in_process,
            dashboard_address=DASHBOARD_ADDRESS,
            silence_logs=logging.CRITICAL,
            preload=[m for m in worker_modules() if m.startswith("pipeline.")],
        )
    return Client(cluster)


def connect(where: Where) -> Any:
    """A Client of the running scheduler of ``where``; RunError naming its address and the
    time waited when it does not answer within ``where.connect_timeout`` seconds."""
    import dask
    from dask.utils import parse_timedelta
    from distributed import Client

    timeout = where.connect_timeout or parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    started = time.monotonic()
    try:
        return Client(where.address, timeout=timeout)
    except OSError as exc:  # includes TimeoutError and Dask's CommClosedError
        waited = time.monotonic() - started
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(
            f"no Dask scheduler answered at {where.address}: gave up after {waited:.1f} s "
            f"(connect timeout {timeout:g} s){'' if reason.startswith('Timed out') else f'; {reason}'}; "
            "nothing was written"
        ) from None


class RunClient:
    """The Dask client of one run, got as early as its kind of cluster allows.

    A running scheduler is connected to when this is made, before the run writes
    anything: a scheduler that does not answer fails the run with nothing written. A
    local cluster may start in a thread (``start_early``) while the run creates a new
    store; a batch cluster submits jobs only once there is work (``get``), but a missing
    dask-jobqueue fails the run when this is made. ``close``
    stops a cluster the run started, and is idempotent.
    """

    def __init__(self, where: Where) -> None:
        self.where = where
        if where.kind == "batch":
            assert where.cluster is not None
            cluster_class(where.cluster)  # a missing dask-jobqueue fails the run before the store is made
        self._client: Any = None if where.owns_cluster else connect(where)
        self._starting: Future[Any] | None = None

    def start_early(self, blocks: int) -> None:
        """Start a local cluster for ``blocks`` pending blocks in a thread (others: nothing)."""
        if self.where.is_local and self._client is None and self._starting is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="emergence-cluster-start")
            self._starting = pool.submit(make_client, self.where, blocks)
            pool.shutdown(wait=False)  # the thread ends when the cluster is up

    def get(self, blocks: int) -> Any:
        """The client, for ``blocks`` pending blocks (a cluster is sized by them)."""
        if self._client is None:
            starting, self._starting = self._starting, None
            self._client = starting.result() if starting is not None else make_client(self.where, blocks)
        return self._client

    def close(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None:
            with contextlib.suppress(Exception):  # a cluster that failed to start has nothing to close
                self._client = starting.result()
        client, self._client = self._client, None
        if client is not None:
            close(client, own_cluster=self.where.owns_cluster)

    def __enter__(self) -> RunClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dashboard_link(client: Any) -> str | None:
    """The dashboard's URL on the address it really listens on (None if it has none)."""
    server = getattr(client.cluster, "scheduler", None) if client.cluster is not None else None
    port = None
    if server is not None and getattr(server, "http_server", None) is not None:
        port = server.http_server.port
    if port is None:
        link = client.dashboard_link
        return link if link and "127.0.0.1" in link else None
    return f"http://{DASHBOARD_HOST}:{port}/status"


def close(client: Any, own_cluster: bool) -> None:
    cluster = client.cluster if own_cluster else None
    client.close()
    if cluster is not None:
        cluster.close()
