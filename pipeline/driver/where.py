"""Where the work of a run happens: one value built once by the CLI or the API.

``Where.local(workers)`` starts a local Dask cluster; ``Where.scheduler(address)`` and
``Where.scheduler_file(path)`` connect to a running scheduler; ``Where.batch(spec)``
starts workers through a batch system (dask-jobqueue).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pipeline.core.errors import UsageError
from pipeline.driver.cluster import ClusterSpec

Kind = Literal["local", "scheduler", "scheduler_file", "batch"]


@dataclass(frozen=True)
class Where:
    """The place a run's blocks are computed."""

    kind: Kind
    workers: int | None = None
    """Local worker processes (default: one per core)."""
    address: str | None = None
    scheduler_file: str | None = None
    cluster: ClusterSpec | None = None

    @classmethod
    def local(cls, workers: int | None = None) -> Where:
        return cls("local", workers=workers)

    @classmethod
    def scheduler(cls, address: str) -> Where:
        return cls("scheduler", address=address)

    @classmethod
    def from_scheduler_file(cls, path: str) -> Where:
        return cls("scheduler_file", scheduler_file=path)

    @classmethod
    def batch(cls, cluster: ClusterSpec) -> Where:
        return cls("batch", cluster=cluster)

    @classmethod
    def choose(
        cls,
        *,
        scheduler: str | None = None,
        scheduler_file: str | None = None,
        workers: int | None = None,
        cluster: ClusterSpec | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Where:
        """From command-line style options: a scheduler file, else a scheduler address (or
        ``$DASK_SCHEDULER_ADDRESS``), else a batch cluster, else a local cluster."""
        address = scheduler or environ.get("DASK_SCHEDULER_ADDRESS") or None
        if scheduler_file and address:
            raise UsageError("--scheduler and --scheduler-file exclude each other")
        if workers is not None and (scheduler_file or address):
            raise UsageError("--workers is for local clusters; the scheduler has its own workers")
        if scheduler_file:
            return cls.from_scheduler_file(scheduler_file)
        if address:
            return cls.scheduler(address)
        if cluster is not None and cluster.is_batch:
            return cls.batch(cluster)
        return cls.local(workers)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def owns_cluster(self) -> bool:
        """Whether the run starts (and so must stop) the cluster."""
        return self.kind in ("local", "batch")

    def describe(self) -> str:
        if self.kind == "local":
            return f"a local cluster ({self.workers or os.cpu_count() or 1} workers at most)"
        if self.kind == "scheduler":
            return f"the Dask scheduler at {self.address}"
        if self.kind == "scheduler_file":
            return f"the Dask scheduler of {self.scheduler_file}"
        assert self.cluster is not None
        return f"a {self.cluster.kind} batch cluster"
