"""The Zarr nodes of a store: open its root group, its arrays and subgroups, its attributes."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import zarr

from pipeline.core.errors import UsageError
from pipeline.storage.location import StoreLocation


def consolidate(location: StoreLocation) -> None:
    """Consolidate metadata so a plain ``xarray.open_zarr`` opens the cube quietly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(location.zarr_store(), zarr_format=3)


def open_group(location: StoreLocation, mode: Literal["r", "r+", "a", "w", "w-"] = "r+") -> zarr.Group:
    return zarr.open_group(location.zarr_store(), mode=mode, zarr_format=3, use_consolidated=False)


def array(group: zarr.Group, path: str) -> zarr.Array[Any]:
    """The array at ``path`` in ``group`` (TypeError if a group stands there)."""
    node = group[path]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{path!r} is a group, not an array")
    return node


def subgroup(group: zarr.Group, path: str) -> zarr.Group:
    """The group at ``path`` in ``group`` (TypeError if an array stands there)."""
    node = group[path]
    if not isinstance(node, zarr.Group):
        raise TypeError(f"{path!r} is an array, not a group")
    return node


def int_list(value: object, default: list[int]) -> list[int]:
    """A JSON attribute holding a list of integers (``default`` if absent)."""
    if value is None:
        return default
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of integers, got {value!r}")
    return [int(v) for v in value]


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
