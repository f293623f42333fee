"""Every shipped workflow parses, and runs end to end (run, thresholds, figures) in a pruned
form: each axis cut to its first and last values."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.experiments import get_experiment
from pipeline.plan.config import load_workflow, parse_workflow, toml_text
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from tests.helpers import REPO, run_quietly

SHIPPED = sorted((REPO / "workflows").glob("*.toml"))


def pruned(path: Path) -> str:
    """The workflow with every axis cut to its first and last resolved values (``d`` to 0..2,
    counts to 1)."""
    raw: dict[str, Any] = tomllib.loads(path.read_text())
    wf = load_workflow(path)
    rules = get_experiment(wf.experiment).axis_rules
    grid = {}
    for axis, values in wf.coords.items():
        kept = [v.item() if hasattr(v, "item") else v for v in (values[:1].tolist() + values[-1:].tolist())]
        grid[rules[axis].grid_key] = list(dict.fromkeys(kept))
    if "d" in grid:
        grid["d"] = [0, 1, 2]
    for count in ("draw", "fits"):  # counts of draws and of training sets
        if count in grid:
            grid[count] = 1
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


PRUNED_CELLS = 64


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_workflow_prunes_to_a_small_grid(path):
    """The suite runs every shipped workflow pruned: a companion with 400 filter lengths and
    horizons to 4.5e15 must prune as small as the others."""
    assert parse_workflow(pruned(path)).plan.cells <= PRUNED_CELLS


COMPANIONS = [p for p in SHIPPED if p.stem.endswith("_slopes")]


def test_there_are_companion_workflows_for_the_slope_laws():
    assert {p.stem for p in COMPANIONS} >= {"hidden_spectra_slopes", "random_walk_slopes", "hidden_lambda_slopes"}


@pytest.mark.parametrize("path", COMPANIONS, ids=lambda p: p.name)
def test_companion_measures_only_its_main_workflows_systems(path):
    """``emergence figures`` matches a companion's comparisons with its main workflow's by exact
    coordinates: every system and noise ratio of the companion is one of the main workflow's."""
    companion = load_workflow(path)
    main = load_workflow(path.with_name(path.stem.removesuffix("_slopes") + ".toml"))
    assert companion.experiment == main.experiment
    assert companion.coords["learner"].tolist() == ["truncated_kalman"]
    for axis, values in companion.coords.items():
        if axis in ("k", "T", "learner"):
            continue
        assert set(values.tolist()) <= set(main.coords[axis].tolist()), axis
    assert companion.coords["T"].max() > 1e15 and companion.coords["k"].max() > main.coords["k"].max()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "narrow"),
    [("random_walk_slopes", {}), ("hidden_lambda_slopes", {}), ("hidden_spectra_slopes", {"spectrum": ["1.0^2"]})],
)
def test_companion_resolves_every_slope_within_15_percent(name, narrow, tmp_path, shared_cluster):
    from pipeline.core import verdicts

    raw: dict[str, Any] = tomllib.loads((REPO / "workflows" / f"{name}.toml").read_text())
    raw["grid"].update(narrow)  # the whole hidden_spectra_slopes takes a minute; one spectrum here
    run_quietly(toml_text(raw), tmp_path / "c.zarr", shared_cluster)
    th = thr.compute_thresholds(open_cube(tmp_path / "c.zarr"))
    slope = th["k_star_slope_verdict"]
    assert set(np.asarray(slope.values, dtype=str).ravel()) == {verdicts.AGREES}
    band = th["k_star_slope_band"] / th["k_star_slope_theory"]
    assert float(band.max()) <= 0.15
