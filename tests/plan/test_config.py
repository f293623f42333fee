"""Workflow validation: good files parse; every bad one names the key, value and rule."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.errors import ConfigError, UsageError
from pipeline.plan.config import load_workflow, parse_workflow
from tests.references import BAD, GOOD


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
