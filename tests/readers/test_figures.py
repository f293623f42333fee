"""``emergence figures``: runs what is missing or stale, skips what is up to date, writes an index."""

from __future__ import annotations

import argparse
import shutil

import pytest
import xarray as xr

from pipeline.core.errors import UsageError
from pipeline.readers import figures, plots
from pipeline.readers.cubes import open_cube
from pipeline.readers.figures import add_figures_parser
from pipeline.readers.plots import add_plot_parser
from pipeline.readers.thresholding import add_thresholds_parser
from pipeline.storage.location import StoreLocation
from pipeline.storage.nodes import read_attrs

TINY = """experiment = "hidden"
name = "tiny"
[grid]
lam = [1.0]
noise_ratio = [1.0, 10.0]
learner = ["truncated_kalman"]
k = { range = [1, 8] }
T = { geom = [10, 1e4], num = 4 }
"""


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, threaded_cluster):
    """A gallery made once from TINY: (root, results, messages). Tests only read it; a test
    that writes works on its own copy (``own_gallery``)."""
    root = tmp_path_factory.mktemp("gallery")
    (root / "wf").mkdir()
    (root / "wf" / "tiny.toml").write_text(TINY)
    said: list[str] = []
    results = figures.regenerate(root / "wf", root / "data", root / "out", where=threaded_cluster, say=said.append)
    return root, results, said


@pytest.fixture
def own_gallery(gallery, tmp_path):
    """This test's copy of the gallery's folders (workflows, cubes, figures)."""
    root = tmp_path / "gallery"
    shutil.copytree(gallery[0], root)
    return root


def test_first_run_makes_cube_thresholds_figures_index(gallery):
    root, results, said = gallery
    (r,) = results
    assert r.status == "new" and r.ran
    assert (root / "data" / "tiny.zarr" / "zarr.json").exists()
    th = xr.open_zarr(root / "data" / "tiny.thresholds.zarr")
    assert set(th["k_star"].dims) == {"lam", "noise_ratio", "learner", "T", "tau"}
    assert (root / "out" / "tiny.thresholds.txt").read_text().startswith("thresholds of")
    assert len(r.plots) == 3
    md = (root / "out" / "index.md").read_text()
    page = (root / "out" / "index.html").read_text()
    for p in r.plots:
        assert p.png.exists() and p.svg.exists()
        assert f"](tiny/{p.png.name})" in md and f'src="tiny/{p.png.name}"' in page
        assert p.caption in md
    assert "emergence plot" in md and str(root / "wf" / "tiny.toml") in md
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert any("is new; running" in line for line in said)
    assert "Generated" not in md and "Generated" not in page  # no timestamps in tracked files


def test_up_to_date_cube_is_skipped(own_gallery, threaded_cluster, monkeypatch):
    root = own_gallery
    created = read_attrs(StoreLocation(str(root / "data" / "tiny.zarr")))["created"]
    (root / "wf2").mkdir()
    (root / "wf2" / "tiny.toml").write_text("# only a comment differs\n" + TINY)
    monkeypatch.setattr(plots, "draw", lambda *a, **k: [])

    def no_run(*args, **kwargs):
        raise AssertionError("an up-to-date cube must not be run")

    monkeypatch.setattr("pipeline.driver.engine.run", no_run)
    said: list[str] = []
    (r,) = figures.regenerate(root / "wf2", root / "data", root / "out2", where=threaded_cluster, say=said.append)
    assert r.status == "complete" and not r.ran
    assert read_attrs(StoreLocation(str(root / "data" / "tiny.zarr")))["created"] == created
    assert "up to date, not re-run" in said[0]


