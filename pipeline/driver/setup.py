"""From what a user asks for a run (``emergence run`` options or ``pipeline.run``
arguments) to a ``RunSetup``: the workflow, where its cube goes and where its blocks are
computed, with every check on the input made before anything starts or is written.

Both the command line and the Python API build their run here; the engine takes the
result. Light on purpose: ``emergence run`` imports it before Dask, xarray or Zarr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import UsageError
from pipeline.driver.cluster import load_profile
from pipeline.driver.where import Where
from pipeline.plan.config import Workflow
from pipeline.storage.location import StoreLocation

DEFAULT_DATA = "data"
"""A workflow's cube goes to ``<DEFAULT_DATA>/<name>.zarr`` unless told otherwise."""


@dataclass(frozen=True)
class RunSetup:
    """A validated run: ``overwrite`` (replace a cube of another workflow) and ``extend``
    (grow a cube to the workflow's larger axes) exclude each other."""

    workflow: Workflow
    location: StoreLocation
    where: Where
    overwrite: bool = False
    extend: bool = False

    def __post_init__(self) -> None:
        if self.overwrite and self.extend:
            raise UsageError("--overwrite and --extend exclude each other")


def setup_run(
    workflow: Workflow,
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike[str] | None = None,
    connect_timeout: float | None = None,
    cluster: str | None = None,
    cluster_profile: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    extend: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> RunSetup:
    """The run of ``workflow`` into ``out`` (default ``data/<name>.zarr``, made absolute
    here, so that workers started anywhere write the same store).

    Where: a local cluster (``workers``), a running scheduler (``scheduler`` address,
    ``scheduler_file`` or ``$DASK_SCHEDULER_ADDRESS``; ``connect_timeout`` seconds to
    wait for it), or a batch cluster (``cluster`` kind over the workflow's ``[cluster]``
    table and ``cluster_profile``: its keys, or the path of a profile file). Raises
    UsageError for anything that cannot work.
    """
    if cluster_profile is not None and not isinstance(cluster_profile, Mapping):
        cluster_profile = load_profile(os.fspath(cluster_profile))
    where = Where.choose(
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        workers=workers,
        cluster=workflow.cluster.overridden(cluster, cluster_profile),
        connect_timeout=connect_timeout,
        environ=environ,
    )
    location = StoreLocation.of(out if out is not None else default_store(workflow))
    return RunSetup(workflow, location, where, overwrite=overwrite, extend=extend)


def default_store(workflow: Workflow) -> str:
    """``data/<name>.zarr`` (relative to the working directory)."""
    return str(Path(DEFAULT_DATA) / f"{workflow.name}.zarr")
