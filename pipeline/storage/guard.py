"""Never destroy what is not ours: what a path holds, and the one rule for writing there.

Every command that writes (``run``, ``thresholds``, ``plot``, ``figures``) asks
:func:`check_target` first. It writes only into a new path (nothing there, or an
empty folder) or replaces an output of its own kind that this tool can prove it made:

* a cube or a thresholds store is a Zarr group whose root attribute ``emergence_output``
  says so (cubes of the first format: a ``workflow_fingerprint``) and which holds
  nothing but Zarr nodes (every entry beside ``zarr.json`` is a node with its own
  ``zarr.json``), so a user's file inside is never swept away with it;
* a figure folder holds the manifest ``.emergence-figures.json`` listing the files the
  tool wrote there (only those are ever replaced or removed).

Anything else (a plain file, a folder of other files, another kind of output) is
refused with one line, and nothing is touched, with or without ``--overwrite``.
Replacement goes through :func:`swap_into_place`: the new output is written beside
the old one and moved in only when it is complete.
"""

from __future__ import annotations

import json
import os
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from pipeline.core.errors import UsageError

if TYPE_CHECKING:
    from pipeline.storage.location import StoreLocation

OUTPUT_ATTR = "emergence_output"
FIGURES_MANIFEST = ".emergence-figures.json"
OutputKind = Literal["cube", "thresholds", "figures"]


class Found(Enum):
    """What a path holds."""

    NOTHING = "nothing"
    EMPTY_FOLDER = "an empty folder"
    CUBE = "an emergence cube"
    THRESHOLDS = "an emergence thresholds store"
    FIGURES = "an emergence figure folder"
    FOREIGN_FOLDER = "a folder this tool did not make"
    FILE = "a file"


_KIND_OF = {Found.CUBE: "cube", Found.THRESHOLDS: "thresholds", Found.FIGURES: "figures"}


def identify(location: StoreLocation) -> Found:
    """What ``location`` holds; UsageError if it has Zarr metadata that cannot be read."""
    fs, root = location.fs()
    if not fs.exists(root):
        return Found.NOTHING
    if fs.isfile(root):
        return Found.FILE
    entries = {_name(e) for e in fs.ls(root, detail=False)}
    if not entries:
        return Found.EMPTY_FOLDER
    if "zarr.json" in entries:
        attrs = _root_attributes(fs, f"{root}/zarr.json", location.url)
        kind = attrs.get(OUTPUT_ATTR) or ("cube" if "workflow_fingerprint" in attrs else None)
        if kind in ("cube", "thresholds") and _only_zarr_nodes(fs, root, entries - {"zarr.json"}):
            return Found.CUBE if kind == "cube" else Found.THRESHOLDS
        return Found.FOREIGN_FOLDER
    if FIGURES_MANIFEST in entries and figures_manifest(location) is not None:
        return Found.FIGURES
    return Found.FOREIGN_FOLDER


def check_target(location: StoreLocation, kind: OutputKind, what: str = "--out") -> Found:
    """Refuse (UsageError, one line) unless ``location`` is new or an output of ``kind``
    this tool made; returns what is there."""
    found = identify(location)
    if found in (Found.NOTHING, Found.EMPTY_FOLDER) or _KIND_OF.get(found) == kind:
        return found
    raise UsageError(
        f"{what} {location.url!r} holds {found.value}, not {_article(kind)}; nothing was touched "
        f"(choose another path, or move it away yourself)"
    )


def _article(kind: OutputKind) -> str:
    return {
        "cube": "an emergence cube",
        "thresholds": "an emergence thresholds store",
        "figures": "an emergence figure folder",
    }[kind]


def figures_manifest(location: StoreLocation) -> list[str] | None:
    """Files listed in a figure folder's manifest (None if there is no valid manifest)."""
    fs, root = location.fs()
    try:
        data = json.loads(fs.cat_file(f"{root}/{FIGURES_MANIFEST}"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    files = data.get("files") if isinstance(data, dict) and data.get("tool") == "emergence" else None
    if not isinstance(files, list) or not all(isinstance(f, str) and ".." not in f for f in files):
        return None
    return files


def manifest_text(files: list[str]) -> str:
    """The manifest of a figure folder (sorted, no timestamps: byte-stable)."""
    return json.dumps({"tool": "emergence", "files": sorted(set(files))}, indent=1) + "\n"


def swap_into_place(location: StoreLocation, staged: StoreLocation) -> None:
    """Move the complete output at ``staged`` to ``location``, replacing what is there
    (which the caller has checked is ours). Locally two renames; an interruption between
    them leaves the old output at ``<path>.replaced`` and the new at ``staged``."""
    fs, root = location.fs()
    _, staged_root = staged.fs()
    if location.is_local:
        old = f"{root}.replaced"
        if os.path.lexists(old):
            fs.rm(old, recursive=True)
        if os.path.lexists(root):
            os.rename(root, old)
        os.rename(staged_root, root)
        if os.path.lexists(old):
            fs.rm(old, recursive=True)
        return
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.mv(staged_root, root, recursive=True)


def _name(entry: str) -> str:
    return entry.rstrip("/").rsplit("/", 1)[-1]


def _root_attributes(fs: Any, path: str, url: str) -> dict[str, Any]:
    try:
        meta = json.loads(fs.cat_file(path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{url!r}: cube metadata is unreadable ({type(exc).__name__}: {exc})") from None
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    return attrs if isinstance(attrs, dict) else {}


def _only_zarr_nodes(fs: Any, root: str, names: set[str]) -> bool:
    return all(fs.exists(f"{root}/{name}/zarr.json") for name in names)
