"""One write guard: every command writes only into a new path or replaces an output of its
own kind that this tool made; nothing else is ever touched, with or without --overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr

from pipeline.cli import main
from pipeline.core.errors import RunError
from pipeline.storage.guard import Found, identify
from pipeline.storage.location import StoreLocation
from tests.helpers import assert_cubes_identical, hidden, one_clean_line, run_quietly, write_workflow

TEXT = hidden("guarded", lam=[1.0], noise_ratio=[4.0], k={"range": [1, 3]}, T=[10, 1000])
OTHER = hidden("guarded", lam=[0.9], noise_ratio=[4.0], k={"range": [1, 3]}, T=[10, 1000])


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def user_files(tmp_path):
    """What a researcher keeps: a folder with a paper and figures, and a plain file."""
    paper = tmp_path / "paper"
    (paper / "figs").mkdir(parents=True)
    (paper / "paper.tex").write_text("\\documentclass{article}")
    (paper / "figs" / "fig1.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "notes.txt").write_text("do not delete")
    return paper, tmp_path / "notes.txt"


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cube")
    run_quietly(TEXT, folder / "c.zarr")
    return folder / "c.zarr"


def test_what_a_path_holds(cube, user_files, tmp_path):
    paper, notes = user_files
    (tmp_path / "empty").mkdir()
    assert identify(StoreLocation(str(tmp_path / "nothing"))) is Found.NOTHING
    assert identify(StoreLocation(str(tmp_path / "empty"))) is Found.EMPTY_FOLDER
    assert identify(StoreLocation(str(paper))) is Found.FOREIGN_FOLDER
    assert identify(StoreLocation(str(notes))) is Found.FILE
    assert identify(StoreLocation(str(cube))) is Found.CUBE


def test_a_users_cube_with_a_file_inside_is_not_ours(tmp_path, cube):
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(cube, copy)
    (copy / "README.txt").write_text("my notes about this cube")
    assert identify(StoreLocation(str(copy))) is Found.FOREIGN_FOLDER


def test_writers_refuse_what_is_not_theirs(cube, user_files, tmp_path, capsys):
    paper, notes = user_files
    wf = write_workflow(tmp_path, TEXT)
    other_cube = tmp_path / "other.zarr"  # this test's own, not beside the module's cube
    run_quietly(TEXT, other_cube)
    before = snapshot(tmp_path)
    cube_before = snapshot(cube)
    invocations = [
        ["run", str(wf), "--out", str(paper), "--overwrite"],
        ["run", str(wf), "--out", str(notes), "--overwrite"],
        ["thresholds", str(cube), "--out", str(paper)],
        ["thresholds", str(cube), "--out", str(notes)],
        ["thresholds", str(cube), "--out", str(other_cube)],
        ["plot", str(cube), "--out", str(paper)],
        ["plot", str(cube), "--out", str(notes)],
    ]
    other_before = snapshot(other_cube)
    for argv in invocations:
        assert main([*argv[:1], *argv[1:], *(["--no-progress"] if argv[0] == "run" else [])]) == 2, argv
        line = one_clean_line(capsys.readouterr().err)
        assert "nothing was touched" in line, line
    assert snapshot(tmp_path) == before
    assert snapshot(cube) == cube_before and snapshot(other_cube) == other_before
    assert (paper / "paper.tex").read_text() == "\\documentclass{article}"


@pytest.mark.slow
def test_overwrite_keeps_the_old_cube_until_the_new_one_is_complete(tmp_path, monkeypatch):
    out = tmp_path / "c.zarr"
    run_quietly(TEXT + "\n[chunks]\nk = 1\nblocks_per_task = 1\n", out)
    old = xr.open_zarr(out).load()
    monkeypatch.setenv("EMERGENCE_FAULT", "fail-kernel=0.0.0.1.0")  # the replacement fails in one block
    with pytest.raises(RunError):
        run_quietly(OTHER + "\n[chunks]\nk = 1\nblocks_per_task = 1\n", out, overwrite=True)
    xr.testing.assert_identical(xr.open_zarr(out).load(), old)  # the old cube, whole and untouched
    assert (tmp_path / "c.zarr.next").exists()
    monkeypatch.delenv("EMERGENCE_FAULT")
    report = run_quietly(OTHER + "\n[chunks]\nk = 1\nblocks_per_task = 1\n", out, overwrite=True)
    assert report.replaced and report.blocks_computed == 1  # the replacement resumed
    assert not (tmp_path / "c.zarr.next").exists()
    run_quietly(OTHER + "\n[chunks]\nk = 1\nblocks_per_task = 1\n", tmp_path / "fresh.zarr")
    assert_cubes_identical(out, tmp_path / "fresh.zarr")


@pytest.mark.slow
def test_figures_are_replaced_only_where_the_manifest_says_they_are_ours(cube, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["plot", str(cube), "--out", str(out)]) == 0
    (out / "mine.txt").write_text("a user's note")
    stale = out / "guarded_old_figure.png"
    manifest = (out / ".emergence-figures.json").read_text()
    (out / ".emergence-figures.json").write_text(
        manifest.replace('"files": [', '"files": [\n  "guarded_old_figure.png",')
    )
    stale.write_bytes(b"old")
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert main(["plot", str(cube), "--out", str(out)]) == 0
    assert (out / "mine.txt").read_text() == "a user's note"  # not ours: kept
    assert not stale.exists()  # ours and no longer drawn: removed
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == {
        k: v for k, v in first.items() if k != stale.name
    }  # byte-stable
