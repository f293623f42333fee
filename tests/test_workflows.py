"""Every shipped workflow parses, and runs end to end (run, thresholds, figures) in a pruned
form: each axis cut to its first and last values."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pipeline.plan.config import load_workflow, toml_text
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from tests.helpers import REPO, run_quietly

SHIPPED = sorted((REPO / "workflows").glob("*.toml"))


def pruned(path: Path) -> str:
    """The workflow with every axis cut to its first and last resolved values (``d`` to 0..2)."""
    raw: dict[str, Any] = tomllib.loads(path.read_text())
    wf = load_workflow(path)
    grid = {}
    for axis, values in wf.coords.items():
        kept = [v.item() if hasattr(v, "item") else v for v in (values[:1].tolist() + values[-1:].tolist())]
        grid[axis] = list(dict.fromkeys(kept))
    if "d" in grid:
        grid["d"] = [0, 1, 2]
    if "draw" in grid:
        grid["draw"] = 1
    raw["grid"] = grid
    raw.pop("chunks", None)
    return toml_text(raw)


def test_there_are_shipped_workflows():
    assert {p.name for p in SHIPPED} >= {
        "quickstart.toml",
        "random_walk.toml",
        "hidden_lambda.toml",
        "theorem31.toml",
        "theorem31_unstable.toml",
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_workflow_runs_pruned(path, tmp_path, shared_cluster):
    wf = load_workflow(path)
    assert wf.plan.cells > 0 and wf.source == str(path)
    out = tmp_path / f"{wf.name}.zarr"
    report = run_quietly(pruned(path), out, shared_cluster)
    assert report.complete
    ds = open_cube(out)
    th = thr.compute_thresholds(ds)
    assert thr.format_table(th).startswith("thresholds of")
    saved = plots.save(plots.draw(ds, th), tmp_path / "figures")
    assert saved and all(s.png.exists() for s in saved)
