"""Zarr layout of a cube: template, region writes, done-marks, provenance.

A cube is a Zarr v3 group written by xarray (so ``xarray.open_zarr`` just works).
The subgroup ``_blocks`` holds ``done``, one uint8 per block of the block plan
(chunks of one element, so each block's mark has its own object and one writer);
resume trusts these marks, never the presence of chunk bytes (Zarr does not
store chunks equal to the fill value).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import xarray as xr
import zarr

from pipeline.errors import UsageError
from pipeline.experiments.base import VariableSpec
from pipeline.grid import BlockKey, BlockPlan

DONE_GROUP = "_blocks"
FORMAT_VERSION = 1
LIBRARIES = ("numpy", "scipy", "xarray", "zarr", "dask", "distributed")


@dataclass(frozen=True)
class StoreLocation:
    """Where a cube lives: a local path or an fsspec URL plus storage options."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    def fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.url, **dict(self.storage_options))
        return fs, root.rstrip("/")

    def zarr_store(self) -> Any:
        """Something ``zarr.open_group`` and ``xarray`` accept."""
        if self.is_local:
            return self.url.removeprefix("file://")
        return zarr.storage.FsspecStore.from_url(self.url, storage_options=dict(self.storage_options))

    def exists(self) -> bool:
        fs, root = self.fs()
        return fs.exists(f"{root}/zarr.json")

    def anything_here(self) -> bool:
        fs, root = self.fs()
        return fs.exists(root)


