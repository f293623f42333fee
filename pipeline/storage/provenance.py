"""Provenance of a cube: how it was made (workflow, plan, versions, commit, time) and its history."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.plan.grid import BlockPlan
from pipeline.storage.guard import OUTPUT_ATTR

FORMAT_VERSION = 2
"""2: theory stored as ``critical_d_theory``, ``emergence_output`` marker, ``history``."""
LIBRARIES = ("numpy", "scipy", "xarray", "zarr", "dask", "distributed")


def package_version() -> str:
    try:
        return metadata.version("emergence-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(
    workflow_text: str,
    fingerprint: str,
    base_fingerprint: str,
    experiment: str,
    plan: BlockPlan,
    workflow_file: str | None = None,
) -> dict[str, Any]:
    """Dataset attributes recording how a cube was made."""
    return {
        "title": f"emergence cube ({experiment})",
        OUTPUT_ATTR: "cube",
        "experiment": experiment,
        "workflow": workflow_text,
        "workflow_file": workflow_file or "",
        "workflow_fingerprint": fingerprint,
        "workflow_base_fingerprint": base_fingerprint,
        "block_chunks": json.dumps(dict(zip(plan.axes, plan.chunks, strict=True))),
        "blocks_total": plan.total,
        "tasks_total": plan.tasks_total,
        "package_version": package_version(),
        "git_commit": git_commit(),
        "library_versions": json.dumps(
            {lib: _version(lib) for lib in LIBRARIES} | {"python": platform.python_version()}
        ),
        "created": now(),
        "history": json.dumps([]),
        "cube_format": FORMAT_VERSION,
        "Conventions": "CF-1.10",
    }


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def history_entry(event: str, cells_before: int, cells_after: int) -> dict[str, Any]:
    """One entry of a cube's ``history`` attribute (JSON list): what changed, when, by which code."""
    return {
        "event": event,
        "when": now(),
        "cells_before": cells_before,
        "cells_after": cells_after,
        "git_commit": git_commit(),
        "package_version": package_version(),
    }


def _version(lib: str) -> str:
    try:
        return metadata.version(lib)
    except metadata.PackageNotFoundError:
        return "absent"