def test_cli_subcommands(gallery, tmp_path, capsys):
    root, _, _ = gallery
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    for add in (add_thresholds_parser, add_plot_parser, add_figures_parser):
        add(sub)
    store = str(root / "data" / "tiny.zarr")
    out = str(tmp_path / "cli.thresholds.zarr")
    args = parser.parse_args(["thresholds", store, "--out", out, "--tau", "1", "0.1"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "workflow tiny" in printed and "disagreements with theory" in printed
    assert list(xr.open_zarr(out)["tau"].values) == [1.0, 0.1]
    bad = parser.parse_args(["thresholds", store, "--tau", "0"])
    with pytest.raises(UsageError):
        bad.func(bad)
    missing = parser.parse_args(["plot", str(root / "nothing.zarr")])
    with pytest.raises(UsageError):
        missing.func(missing)
    args = parser.parse_args(["figures", "--workflows", "w", "--data", "d", "--out", "o", "--workers", "1"])
    assert (args.workflows, args.data, args.out, args.workers) == ("w", "d", "o", 1)


def test_changed_workflow_is_rerun(own_gallery, threaded_cluster, monkeypatch):
    root = own_gallery
    (root / "wf3").mkdir()
    (root / "wf3" / "tiny.toml").write_text(TINY.replace("num = 4", "num = 3"))
    monkeypatch.setattr(plots, "draw", lambda *a, **k: [])
    (r,) = figures.regenerate(root / "wf3", root / "data", root / "out3", where=threaded_cluster, say=lambda s: None)
    assert r.status == "other_workflow" and r.ran
    assert open_cube(root / "data" / "tiny.zarr").sizes["T"] == 3


def test_bad_workflow_folders(tmp_path):
    with pytest.raises(UsageError, match="no workflow files"):
        figures.regenerate(tmp_path, tmp_path / "data", tmp_path / "out")
    with pytest.raises(UsageError, match="not a folder"):
        figures.regenerate(tmp_path / "absent", tmp_path / "data", tmp_path / "out")
    (tmp_path / "a.toml").write_text(TINY)
    (tmp_path / "b.toml").write_text(TINY.replace("k = { range = [1, 8] }", "k = { range = [0, 8] }"))
    with pytest.raises(UsageError, match=r"grid\.k"):
        figures.regenerate(tmp_path, tmp_path / "data", tmp_path / "out")
    (tmp_path / "b.toml").write_text(TINY)
    with pytest.raises(UsageError, match="share the name 'tiny'"):
        figures.regenerate(tmp_path, tmp_path / "data", tmp_path / "out")
    assert not (tmp_path / "data").exists()  # nothing written before every workflow is valid


@pytest.mark.slow  # draws the gallery's figures twice
def test_regenerating_unchanged_cubes_changes_no_byte(own_gallery, threaded_cluster):
    root = own_gallery
    out = root / "stable"
    figures.regenerate(root / "wf", root / "data", out, where=threaded_cluster, say=lambda s: None)
    first = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    figures.regenerate(root / "wf", root / "data", out, where=threaded_cluster, say=lambda s: None)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == first


def test_gallery_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "tiny.toml").write_text(TINY)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.md").write_text("my own page")
    with pytest.raises(UsageError, match="nothing was touched"):
        figures.regenerate(tmp_path / "wf", tmp_path / "data", tmp_path / "site")
    assert (tmp_path / "site" / "index.md").read_text() == "my own page"
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_every_workflow_is_named_by_its_own_file(tmp_path, shared_cluster):
    """With several workflows, each cube's lines and index entry name its own file."""
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "a.toml").write_text(TINY.replace('name = "tiny"', 'name = "first"'))
    (tmp_path / "wf" / "b.toml").write_text(TINY.replace('name = "tiny"', 'name = "second"'))
    said: list[str] = []
    results = figures.regenerate(
        tmp_path / "wf", tmp_path / "data", tmp_path / "out", where=shared_cluster, say=said.append
    )
    assert [(r.path.name, r.name) for r in results] == [("a.toml", "first"), ("b.toml", "second")]
    assert any(line.startswith(f"{tmp_path / 'wf' / 'a.toml'}: cube") and "first.zarr" in line for line in said)
    assert any(line.startswith(f"{tmp_path / 'wf' / 'b.toml'}: cube") and "second.zarr" in line for line in said)
    md = (tmp_path / "out" / "index.md").read_text()
    assert str(tmp_path / "wf" / "a.toml") in md and str(tmp_path / "wf" / "b.toml") in md


def _result(name: str, comparisons: dict[tuple[str, ...], str]) -> figures.WorkflowResult:
    from pathlib import Path

    return figures.WorkflowResult(
        Path(f"{name}.toml"), name, "hidden", Path(f"{name}.zarr"), "complete", comparisons=comparisons
    )


def test_a_comparison_made_by_two_cubes_counts_once_at_its_most_decisive():
    law = ("hidden", "k_star_slope_verdict", "lam=1.0", "noise_ratio=1.0", "learner=truncated_kalman", "tau=1.0")
    other = (*law[:3], "noise_ratio=10.0", *law[4:])
    main = _result("main", {law: "unresolved", other: "unresolved"})
    companion = _result("main_slopes", {law: "agrees"})
    gallery = figures.reconcile([main, companion])
    assert gallery == {"agrees": 1, "disagrees": 0, "unresolved": 1, "unknown": 0}
    assert main.resolved_by == {"main_slopes": 1} and main.still_unresolved == {"k_star_slope_verdict": [other[2:]]}
    # a cube that decides against the theory is never outvoted
    bad = _result("bad", {law: "disagrees"})
    assert figures.reconcile([main, companion, bad])["disagrees"] == 1


TINY_SLOPES = TINY.replace('name = "tiny"', 'name = "tiny_slopes"').replace(
    "k = { range = [1, 8] }\nT = { geom = [10, 1e4], num = 4 }",
    "k = { range = [1, 64] }\nT = { geom = [10, 1e15], num = 57 }",
)


@pytest.mark.slow
def test_a_companion_resolves_what_the_main_cube_cannot(tmp_path, shared_cluster):
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "tiny.toml").write_text(TINY)
    (tmp_path / "wf" / "tiny_slopes.toml").write_text(TINY_SLOPES)
    said: list[str] = []
    main, companion = figures.regenerate(
        tmp_path / "wf", tmp_path / "data", tmp_path / "out", where=shared_cluster, say=said.append
    )
    assert main.counts["unresolved"] > 0 and main.resolved_by == {"tiny_slopes": main.counts["unresolved"]}
    assert companion.counts["unresolved"] == companion.counts["disagrees"] == 0
    assert f"tiny: {main.counts['unresolved']} unresolved comparison(s) resolved by the cube of tiny_slopes" in said
    assert said[-2].startswith("gallery (each comparison once, at its most decisive cube): ")
    assert " 0 disagree, 0 unresolved" in said[-2]
    md = (tmp_path / "out" / "index.md").read_text()
    assert "resolved by the cube of tiny_slopes" in md and "0 disagree, 0 unresolved." in md