def package_version() -> str:
    try:
        return metadata.version("emergence-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(workflow_text: str, fingerprint: str, experiment: str, plan: BlockPlan) -> dict[str, Any]:
    """Dataset attributes recording how a cube was made."""
    return {
        "title": f"emergence cube ({experiment})",
        "experiment": experiment,
        "workflow": workflow_text,
        "workflow_fingerprint": fingerprint,
        "block_chunks": json.dumps(dict(zip(plan.axes, plan.chunks, strict=True))),
        "blocks_total": plan.total,
        "package_version": package_version(),
        "git_commit": git_commit(),
        "library_versions": json.dumps({lib: _version(lib) for lib in LIBRARIES}
                                       | {"python": platform.python_version()}),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cube_format": FORMAT_VERSION,
        "Conventions": "CF-1.10",
    }


def _version(lib: str) -> str:
    try:
        return metadata.version(lib)
    except metadata.PackageNotFoundError:
        return "absent"


def _fill(dtype: str) -> Any:
    return {"f": np.nan, "b": False, "i": 0}[np.dtype(dtype).kind]


def result_compressors(dtype: str) -> tuple[Any, ...]:
    """Codec of the blocked result variables: none.

    Risk-like float64 values have nearly full-entropy mantissas: Zstd level 1 keeps
    ~0.93-0.96 of the raw size yet doubles the cost of writing a block, which is
    already as large as computing it (hidden kernel ~0.16 s vs Zstd-1 write ~0.15 s
    vs raw write ~0.06 s per 2^20-cell block; benchmarks/, issue 6). Chunks that are
    entirely fill (e.g. observed cells with d > family_dim) are not stored at all.
    """
    return ()


def template(
    coords: Mapping[str, np.ndarray],
    static: xr.Dataset,
    variables: Mapping[str, VariableSpec],
    plan: BlockPlan,
    attrs: Mapping[str, Any],
) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """The lazy cube (dask-backed result variables) and its Zarr encoding."""
    import dask.array as da

    ds = static.copy()
    for axis in plan.axes:
        values = coords[axis]
        if values.dtype == object:
            values = np.array([str(v) for v in values], dtype=object)
        ds = ds.assign_coords({axis: (axis, values)})
    encoding: dict[str, dict[str, Any]] = {}
    for name, spec in variables.items():
        shape = tuple(len(coords[d]) for d in spec.dims)
        chunks = plan.chunk_of(spec.dims)
        data = da.full(shape, _fill(spec.dtype), dtype=spec.dtype, chunks=chunks)
        var_attrs = {"long_name": spec.long_name, "units": spec.units}
        if spec.description:
            var_attrs["description"] = spec.description
        ds[name] = xr.Variable(spec.dims, data, var_attrs)
        encoding[name] = {"chunks": chunks, "compressors": result_compressors(spec.dtype)}
        if np.dtype(spec.dtype).kind == "f":
            encoding[name]["_FillValue"] = np.nan
    ds.attrs.update(attrs)
    return ds, encoding


def create_cube(location: StoreLocation, ds: xr.Dataset, encoding: Mapping[str, Any], plan: BlockPlan) -> None:
    """Write metadata, coordinates, static variables and the empty done-mark array.

    Result arrays stay unwritten (their chunks are filled block by block).
    """
    fs, root = location.fs()
    if fs.exists(root):
        fs.rm(root, recursive=True)
    ds.to_zarr(location.zarr_store(), mode="w", compute=False, consolidated=False,
               zarr_format=3, encoding=dict(encoding))
    group = open_group(location)
    blocks = group.create_group(DONE_GROUP, attributes={
        "description": "1 where the block of the block plan is computed and written",
        "axes": list(plan.axes), "chunks": list(plan.chunks),
    })
    blocks.create_array("done", shape=plan.nblocks, chunks=(1,) * len(plan.axes),
                        dtype="uint8", fill_value=0, dimension_names=[f"block_{a}" for a in plan.axes])
    consolidate(location)


def consolidate(location: StoreLocation) -> None:
    """Consolidate metadata so a plain ``xarray.open_zarr`` opens the cube quietly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(location.zarr_store(), zarr_format=3)


def open_group(location: StoreLocation, mode: str = "r+") -> zarr.Group:
    return zarr.open_group(location.zarr_store(), mode=mode, zarr_format=3, use_consolidated=False)


def write_block(
    group: zarr.Group,
    key: BlockKey,
    slices: Mapping[str, slice],
    arrays: Mapping[str, np.ndarray],
    variables: Mapping[str, VariableSpec],
) -> list[str]:
    """Write one block's region of every variable this block owns.

    A variable whose dims omit an axis (e.g. ``bounded`` has no ``T``) is written only
    by the blocks at chunk index 0 along the omitted axes, so every chunk has exactly
    one writer. Returns the names written.
    """
    axes = list(slices)
    written = []
    for name, spec in variables.items():
        omitted = [i for i, a in enumerate(axes) if a not in spec.dims]
        if any(key[i] != 0 for i in omitted):
            continue
        region = tuple(slices[d] for d in spec.dims)
        group[name][region] = arrays[name]
        written.append(name)
    return written


def mark_done(group: zarr.Group, key: BlockKey) -> None:
    """Record that block ``key`` is fully written (call only after ``write_block``)."""
    group[f"{DONE_GROUP}/done"][key] = 1


def done_blocks(group: zarr.Group) -> set[BlockKey]:
    done = group[f"{DONE_GROUP}/done"][...]
    return {tuple(int(i) for i in idx) for idx in np.argwhere(done == 1)}


def read_attrs(location: StoreLocation) -> dict[str, Any]:
    """Root attributes of a cube; UsageError if the path holds no readable cube."""
    if not location.exists():
        raise UsageError(f"{location.url!r} is not an emergence cube (no zarr.json)")
    try:
        attrs = dict(open_group(location, mode="r").attrs)
    except Exception as exc:  # zarr raises many types for corrupt metadata
        raise UsageError(f"{location.url!r}: cube metadata is unreadable ({type(exc).__name__}: {exc})") from None
    if "workflow_fingerprint" not in attrs:
        raise UsageError(f"{location.url!r} is a Zarr group but not an emergence cube (no workflow_fingerprint)")
    return attrs


def open_cube(location: StoreLocation | str, *, dask: bool = True) -> xr.Dataset:
    """Open a cube lazily with xarray (dask-backed; ``dask=False`` opens it without
    dask, which spares a worker the ~1 s import of ``dask.array``)."""
    loc = location if isinstance(location, StoreLocation) else StoreLocation(location)
    read_attrs(loc)
    if not dask:
        return xr.open_zarr(loc.zarr_store(), consolidated=True, zarr_format=3, chunks=None)
    return xr.open_zarr(loc.zarr_store(), consolidated=True, zarr_format=3)



def grow_cube(
    location: StoreLocation,
    coords: Mapping[str, np.ndarray],
    static: xr.Dataset,
    variables: Mapping[str, VariableSpec],
    plan: BlockPlan,
    complete_shape: tuple[int, ...],
    attrs: Mapping[str, Any],
) -> None:
    """Resize a cube to larger axes (old values first), rewrite coordinates and static
    variables, and clear the done-marks of blocks that reach outside ``complete_shape``.

    The root attributes (workflow, fingerprint) are written last, so an interrupted
    extension is detected as a shape mismatch rather than silently mixed.
    """
    group = open_group(location)
    for axis in plan.axes:
        values = coords[axis]
        group[axis].resize((len(values),))
        group[axis][:] = np.array([str(v) for v in values], dtype=object) if values.dtype == object else values
    for name, var in static.variables.items():
        if name in plan.axes:
            continue
        if name not in group:
            raise UsageError(f"--extend: the cube has no static variable {name!r}; rebuild it with --overwrite")
        group[name].resize(var.shape)
        group[name][...] = var.values
    for name, spec in variables.items():
        group[name].resize(tuple(len(coords[d]) for d in spec.dims))
    done = group[f"{DONE_GROUP}/done"]
    done.resize(plan.nblocks)
    marks = done[...]
    for key in plan.keys():
        slices = plan.slices(key)
        inside = all(s.stop <= n for s, n in zip(slices.values(), complete_shape, strict=True))
        if not inside and marks[key]:
            done[key] = 0
    done.attrs["complete_shape"] = list(complete_shape)
    group.attrs.update(dict(attrs))
    consolidate(location)
