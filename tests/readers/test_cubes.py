"""One completeness check for every reader: an unfinished cube is refused in one line, or
read with --partial, and then every output says so and no finding comes from empty cells."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pipeline
from pipeline.cli import main
from pipeline.core.errors import RunError, UsageError
from pipeline.core.types import COMPUTED, PARTIAL_ATTR
from pipeline.plan.config import load_workflow
from pipeline.readers.cubes import computed_cells, open_cube
from tests.helpers import hidden, one_clean_line, run_quietly, write_workflow

# six blocks (one per lam and learner); the blocks of lam = 1 fail, 4 of 6 are done
TEXT = hidden("unfinished", chunks={"lam": 1, "learner": 1, "blocks_per_task": 1})


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory, threaded_cluster):
    folder = tmp_path_factory.mktemp("unfinished")
    wf = write_workflow(folder, TEXT)
    out = folder / "u.zarr"
    with pytest.MonkeyPatch.context() as mp, pytest.raises(RunError, match="2 of 6 tasks failed"):
        mp.setenv("EMERGENCE_FAULT", "fail-kernel=1.0.0.0.0,fail-kernel=1.0.1.0.0")  # read by the worker thread
        run_quietly(load_workflow(wf), out, threaded_cluster)
    return wf, out


@pytest.mark.slow
def test_readers_refuse_an_unfinished_cube_in_one_line(unfinished, tmp_path, capsys):
    wf, out = unfinished
    for argv in (
        ["summary", str(out)],
        ["thresholds", str(out), "--out", str(tmp_path / "t.zarr")],
        ["plot", str(out), "--out", str(tmp_path / "figs")],
    ):
        assert main(argv) == 2, argv
        line = one_clean_line(capsys.readouterr().err)
        assert "is incomplete: 4/6 blocks done" in line and f"emergence run {wf} --out {out}" in line, line
        assert "--partial" in line
    assert not (tmp_path / "t.zarr").exists() and not (tmp_path / "figs").exists()
    for read in (lambda: pipeline.open_cube(out), lambda: pipeline.thresholds(out), lambda: pipeline.plot(out)):
        with pytest.raises(UsageError, match="4/6 blocks done") as refused:
            read()
        said = str(refused.value)  # the Python API speaks Python
        assert f"pipeline.run({str(wf)!r}, out={str(out)!r})" in said and "partial=True" in said, said
        assert "--partial" not in said and "emergence run" not in said, said


@pytest.mark.slow
def test_partial_outputs_say_so_and_draw_nothing_from_empty_cells(unfinished, tmp_path, capsys):
    _, out = unfinished
    ds = open_cube(out, partial=True)
    assert ds.attrs[PARTIAL_ATTR] == "partial: 4/6 blocks"
    assert not ds[COMPUTED].sel(lam=1.0).any() and ds[COMPUTED].sel(lam=0.9).all()
    assert ds["risk"].sel(lam=1.0).isnull().all()

    assert main(["summary", str(out), "--partial"]) == 0
    text = capsys.readouterr().out
    assert "partial: 4/6 blocks" in text
    assert "lam = 1, truncated_kalman: not known yet" in text
    assert "lam = 0.9, truncated_kalman: risk bounded in T" in text
    assert ">6" not in text  # no "k* > kmax" from cells never computed

    assert main(["thresholds", str(out), "--partial", "--out", str(tmp_path / "t.zarr")]) == 0
    table = capsys.readouterr().out
    assert "partial: 4/6 blocks" in table and "disagreements with theory: 0" in table
    assert "not known yet" in table.splitlines()[-3]
    th = pipeline.thresholds(ds)
    assert th.attrs[PARTIAL_ATTR] == "partial: 4/6 blocks"
    assert th["k_star"].sel(lam=1.0).isnull().all()
    assert th["k_star"].sel(lam=0.9).notnull().any()

    figures = pipeline.plot(ds)
    assert figures and all("partial: 4/6 blocks" in f.get_suptitle() for f in figures)


def test_info_keeps_its_completion_keys(unfinished, capsys):
    _, out = unfinished
    assert main(["info", str(out), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["blocks_done"], info["blocks_total"], info["complete"]) == (4, 6, False)


def test_computed_cells_cover_done_blocks_and_the_old_region():
    done = np.array([[True, False], [False, True]])
    mask = computed_cells(done, (2, 3), (3, 5), (0, 0))
    assert mask.shape == (3, 5)
    assert mask[:2, :3].all() and not mask[:2, 3:].any() and not mask[2:, :3].any() and mask[2:, 3:].all()
    grown = computed_cells(np.zeros((2, 2), dtype=bool), (2, 3), (3, 5), (2, 4))
    assert grown[:2, :4].all() and not grown[2:].any() and not grown[:, 4].any()
