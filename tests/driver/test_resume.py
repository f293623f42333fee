"""Growing a sweep with --extend (what it would add, what it records), and stores whose
metadata cannot be trusted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from pipeline.cli import main
from pipeline.core.errors import UsageError
from pipeline.driver.resume import new_regions
from tests.helpers import assert_cubes_identical, emergence, run_quietly, write_workflow

BASE = """
experiment = "hidden"
name = "grow"
[grid]
lam = [0.9, 1.0]
noise_ratio = [0.5, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 5] }
T = [1, 10, 1000]
[chunks]
k = 2
T = 2
"""
GROWN = (
    BASE.replace("lam = [0.9, 1.0]", "lam = [0.9, 1.0, 1.05]")
    .replace("range = [1, 5]", "range = [1, 7]")
    .replace("T = [1, 10, 1000]", "T = [1, 10, 1000, 100000]")
)


def test_new_regions_cover_exactly_the_new_cells():
    block = {"a": slice(0, 4), "b": slice(2, 6), "c": slice(0, 3)}
    complete = (3, 4, 2)
    regions = new_regions(block, complete)
    covered = np.zeros((4, 6, 3), dtype=int)
    for r in regions:
        covered[r["a"], r["b"], r["c"]] += 1
    expected = np.zeros_like(covered)
    expected[0:4, 2:6, 0:3] = 1
    expected[0:3, 2:4, 0:2] = 0
    np.testing.assert_array_equal(covered, expected)  # each new cell once, no old cell
    assert new_regions(block, (0, 0, 0)) == [block]


@pytest.mark.slow
def test_extend_computes_only_new_cells_and_equals_a_fresh_run(tmp_path, shared_cluster):
    grown = tmp_path / "grown.zarr"
    first = run_quietly(BASE, grown, shared_cluster)
    old = xr.open_zarr(grown).load()
    with pytest.raises(UsageError, match="different workflow"):
        run_quietly(GROWN, grown, shared_cluster)
    report = run_quietly(GROWN, grown, shared_cluster, extend=True)
    assert first.cells_computed == 2 * 2 * 2 * 5 * 3
    assert report.cells_computed == 3 * 2 * 2 * 7 * 4 - 2 * 2 * 2 * 5 * 3
    extended = xr.open_zarr(grown).load()
    xr.testing.assert_equal(
        extended.sel(lam=old.lam, k=old.k, T=old.T)[["risk", "P"]], old[["risk", "P"]]
    )  # old cells untouched (attrs describe the new grid)
    fresh = tmp_path / "fresh.zarr"
    run_quietly(GROWN, fresh, shared_cluster)
    assert_cubes_identical(grown, fresh, layout=False)
    again = run_quietly(GROWN, grown, shared_cluster)
    assert again.blocks_computed == 0
    (entry,) = json.loads(xr.open_zarr(grown).attrs["history"])  # provenance keeps the extension
    assert entry["event"] == "extend" and entry["cells_before"] == 120 and entry["cells_after"] == 336
    assert entry["when"] and entry["git_commit"]


def test_extend_dry_run_says_what_it_would_add(tmp_path, threaded_cluster, capsys):
    out = tmp_path / "g.zarr"
    run_quietly(BASE, out, threaded_cluster)
    wf = write_workflow(tmp_path, GROWN)
    assert main(["run", str(wf), "--out", str(out), "--extend", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "--extend would add 216 cells (120 -> 336) in 14 blocks (of 16" in text
    assert "extendable" in text or "extends" in text
    assert xr.open_zarr(out).sizes["lam"] == 2  # nothing written


def test_extend_refuses_other_changes(tmp_path, threaded_cluster):
    out = tmp_path / "s.zarr"
    run_quietly(BASE, out, threaded_cluster)
    for changed, why in [
        ("seed = 3\n" + GROWN, "may only add axis values"),
        (BASE.replace("lam = [0.9, 1.0]", "lam = [1.0, 0.9]"), "must keep its 2 existing values"),
        (BASE.replace("lam = [0.9, 1.0]", "lam = [0.95, 1.0, 1.05]"), "must keep"),
    ]:
        with pytest.raises(UsageError, match=why):
            run_quietly(changed, out, threaded_cluster, extend=True)
    assert xr.open_zarr(out).sizes["lam"] == 2


@pytest.mark.slow
def test_corrupt_metadata_is_reported_not_mixed(tmp_path, shared_cluster):
    out = tmp_path / "c.zarr"
    run_quietly(BASE, out, shared_cluster)
    (out / "zarr.json").write_text("{ this is not json")
    wf = write_workflow(tmp_path, BASE)
    for argv in (("info", str(out)), ("run", str(wf), "--out", str(out), "--no-progress")):
        result = emergence(*argv)
        assert result.returncode == 2 and "metadata is unreadable" in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1


def test_missing_done_array_is_reported(tmp_path, threaded_cluster):
    import shutil

    out = tmp_path / "d.zarr"
    run_quietly(BASE, out, threaded_cluster)
    shutil.rmtree(out / "_blocks" / "done")
    with pytest.raises(UsageError, match="metadata is corrupt or incomplete"):
        run_quietly(BASE, out, threaded_cluster)
    assert np.isfinite(xr.open_zarr(out)["risk"].values).all()  # refused, not rebuilt
