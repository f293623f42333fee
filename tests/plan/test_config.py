"""Workflow validation: good files parse; every bad one names the key, value and rule."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.errors import ConfigError, UsageError
from pipeline.plan.config import load_workflow, parse_workflow

GOOD = """
experiment = "hidden"
name = "t"
[grid]
lam = [1.0]
noise_ratio = { geom = [0.1, 10.0], num = 3 }
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 8, ], step = 1 }
T = { geom = [10, 1e6], num = 6 }
"""


def test_good_workflow_axes_and_plan():
    wf = parse_workflow(GOOD)
    np.testing.assert_allclose(wf.coords["noise_ratio"], [0.1, 1.0, 10.0])
    assert wf.coords["k"].tolist() == list(range(1, 9))
    assert wf.coords["T"].tolist() == [10, 100, 1000, 10_000, 100_000, 1_000_000]
    assert wf.coords["learner"].tolist() == ["truncated_kalman", "best_fir"]
    assert wf.plan.shape == (1, 3, 2, 8, 6)
    assert wf.settings.seed == 0 and wf.settings.method == "exact"


def test_integer_geom_rounds_and_drops_repeats():
    wf = parse_workflow(GOOD.replace("T = { geom = [10, 1e6], num = 6 }", "T = { geom = [1, 10], num = 8 }"))
    assert wf.coords["T"].tolist() == [1, 2, 3, 4, 5, 7, 10]


def test_fingerprint_ignores_comments_but_not_values():
    a = parse_workflow(GOOD)
    b = parse_workflow("# a comment\n" + GOOD)
    c = parse_workflow(GOOD.replace("lam = [1.0]", "lam = [0.9]"))
    assert a.fingerprint == b.fingerprint != c.fingerprint


BAD = {
    "unknown top-level key": ("foo = 1\n" + GOOD, "foo"),
    "seed wrong type": ('seed = "x"\n' + GOOD, "seed"),
    "seed bool": ("seed = true\n" + GOOD, "seed"),
    "unknown method": ('method = "fast"\n' + GOOD, "method"),
    "unknown experiment": (GOOD.replace('"hidden"', '"other"'), "experiment"),
    "missing experiment": (GOOD.replace('experiment = "hidden"', ""), "experiment"),
    "bad name": (GOOD.replace('name = "t"', 'name = "a/b"'), "name"),
    "NaN value": (GOOD.replace("lam = [1.0]", "lam = [nan]"), "grid.lam[0]"),
    "infinite value": (GOOD.replace("lam = [1.0]", "lam = [inf]"), "grid.lam[0]"),
    "duplicate values": (GOOD.replace("lam = [1.0]", "lam = [1.0, 1.0]"), "grid.lam"),
    "empty axis": (GOOD.replace("lam = [1.0]", "lam = []"), "grid.lam"),
    "k below 1": (GOOD.replace("k = { range = [1, 8, ], step = 1 }", "k = [0, 1]"), "grid.k"),
    "T below 1": (GOOD.replace("T = { geom = [10, 1e6], num = 6 }", "T = [0]"), "grid.T"),
    "non-integer T": (GOOD.replace("T = { geom = [10, 1e6], num = 6 }", "T = [2.5]"), "grid.T[0]"),
    "noise ratio zero": (
        GOOD.replace("noise_ratio = { geom = [0.1, 10.0], num = 3 }", "noise_ratio = [0.0]"),
        "grid.noise_ratio",
    ),
    "noise ratio negative": (
        GOOD.replace("noise_ratio = { geom = [0.1, 10.0], num = 3 }", "noise_ratio = [-1.0]"),
        "grid.noise_ratio",
    ),
    "geom through zero": (GOOD.replace("geom = [0.1, 10.0]", "geom = [0.0, 10.0]"), "grid.noise_ratio.geom"),
    "unknown learner": (GOOD.replace('"best_fir"]', '"lstm"]'), "grid.learner"),
    "unknown axis": (GOOD + "foo = [1]\n", "grid.foo"),
    "missing axis": (GOOD.replace("lam = [1.0]\n", ""), "grid.lam"),
    "reversed range": (GOOD.replace("range = [1, 8, ]", "range = [8, 1]"), "grid.k.range"),
    "range step zero": (GOOD.replace("step = 1", "step = 0"), "grid.k.step"),
    "geom without num": (GOOD.replace(", num = 3", ""), "grid.noise_ratio.num"),
    "two forms": (GOOD.replace("num = 3", "num = 3, linspace = [1, 2]"), "grid.noise_ratio"),
    "string for float axis": (GOOD.replace("lam = [1.0]", 'lam = ["one"]'), "grid.lam[0]"),
    "bare scalar axis": (GOOD.replace("lam = [1.0]", "lam = 1.0"), "grid.lam"),
    "chunks unknown axis": (GOOD + "[chunks]\nfoo = 2\n", "chunks.foo"),
    "chunks zero": (GOOD + "[chunks]\nk = 0\n", "chunks.k"),
    "task seconds zero": (GOOD + "[chunks]\ntask_seconds = 0\n", "chunks.task_seconds"),
    "task seconds nan": (GOOD + "[chunks]\ntask_seconds = nan\n", "chunks.task_seconds"),
    "task seconds text": (GOOD + '[chunks]\ntask_seconds = "2 s"\n', "chunks.task_seconds"),
    "task seconds a day": (GOOD + "[chunks]\ntask_seconds = 86400\n", "chunks.task_seconds"),
    "mc_samples too small": ("mc_samples = 1\n" + GOOD, "mc_samples"),
    "grid not a table": ('experiment = "hidden"\nname = "t"\ngrid = 3\n', "grid"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_workflows_name_the_key(case):
    text, key = BAD[case]
    with pytest.raises(ConfigError) as err:
        parse_workflow(text)
    assert err.value.key == key, str(err.value)
    assert "\n" not in str(err.value)


def test_toml_syntax_error_gives_line_number():
    with pytest.raises(UsageError, match="line 3"):
        parse_workflow('experiment = "hidden"\nname = "t"\nseed = = 1\n')


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_workflow(tmp_path / "nope.toml")


def test_max_cells_gives_the_count():
    with pytest.raises(ConfigError, match="288 cells") as err:
        parse_workflow(GOOD, max_cells=50)
    assert err.value.key == "grid"
