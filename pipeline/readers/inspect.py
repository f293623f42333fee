"""``emergence info`` and ``emergence query``: read-only views of a cube."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from pipeline.core.errors import UsageError
from pipeline.core.types import PARTIAL_ATTR
from pipeline.readers.cubes import completeness, require_cube
from pipeline.storage import layout, ledger, nodes
from pipeline.storage.guard import Found, identify
from pipeline.storage.location import StoreLocation

PROVENANCE_KEYS = (
    "experiment",
    "workflow_fingerprint",
    "workflow_file",
    "created",
    "package_version",
    "git_commit",
    "library_versions",
    "block_chunks",
    "history",
)


def cube_info(location: StoreLocation) -> dict[str, Any]:
    """Dims and sizes, variables, block completion and provenance of a cube; for a
    thresholds store, what it holds and which cube it was drawn from."""
    if identify(location) is Found.THRESHOLDS:
        return thresholds_info(location)
    require_cube(location)
    attrs = nodes.read_attrs(location)
    ds = layout.open_dataset(location, dask=False)  # sizes and attributes only: no dask import
    done = ledger.count_done(location)
    provenance = {k: attrs.get(k) for k in PROVENANCE_KEYS}
    for k in ("library_versions", "block_chunks", "history"):
        value = provenance[k]
        if isinstance(value, str):
            provenance[k] = json.loads(value)
    return {
        "kind": "cube",
        "store": location.url,
        "dims": {d: int(n) for d, n in ds.sizes.items()},
        "variables": _variables(ds),
        "blocks_done": done,
        "blocks_total": int(attrs["blocks_total"]),
        "complete": done == int(attrs["blocks_total"]),
        "provenance": provenance,
        "workflow": attrs.get("workflow", ""),
    }


def thresholds_info(location: StoreLocation) -> dict[str, Any]:
    ds = xr.open_zarr(location.zarr_store(), consolidated=True)
    return {
        "kind": "thresholds",
        "store": location.url,
        "source": ds.attrs.get("source", ""),
        "experiment": ds.attrs.get("experiment", ""),
        "partial": ds.attrs.get(PARTIAL_ATTR, ""),
        "dims": {d: int(n) for d, n in ds.sizes.items()},
        "variables": _variables(ds),
        "created": ds.attrs.get("created", ""),
    }


def _variables(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    return {
        str(name): {"dims": list(v.dims), "long_name": v.attrs.get("long_name", ""), "units": v.attrs.get("units", "")}
        for name, v in ds.data_vars.items()
    }


def format_info(info: dict[str, Any]) -> str:
    if info["kind"] == "thresholds":
        lines = [
            f"thresholds store {info['store']} ({info['experiment']}) of the cube {info['source']}"
            + (f" [{info['partial']}]" if info["partial"] else ""),
            "dims: " + ", ".join(f"{d}={n}" for d, n in info["dims"].items()),
            "variables:",
        ]
        lines += [
            f"  {name:22s} ({', '.join(v['dims'])})  {v['long_name']} [{v['units']}]"
            for name, v in info["variables"].items()
        ]
        return "\n".join(lines)
    lines = [f"cube {info['store']}"]
    lines.append("dims: " + ", ".join(f"{d}={n}" for d, n in info["dims"].items()))
    state = "complete" if info["complete"] else "INCOMPLETE (re-run to resume)"
    lines.append(f"blocks: {info['blocks_done']}/{info['blocks_total']} done, {state}")
    lines.append("variables:")
    for name, v in info["variables"].items():
        lines.append(f"  {name:14s} ({', '.join(v['dims'])})  {v['long_name']} [{v['units']}]")
    lines.append("provenance:")
    for key, value in info["provenance"].items():
        lines.append(f"  {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return "\n".join(lines)


def parse_selection(
    ds: xr.Dataset, selections: Sequence[str], note: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """``DIM=VALUE`` (exact) and ``DIM~VALUE`` (nearest) strings -> coordinate values to select.

    ``=`` matches the stored value exactly on every axis (a float compared as stored);
    a miss names the values either side. ``~`` takes the nearest value of a numeric axis
    inside its range and tells ``note`` which.
    """
    chosen: dict[str, Any] = {}
    for item in selections:
        at = min((i for i in (item.find("="), item.find("~")) if i >= 0), default=-1)
        dim, op, text = item[:at].strip(), item[at : at + 1], item[at + 1 :]
        if at < 0 or not dim:
            raise UsageError(f"--sel {item!r}: expected DIM=VALUE (exact) or DIM~VALUE (nearest)")
        if dim not in ds.dims:
            raise UsageError(f"--sel {item!r}: unknown dim {dim!r}; dims are {list(ds.dims)}")
        coord = ds[dim].values
        if coord.dtype.kind not in "fiu":
            values = [str(v) for v in coord]
            if op == "~":
                raise UsageError(f"--sel {dim}~{text}: nearest needs a numeric axis; values are {values}")
            if text not in values:
                raise UsageError(f"--sel {dim}={text!r}: not on the axis; values are {values}")
            chosen[dim] = text
            continue
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--sel {dim}{op}{text!r}: not a number") from None
        chosen[dim] = _nearest(dim, coord, value, text, note) if op == "~" else _exact(dim, coord, value, text)
    return chosen


def _exact(dim: str, coord: np.ndarray, value: float, text: str) -> Any:
    hits = np.flatnonzero(coord == value)
    if not hits.size:
        below, above = coord[coord < value], coord[coord > value]
        either_side = [_shown(v) for v in (below.max() if below.size else None, above.min() if above.size else None)]
        nearby = " and ".join(v for v in either_side if v is not None)
        raise UsageError(
            f"--sel {dim}={text}: not on the axis (values beside it: {nearby}); --sel {dim}~{text} takes the nearest"
        )
    return coord[hits[0]].item()


def _nearest(dim: str, coord: np.ndarray, value: float, text: str, note: Callable[[str], None] | None) -> Any:
    lo, hi = coord.min().item(), coord.max().item()
    if not lo <= value <= hi:
        raise UsageError(f"--sel {dim}~{text}: outside the axis range [{_shown(lo)}, {_shown(hi)}]")
    picked = coord[int(np.argmin(np.abs(coord - value)))].item()
    if note is not None:
        note(f"{dim}: nearest to {text} is {_shown(picked)}")
    return picked


def _shown(value: Any) -> str | None:
    """A coordinate as it can be typed back (floats in full: ``repr``)."""
    if value is None:
        return None
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def query(
    location: StoreLocation,
    selections: Sequence[str],
    variables: Sequence[str] | None,
    fmt: str = "table",
    note: Callable[[str], None] | None = None,
) -> str:
    """Cells of a cube selected by ``DIM=VALUE`` (exact) or ``DIM~VALUE`` (nearest; ``note``
    names the value taken), as a table, CSV or JSON records.

    A selection along a dim that a chosen variable lacks is ignored for it, with a note;
    cells of unfinished blocks are NaN (the note says how many blocks are done)."""
    note = note or (lambda text: print(text, file=sys.stderr))
    require_cube(location)
    ds = layout.open_dataset(location)
    names = list(variables) if variables else [str(n) for n in ds.data_vars]
    for name in names:
        if name not in ds.data_vars:
            raise UsageError(f"--var {name!r}: unknown variable; variables are {list(ds.data_vars)}")
    chosen = parse_selection(ds, selections, note)
    dims = set().union(*(ds[n].dims for n in names))
    ignored = sorted(d for d in chosen if d not in dims)
    if ignored:
        note(
            f"note: {', '.join(names)} {'has' if len(names) == 1 else 'have'} no dim "
            f"{' or '.join(ignored)}; --sel {', '.join(ignored)} ignored"
        )
    state = completeness(location)
    if not state.complete:
        note(f"note: {state.label} done; cells of unfinished blocks are NaN")
    sub = ds[names].sel({d: v for d, v in chosen.items() if d in dims}).load()
    cells = int(np.prod(list(sub.sizes.values()))) if sub.sizes else 1
    if cells > 100_000:
        raise UsageError(f"the selection has {cells:,} cells; narrow it with --sel")
    frame = sub.to_dataframe() if sub.sizes else sub.to_pandas().to_frame().T
    for dim, value in chosen.items():
        if dim in dims and dim not in frame.columns and dim not in (frame.index.names or []):
            frame[dim] = value
    if fmt == "csv":
        return str(frame.to_csv().rstrip("\n"))
    if fmt == "json":
        return records_json(frame.reset_index().to_dict(orient="records"))
    with _wide_pandas():
        return str(frame.to_string())


def records_json(records: list[dict[Any, Any]]) -> str:
    """Rows as a JSON array of objects whose floats read back to the same bits: the shortest
    round-trip form, an unfinished cell's NaN as ``null`` and an infinity as ``1e999`` /
    ``-1e999`` (strict JSON numbers that Python and JavaScript read as infinite; ``log10_risk``
    of an exactly zero risk is ``-inf``)."""

    def value(v: Any) -> str:
        v = v.item() if isinstance(v, np.generic) else v
        if isinstance(v, float) and not math.isfinite(v):
            return "null" if math.isnan(v) else ("1e999" if v > 0 else "-1e999")
        return json.dumps(v)

    rows = ("{" + ",".join(f"{json.dumps(str(k))}:{value(v)}" for k, v in r.items()) + "}" for r in records)
    return "[" + ",".join(rows) + "]"


class _wide_pandas:
    def __enter__(self) -> None:
        import pandas as pd

        self._ctx = pd.option_context(
            "display.max_rows", 10_000, "display.width", 200, "display.max_columns", 50, "display.precision", 12
        )
        self._ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
