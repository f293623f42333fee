"""Where the work of a run happens: one value built once by the CLI or the API.

``Where.local(workers)`` starts a local Dask cluster; ``Where.scheduler(address)`` and
``Where.from_scheduler_file(path)`` connect to a running scheduler; ``Where.batch(spec)``
starts workers through a batch system (dask-jobqueue). ``Where.choose`` builds one from
what a user gave and refuses, before anything starts, what cannot work: an address
Dask cannot parse, a scheduler file that is missing or holds no address.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pipeline.core.errors import UsageError
from pipeline.driver.cluster import ClusterSpec

Kind = Literal["local", "scheduler", "scheduler_file", "batch"]

ADDRESS_EXAMPLE = "tcp://10.0.0.5:8786"


@dataclass(frozen=True)
class Where:
    """The place a run's blocks are computed."""

    kind: Kind
    workers: int | None = None
    """Local worker processes (default: one per core)."""
    address: str | None = None
    """The running scheduler's address (also for ``scheduler_file``: the one it holds)."""
    scheduler_file: str | None = None
    cluster: ClusterSpec | None = None
    connect_timeout: float | None = None
    """Seconds to wait for a running scheduler to answer (None: Dask's
    ``distributed.comm.timeouts.connect``, 30 s unless configured)."""

    @classmethod
    def local(cls, workers: int | None = None) -> Where:
        return cls("local", workers=workers)

    @classmethod
    def scheduler(cls, address: str, connect_timeout: float | None = None) -> Where:
        return cls("scheduler", address=address, connect_timeout=connect_timeout)

    @classmethod
    def from_scheduler_file(cls, path: str, connect_timeout: float | None = None) -> Where:
        """The scheduler whose address ``dask scheduler --scheduler-file PATH`` wrote."""
        return cls(
            "scheduler_file",
            address=_address_in(path),
            scheduler_file=path,
            connect_timeout=connect_timeout,
        )

    @classmethod
    def batch(cls, cluster: ClusterSpec) -> Where:
        return cls("batch", cluster=cluster)

    @classmethod
    def choose(
        cls,
        *,
        scheduler: str | None = None,
        scheduler_file: str | os.PathLike[str] | None = None,
        workers: int | None = None,
        cluster: ClusterSpec | None = None,
        connect_timeout: float | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Where:
        """From command-line style options: a scheduler file, else a scheduler address (or
        ``$DASK_SCHEDULER_ADDRESS``), else a batch cluster, else a local cluster."""
        from_environ = not scheduler and bool(environ.get("DASK_SCHEDULER_ADDRESS"))
        address = scheduler or environ.get("DASK_SCHEDULER_ADDRESS") or None
        if scheduler_file and address:
            raise UsageError("--scheduler and --scheduler-file exclude each other")
        if workers is not None and (scheduler_file or address):
            raise UsageError("--workers is for local clusters; the scheduler has its own workers")
        if connect_timeout is not None:
            if not (scheduler_file or address):
                raise UsageError("a connect timeout is for a running scheduler (--scheduler or --scheduler-file)")
            connect_timeout = _seconds(connect_timeout)
        if scheduler_file:
            return cls.from_scheduler_file(os.fspath(scheduler_file), connect_timeout)
        if address:
            origin = "DASK_SCHEDULER_ADDRESS" if from_environ else "scheduler address"
            return cls.scheduler(checked_address(address, origin), connect_timeout)
        if cluster is not None and cluster.is_batch:
            return cls.batch(cluster)
        return cls.local(workers)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def owns_cluster(self) -> bool:
        """Whether the run starts (and so must stop) the cluster; otherwise it connects
        to a running scheduler."""
        return self.kind in ("local", "batch")

    def describe(self) -> str:
        if self.kind == "local":
            return f"a local cluster ({self.workers or os.cpu_count() or 1} workers at most)"
        if self.kind == "scheduler":
            return f"the Dask scheduler at {self.address}"
        if self.kind == "scheduler_file":
            return f"the Dask scheduler of {self.scheduler_file} (at {self.address})"
        assert self.cluster is not None
        return f"a {self.cluster.kind} batch cluster"


def checked_address(address: str, origin: str = "scheduler address") -> str:
    """``address`` if Dask's own parser reads a scheme, a host and a port in it, else UsageError."""
    from distributed.comm import get_address_host_port, parse_address

    try:
        parse_address(address)
        _, port = get_address_host_port(address)
        if not 0 < port < 2**16:
            raise ValueError(f"port {port} is not between 1 and 65535")
    except Exception as exc:  # ValueError, or a FutureWarning of a retired protocol
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"{origin} {address!r} is not a Dask scheduler address ({why}); expected one like {ADDRESS_EXAMPLE}"
        ) from None
    return address


def _address_in(path: str) -> str:
    """The address a scheduler file holds (UsageError if there is none to read)."""
    try:
        with open(os.path.expanduser(path)) as handle:
            content = json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"scheduler file {path!r} does not exist (is the scheduler running?)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"scheduler file {path!r} cannot be read as a Dask scheduler file: {exc}") from None
    address = content.get("address") if isinstance(content, dict) else None
    if not isinstance(address, str):
        raise UsageError(f"scheduler file {path!r} holds no scheduler address (no 'address' key)")
    return checked_address(address, f"scheduler file {path!r}: address")


def _seconds(value: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"connect timeout {value!r}: must be a number of seconds > 0")
    return seconds
