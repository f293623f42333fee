"""Shared fixtures: a real Dask LocalCluster, small workflows, cube comparison."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
VOLATILE_ATTRS = ("created", "git_commit")
LAYOUT_ATTRS = ("workflow", "block_chunks", "blocks_total")


@pytest.fixture(scope="session")
def dask_scheduler():
    """Address of a real LocalCluster (2 worker processes) shared by the session."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=40) as cluster:
        yield cluster.scheduler_address


def comparable(ds: xr.Dataset, layout: bool = True) -> xr.Dataset:
    """A loaded copy without attributes that legitimately differ between runs
    (and, with ``layout=False``, between chunkings of the same grid)."""
    out = ds.load().copy()
    drop = VOLATILE_ATTRS + (() if layout else LAYOUT_ATTRS)
    out.attrs = {k: v for k, v in out.attrs.items() if k not in drop}
    return out


def emergence(*args: str, env: dict[str, str] | None = None, timeout: float = 240,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or REPO)


def write_workflow(folder: Path, text: str, name: str = "wf.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path
