"""The public Python API (re-exported by ``pipeline``): run a workflow, open a cube,
extract thresholds, draw figures. The ``emergence`` command is a thin layer over the
same functions.

    import pipeline
    report = pipeline.run("workflows/quickstart.toml")      # -> data/quickstart.zarr
    ds = pipeline.open_cube("data/quickstart.zarr")
    th = pipeline.thresholds(ds)
    figures = pipeline.plot(ds)                             # matplotlib Figures
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import UsageError

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from pipeline.driver.engine import RunReport
    from pipeline.plan.config import Workflow


def load(workflow: str | os.PathLike[str] | Mapping[str, Any] | Workflow) -> Workflow:
    """A validated Workflow from a path to a TOML file, TOML text, or a dict of its keys."""
    from pipeline.plan.config import Workflow, load_workflow, parse_workflow, toml_text

    if isinstance(workflow, Workflow):
        return workflow
    if isinstance(workflow, Mapping):
        return parse_workflow(toml_text(workflow))
    text = os.fspath(workflow)
    if "\n" in text or "=" in text:
        return parse_workflow(text)
    return load_workflow(text)


def run(
    workflow: str | os.PathLike[str] | Mapping[str, Any] | Workflow,
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
    progress: bool = False,
    quiet: bool = False,
) -> RunReport:
    """Run (or resume, extend, replace) a workflow into a cube (default ``data/<name>.zarr``).

    Where the work runs: a local cluster (``workers`` processes, default one per core),
    a running scheduler (``scheduler`` address or ``scheduler_file``, or the environment's
    ``DASK_SCHEDULER_ADDRESS``; ``connect_timeout`` seconds to wait for it to answer,
    default Dask's ``distributed.comm.timeouts.connect``), or a batch cluster
    (``cluster="slurm"`` etc. with the ``[cluster]`` keys of the workflow or of
    ``cluster_profile``, a mapping or the path of a profile file).

    Raises ``UsageError`` for bad input and ``RunError`` for a scheduler that does not
    answer (nothing is written in either case), or when blocks failed (re-run to retry them).
    """
    from pipeline.driver import engine
    from pipeline.driver.setup import setup_run

    setup = setup_run(
        load(workflow),
        out,
        workers=workers,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        connect_timeout=connect_timeout,
        cluster=cluster,
        cluster_profile=cluster_profile,
        overwrite=overwrite,
        extend=extend,
    )
    return engine.run(setup, progress=progress, say=(lambda _: None) if quiet else print)


def open_cube(path: str | os.PathLike[str], *, partial: bool = False) -> xr.Dataset:
    """A cube as a lazy ``xarray.Dataset``; an unfinished cube only with ``partial=True``
    (then cells of unfinished blocks are NaN and ``computed`` marks the real ones)."""
    from pipeline.readers.cubes import open_cube as open_checked

    return open_checked(path, partial=partial, speaks="python")


def thresholds(
    cube: str | os.PathLike[str] | xr.Dataset,
    *,
    taus: tuple[float, ...] | None = None,
    growth_tol: float = 0.5,
    partial: bool = False,
) -> xr.Dataset:
    """Every extracted threshold of a cube beside its theory (nothing is written)."""
    from pipeline.readers import thresholding as thr

    ds = _cube(cube, partial)
    opts = thr.options(taus, growth_tol)
    thr.require_levels(ds, opts)
    return thr.compute_thresholds(ds, opts)


def plot(cube: str | os.PathLike[str] | xr.Dataset, *, tau: float | None = None, partial: bool = False) -> list[Figure]:
    """The cube's figures as matplotlib Figures (each labelled with its file stem;
    ``emergence plot`` saves the same figures as PNG and SVG)."""
    from pipeline.readers import plots
    from pipeline.readers import thresholding as thr

    ds = _cube(cube, partial)
    thr.require_levels(ds, thr.options([tau] if tau is not None else None))
    drawn = plots.draw(ds, tau=tau)
    for d in drawn:
        d.figure.set_label(d.stem)
    return [d.figure for d in drawn]


def _cube(cube: str | os.PathLike[str] | xr.Dataset, partial: bool) -> xr.Dataset:
    from pipeline.core.types import BLOCKS_ATTR

    if isinstance(cube, (str, os.PathLike)):
        return open_cube(cube, partial=partial)
    if BLOCKS_ATTR not in cube.attrs:
        raise UsageError("open the cube with pipeline.open_cube(path) first, so that its completeness is known")
    return cube
