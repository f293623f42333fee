"""Opening a cube for reading: the one completeness check every reader goes through.

``summary``, ``thresholds``, ``plot``, ``figures`` and the Python API read cubes only
through :func:`open_cube`. An incomplete cube is refused with one line naming the
blocks done and the command that finishes it, unless ``partial`` is asked for; then
every result cell of an unfinished block is NaN, the boolean ``computed`` over the
cube's axes says which cells are real, and the attribute ``emergence_partial``
("partial: 6/16 blocks") travels into every output drawn from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.errors import UsageError
from pipeline.core.types import BLOCKS_ATTR, COMPUTED, PARTIAL_ATTR
from pipeline.core.wording import count
from pipeline.storage.guard import Found, identify
from pipeline.storage.location import StoreLocation

if TYPE_CHECKING:
    import xarray as xr


@dataclass(frozen=True)
class Completeness:
    done: int
    total: int

    @property
    def complete(self) -> bool:
        return self.done == self.total

    @property
    def label(self) -> str:
        return f"partial: {self.done}/{count(self.total, 'block')}"


def completeness(location: StoreLocation) -> Completeness:
    from pipeline.storage import ledger, nodes

    attrs = nodes.read_attrs(location)
    return Completeness(ledger.count_done(location), int(attrs["blocks_total"]))


def open_cube(
    cube: str | os.PathLike[str] | StoreLocation, *, partial: bool = False, speaks: str = "cli"
) -> xr.Dataset:
    """Open a cube lazily with xarray after checking that it is a cube and complete.

    ``partial=True`` opens an incomplete cube with its unfinished cells masked (see the
    module docstring). Raises UsageError (one line) otherwise, worded for the command line
    (``speaks="cli"``: ``emergence run ...``, ``--partial``) or for Python (``"python"``:
    ``pipeline.run(...)``, ``partial=True``).
    """
    from pipeline.experiments import experiment_of
    from pipeline.storage import layout, nodes

    location = StoreLocation.of(cube)
    require_cube(location)
    attrs = nodes.read_attrs(location)
    state = completeness(location)
    if not state.complete and not partial:
        raise UsageError(
            f"{location.url} is incomplete: {state.done}/{count(state.total, 'block')} done; "
            f"finish it with `{finish_command(location, attrs, speaks)}`, or pass "
            f"{'partial=True' if speaks == 'python' else '--partial'} to read what is done"
        )
    ds = layout.open_dataset(location)
    ds = experiment_of(ds).adapt(ds)
    ds.attrs[BLOCKS_ATTR] = f"{state.done}/{state.total}"
    if not state.complete:
        ds = _mask_unfinished(ds, location, attrs)
        ds.attrs[PARTIAL_ATTR] = state.label
    return ds


def require_cube(location: StoreLocation) -> None:
    """UsageError (one line) unless ``location`` holds a cube; a thresholds store says whose it is."""
    found = identify(location)
    if found is Found.CUBE:
        return
    if found is Found.THRESHOLDS:
        source = _thresholds_source(location)
        raise UsageError(
            f"{location.url} is a thresholds store (of the cube {source}), not a cube; "
            f"give the cube{f' {source}' if source else ''}"
        )
    raise UsageError(f"{location.url!r} is not an emergence cube (it holds {found.value})")


def finish_command(location: StoreLocation, attrs: dict[str, object], speaks: str = "cli") -> str:
    """The command that finishes the cube at ``location``, on the command line or in Python."""
    workflow = str(attrs.get("workflow_file") or "") or "<its workflow>"
    if speaks == "python":
        return f"pipeline.run({workflow!r}, out={location.url!r})"
    return f"emergence run {workflow} --out {location.url}"


def result_variables(ds: xr.Dataset) -> list[str]:
    """Names of the variables that blocks write (the rest of the cube is static)."""
    names = ds.attrs.get("result_variables")
    if names:
        return [n for n in json.loads(str(names)) if n in ds]
    from pipeline.experiments import get_experiment
    from pipeline.plan.config import parse_workflow  # cubes of the first format

    wf = parse_workflow(str(ds.attrs["workflow"]))
    return [n for n in get_experiment(wf.experiment).variables(wf.settings) if n in ds]


def computed_cells(
    nblocks_done: np.ndarray, chunks: tuple[int, ...], shape: tuple[int, ...], complete_shape: tuple[int, ...]
) -> np.ndarray:
    """Boolean over the grid: cells of done blocks, and cells inside the region known
    complete before the latest extension."""
    mask = nblocks_done
    for axis, (c, n) in enumerate(zip(chunks, shape, strict=True)):
        mask = np.repeat(mask, c, axis=axis).take(np.arange(n), axis=axis)
    if all(complete_shape):
        mask[tuple(slice(0, n) for n in complete_shape)] = True
    return np.asarray(mask, dtype=bool)


def _mask_unfinished(ds: xr.Dataset, location: StoreLocation, attrs: dict[str, object]) -> xr.Dataset:
    import xarray as xr

    from pipeline.storage import ledger

    chunks_by_axis = json.loads(str(attrs["block_chunks"]))
    axes = tuple(chunks_by_axis)
    shape = tuple(ds.sizes[a] for a in axes)
    mask = computed_cells(
        ledger.done_marks(location), tuple(int(chunks_by_axis[a]) for a in axes), shape, ledger.complete_shape(location)
    )
    computed = xr.DataArray(
        mask,
        dims=axes,
        coords={a: ds[a] for a in axes},
        attrs={"long_name": "cell computed (partial cube)", "units": "1"},
    )
    out = ds.copy()
    for name in result_variables(ds):
        dims = ds[name].dims
        own = computed.all([a for a in axes if a not in dims]).transpose(*(d for d in dims if d in axes))
        out[name] = ds[name].where(own)  # broadcast along inner dims (no grid axis)
    out[COMPUTED] = computed
    return out


def _thresholds_source(location: StoreLocation) -> str:
    fs, root = location.fs()
    try:
        meta = json.loads(fs.cat_file(f"{root}/zarr.json"))
        return str(meta.get("attributes", {}).get("source", ""))
    except (OSError, ValueError):
        return ""
