"""No finding from an uncomputed cell, in any experiment: every registered experiment's cube is
interrupted (some tasks fail by fault injection, so a whole system and the largest horizons of
another are missing) and every reader is checked on the partial cube: the thresholds table and
dataset, the summary and the figures say "not known yet" (or '?') where a value needs unfinished
cells, never "nan" or "none", and count no disagreement from such a cell. What a partial cube
does report agrees with what the finished cube reports."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr

from pipeline.cli import main
from pipeline.core import verdicts
from pipeline.core.measure import MEASURED
from pipeline.core.types import COMPUTED
from pipeline.driver.engine import RunError
from pipeline.experiments import known_experiments
from pipeline.plan.config import parse_workflow, toml_text
from pipeline.plan.grid import as_key_string
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from pipeline.readers.summary import summarize
from pipeline.storage.location import StoreLocation
from tests.helpers import hidden, hidden_spectrum, observed, observed_fitted, run_quietly


def _fitted(system: dict[str, list[object]]) -> Callable[..., str]:
    """A small fitted-filter workflow (``fit = "least_squares"``) over ``system``."""

    def text(name: str = "fitted", chunks: dict[str, int] | None = None) -> str:
        grid = system | {"noise_ratio": [1.0], "k": [1, 2, 3], "T": [3, 100, 1000], "trajectories": [1, 4], "fits": 3}
        top = {"experiment": "hidden", "fit": "least_squares", "name": name}
        return toml_text(top | {"grid": grid} | ({"chunks": dict(chunks)} if chunks else {}))

    return text


# one small workflow per registered experiment, chunked so that each system (first axis) and
# each pair of horizons is its own task
SMALL: dict[str, Callable[..., str]] = {
    "hidden": hidden,
    "hidden_fitted": _fitted({"lam": [0.5, 1.0]}),
    "hidden_spectrum": hidden_spectrum,
    "hidden_spectrum_fitted": _fitted({"spectrum": ["1.0^2", "1.0, 0.5"]}),
    "observed": observed,
    "observed_fitted": observed_fitted,
}
FIRST_AXIS = {
    "hidden": "lam",
    "hidden_fitted": "lam",
    "hidden_spectrum": "spectrum",
    "hidden_spectrum_fitted": "spectrum",
    "observed": "spectrum",
    "observed_fitted": "spectrum",
}
MADE_UP = re.compile(r"\b(nan|none)\b", re.IGNORECASE)


def test_every_registered_experiment_has_a_small_workflow_here():
    assert set(SMALL) == set(known_experiments())


def _texts(figure: object) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in figure.findobj(Text)]  # type: ignore[attr-defined]


def _interrupt(text: str, out: object) -> None:
    """Run ``text`` with the tasks of the first axis' second value, and those of the last
    horizons of its first value, failing."""
    wf = parse_workflow(text)
    axes = list(wf.coords)
    first, t_axis = 0, axes.index("T")
    last_t = max(key[t_axis] for key in wf.plan.task_keys())
    failing = [
        as_key_string(key)
        for key in wf.plan.task_keys()
        if key[first] == 1 or (key[first] == 0 and key[t_axis] == last_t)
    ]
    mp = pytest.MonkeyPatch()
    mp.setenv("EMERGENCE_FAULT", ",".join(f"fail-kernel={k}" for k in failing))
    try:
        with pytest.raises(RunError, match="failed"):
            run_quietly(wf, out)
    finally:
        mp.undo()


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(SMALL))
def test_partial_readers_report_nothing_from_uncomputed_cells(experiment, tmp_path, capsys):
    first = FIRST_AXIS[experiment]
    text = SMALL[experiment]("part", chunks={first: 1, "T": 1, "blocks_per_task": 1})
    complete, partial = tmp_path / "complete.zarr", tmp_path / "partial.zarr"
    run_quietly(text, complete)
    _interrupt(text, partial)

    ds = open_cube(partial, partial=True)
    assert not bool(ds[COMPUTED].all()) and bool(ds[COMPUTED].any())
    th = thr.compute_thresholds(ds, source=str(partial))
    full = thr.compute_thresholds(open_cube(complete), source=str(complete))

    # the dataset: an unknown value is NaN with <name>_known False, an unknown verdict "unknown";
    # whatever the partial cube does state, the finished cube states too
    names = verdicts.names(th)
    assert names and any((np.asarray(th[n].values, dtype=str) == verdicts.UNKNOWN).any() for n in names)
    for name in names:
        got = np.asarray(th[name].values, dtype=str)
        want = np.asarray(full[name].transpose(*th[name].dims).values, dtype=str)
        stated = got != verdicts.UNKNOWN
        np.testing.assert_array_equal(got[stated], want[stated], err_msg=name)
    for name, var in th.data_vars.items():
        if var.attrs.get("role") == MEASURED:
            known = th[f"{name}_known"].broadcast_like(var).values
            assert np.isnan(var.values.astype(float)[~known]).all(), name
            want = full[name].transpose(*var.dims).values.astype(float)
            np.testing.assert_array_equal(var.values.astype(float)[known], want[known], err_msg=name)
    assert verdicts.counts(th)[verdicts.DISAGREES] == verdicts.counts(full)[verdicts.DISAGREES] == 0

    # the table (through the command line, which must exit 0) and the written dataset
    assert main(["thresholds", str(partial), "--partial", "--out", str(tmp_path / "t.zarr")]) == 0
    table = capsys.readouterr().out
    assert not MADE_UP.search(table), MADE_UP.search(table)
    assert verdicts.UNKNOWN_TEXT in table
    last = table.strip().splitlines()[-3]  # before the blank line and "written: ..."
    assert last.startswith("comparisons with theory:") and " 0 disagree" in last and verdicts.UNKNOWN_TEXT in last
    written = xr.open_zarr(tmp_path / "t.zarr")
    assert set(names) <= set(written.data_vars)

    # the summary
    said = summarize(StoreLocation(str(partial)), partial=True)
    assert not MADE_UP.search(said), MADE_UP.search(said)
    assert verdicts.UNKNOWN_TEXT in said and "partial:" in said
    assert said.splitlines()[-1].startswith("comparisons with theory:") and " 0 disagree" in said.splitlines()[-1]

    # the figures: every text drawn
    for drawn in plots.draw(ds, th):
        texts = _texts(drawn.figure)
        assert "partial:" in drawn.title
        bad = [t for t in [*texts, drawn.caption] if MADE_UP.search(t)]
        assert not bad, (drawn.stem, bad)
