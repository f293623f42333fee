"""Every registered experiment meets the same bar, through the seam alone (``Experiment``).

Each experiment brings its own tiny example workflow (``example_workflow(method)``, one per
method it offers); on it: the seam's declarations hold, the kernel returns every declared
variable with its shape and no unexplained NaN, random chunkings give the same bits, and a
real cube reads back through thresholds, their table, figures and summary. An experiment
registered later is held to this bar without a new test.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from pipeline.cli import main
from pipeline.core.errors import ConfigError
from pipeline.core.measure import MEASURED, STATIC, THEORY
from pipeline.core.types import SettingRule, Settings, VariableSpec
from pipeline.core.verdicts import VERDICT
from pipeline.driver.resume import create_store
from pipeline.experiments import Variant, get_experiment, known_experiments
from pipeline.experiments.base import Experiment
from pipeline.experiments.hidden.adapter import HiddenExperiment
from pipeline.plan.config import METHODS, Workflow, parse_workflow, toml_text
from pipeline.plan.grid import BlockPlan
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from pipeline.readers.summary import summarize
from pipeline.storage.location import StoreLocation
from pipeline.worker.tasks import check_block, compute_task
from tests.helpers import assert_cubes_identical, direct, one_clean_line, run_quietly, write_workflow

CASES = [(name, method) for name in known_experiments() for method in get_experiment(name).methods]
IDS = [f"{name}-{method}" for name, method in CASES]


def example(name: str, method: str = "exact", chunks: dict[str, int] | None = None) -> str:
    """The experiment's example workflow text, with ``chunks`` as its ``[chunks]`` table."""
    raw: dict[str, Any] = tomllib.loads(get_experiment(name).example_workflow(method))
    if chunks is not None:
        raw["chunks"] = chunks
    return toml_text(raw)


def whole(wf: Workflow) -> dict[str, int]:
    """Chunks holding the whole grid in one block (one task: run in this process)."""
    return {a: len(v) for a, v in wf.coords.items()}


def random_chunks(wf: Workflow, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    return {a: int(rng.integers(1, len(v) + 1)) for a, v in wf.coords.items()}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", known_experiments())
def test_declares_the_seam(name):
    experiment = get_experiment(name)
    assert isinstance(experiment, Experiment) and experiment.name == name
    assert set(experiment.axis_rules) == set(experiment.axes) and len(set(experiment.axes)) == len(experiment.axes)
    assert experiment.horizon in experiment.axes
    assert experiment.methods and set(experiment.methods) <= set(METHODS)
    for method in experiment.methods:
        wf = parse_workflow(experiment.example_workflow(method))
        assert (wf.experiment, wf.settings.method) == (name, method)  # reached as users write it
        assert len(wf.coords[experiment.horizon]) >= 2
        for spec in experiment.variables(wf.settings).values():
            axes = tuple(a for a in experiment.axes if a in spec.dims)  # in the cube's order, inner dims after
            assert spec.dims[: len(axes)] == axes and spec.long_name and spec.units


@pytest.mark.parametrize("name", known_experiments())
def test_refuses_every_method_it_lacks(name):
    experiment = get_experiment(name)
    text = experiment.example_workflow(experiment.methods[0])
    for method in (*(m for m in METHODS if m not in experiment.methods), "fast"):
        raw = tomllib.loads(text) | {"method": method}
        with pytest.raises(ConfigError, match=f"^method = '{method}': .*{experiment.methods[0]}"):
            parse_workflow(toml_text(raw))


@pytest.mark.parametrize(("name", "method"), CASES, ids=IDS)
def test_kernel_returns_every_variable_checked(name, method):
    wf = parse_workflow(example(name, method))
    experiment = get_experiment(name)
    static = experiment.static(wf.coords, wf.settings)
    out = experiment.kernel(wf.coords, static, wf.settings)
    variables = experiment.variables(wf.settings)
    assert set(out) == set(variables)
    inner = {str(d): static[d].values for d in static.dims if d not in wf.coords}  # dims of no grid axis
    check_block((0,) * len(experiment.axes), wf.coords | inner, out, variables)  # shapes; NaN only where declared
    for name_, spec in variables.items():
        assert np.asarray(out[name_]).dtype == np.dtype(spec.dtype), name_
    seconds = experiment.estimate_seconds(wf.coords, wf.settings)
    assert np.isfinite(seconds) and seconds > 0


@pytest.mark.parametrize(("name", "method"), CASES, ids=IDS)
def test_random_chunkings_give_the_same_bits(name, method):
    """Block by block in this process, as workers compute them: every cell's bits equal the
    whole grid's in one call, and a variable without some axis is the same from every block."""
    wf = parse_workflow(example(name, method))
    experiment = get_experiment(name)
    static = experiment.static(wf.coords, wf.settings)
    reference = experiment.kernel(wf.coords, static, wf.settings)
    variables = experiment.variables(wf.settings)
    shape = tuple(len(wf.coords[a]) for a in experiment.axes)
    for seed in range(3):
        plan = BlockPlan(experiment.axes, shape, tuple(random_chunks(wf, seed).values()))
        assert plan.total > 1
        for key in plan:
            slices = plan.slices(key)
            coords = {a: wf.coords[a][s] for a, s in slices.items()}
            part = experiment.kernel(
                coords, static.isel({d: s for d, s in slices.items() if d in static.dims}), wf.settings
            )
            for var, spec in variables.items():
                expected = np.asarray(reference[var])[tuple(slices.get(d, slice(None)) for d in spec.dims)]
                assert same_bits(np.asarray(part[var]), expected), (var, seed, key)


@pytest.mark.slow  # no process, but seconds of figures per case
@pytest.mark.parametrize(("name", "method"), CASES, ids=IDS)
def test_a_real_cube_reads_back(name, method, tmp_path):
    """One task (run in this process): thresholds beside theory, their store, table, every
    figure drawn (one saved), the summary."""
    experiment = get_experiment(name)
    wf = parse_workflow(example(name, method))
    out = tmp_path / "cube.zarr"
    report = run_quietly(example(name, method, whole(wf)), out)
    assert report.complete and report.cells_computed == wf.plan.cells
    ds = open_cube(out)
    th = thr.compute_thresholds(ds, source=str(out))
    assert th.attrs["experiment"] == name and th.data_vars
    assert experiment.levels is None or experiment.levels in th.coords
    roles = {var.attrs.get("role") for var in th.data_vars.values() if not str(var.name).endswith("_known")}
    assert MEASURED in roles and roles <= {MEASURED, THEORY, STATIC, VERDICT}
    written = tmp_path / "cube.thresholds.zarr"
    thr.write_thresholds(th, str(written))
    table = thr.format_table(th)
    assert table.startswith(f"thresholds of {out}") and "disagreements with theory:" in table
    assert all(isinstance(line, str) and line for line in experiment.disagreements(th))
    drawn = plots.draw(ds, th)  # stems unique (draw checks), each with a title and a caption
    assert drawn and all(d.stem and d.title and d.caption and d.figure.axes for d in drawn)
    (saved,) = plots.save(drawn[:1], tmp_path / "figures")  # saving is the readers' own (tests/readers)
    assert saved.png.stat().st_size and saved.svg.stat().st_size
    said = summarize(StoreLocation(str(out))).splitlines()
    assert said[0].startswith(f"{out} ({name}): ") and all(f" {a}" in said[0] for a in experiment.axes)
    assert len(said) > 1 and all(said[1:])


@pytest.mark.slow
@pytest.mark.parametrize("name", known_experiments())
def test_random_chunkings_give_identical_cubes(name, tmp_path, shared_cluster):
    """Through the engine on real worker processes: two random chunkings, one cube."""
    wf = parse_workflow(example(name))
    cubes = []
    for seed in (11, 12):
        out = tmp_path / f"c{seed}.zarr"
        assert run_quietly(example(name, chunks=random_chunks(wf, seed)), out, shared_cluster).complete
        cubes.append(out)
    assert_cubes_identical(cubes[0], cubes[1], layout=False)


# -- the seam's own rules, with experiments registered for the test ---------------------------


class HiddenExactOnly(HiddenExperiment):
    """The hidden experiment declaring no Monte Carlo, selected by a top-level setting."""

    name = "hidden_exact_only"
    methods = ("exact",)
    extra_settings: Mapping[str, SettingRule] = {
        "fit": SettingRule("least_squares", lambda v: None if v == "least_squares" else "no")
    }


EXACT_ONLY = HiddenExactOnly()


@pytest.fixture
def exact_only(monkeypatch):
    from pipeline import experiments

    monkeypatch.setattr(experiments, "_LOADED", dict(experiments._LOADED))
    monkeypatch.setitem(experiments._REGISTRY, EXACT_ONLY.name, (__name__, "EXACT_ONLY"))
    variant = Variant("hidden", EXACT_ONLY.name, setting="fit", value="least_squares")
    monkeypatch.setattr(experiments, "_VARIANTS", (variant, *experiments._VARIANTS))
    return 'fit = "least_squares"\n' + get_experiment("hidden").example_workflow("exact")


def test_a_setting_selects_a_variant(exact_only):
    assert parse_workflow(exact_only).experiment == EXACT_ONLY.name
    assert parse_workflow(exact_only.replace('fit = "least_squares"\n', "")).experiment == "hidden"
    with pytest.raises(ConfigError, match=r"^fit = 'other': must be 'best' .* or 'least_squares'"):
        parse_workflow(exact_only.replace("least_squares", "other"))


def test_an_unsupported_method_is_one_line_exit_2_nothing_written(exact_only, tmp_path, capsys):
    text = exact_only.replace('method = "exact"', 'method = "montecarlo"')
    out = tmp_path / "never.zarr"
    assert main(["run", str(write_workflow(tmp_path, text)), "--out", str(out)]) == 2
    line = one_clean_line(capsys.readouterr().err)
    assert line == (
        "emergence: error: method = 'montecarlo': the hidden_exact_only experiment has no such method; "
        "it offers ['exact']"
    )
    assert not out.exists() and not Path(f"{out}.lock").exists()


class HiddenWithFit(HiddenExperiment):
    """The hidden experiment after gaining a key whose default keeps older cubes' fingerprints."""

    name = "hidden_with_fit"
    extra_settings: Mapping[str, SettingRule] = {
        "fit": SettingRule("best", lambda v: None if v in ("best", "other") else "no", recorded_at_default=False)
    }


WITH_FIT = HiddenWithFit()


def test_a_key_added_later_keeps_fingerprints_at_its_default(monkeypatch):
    from pipeline import experiments

    monkeypatch.setattr(experiments, "_LOADED", dict(experiments._LOADED))
    monkeypatch.setitem(experiments._REGISTRY, WITH_FIT.name, (__name__, "WITH_FIT"))
    text = get_experiment("hidden").example_workflow("exact").replace('"hidden"', '"hidden_with_fit"', 1)
    before = parse_workflow(text)
    at_default = parse_workflow('fit = "best"\n' + text)
    assert before.experiment == "hidden_with_fit" and "fit" not in at_default.settings.extra
    assert at_default.fingerprint == before.fingerprint
    other = parse_workflow('fit = "other"\n' + text)
    assert other.settings.extra["fit"] == "other" and other.fingerprint != before.fingerprint


class HiddenWithTaps(HiddenExperiment):
    """The hidden experiment with a result variable over an inner dim ``tap`` (no grid axis:
    a coordinate of the static part, like the index of a fitted parameter)."""

    name = "hidden_with_taps"

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        return super().static(coords, settings).assign_coords(tap=np.arange(3))

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        return super().variables(settings) | {"weighted": VariableSpec((*self.axes, "tap"), "risk (tap + 1)", "1")}

    def kernel(self, coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
        out = super().kernel(coords, static, settings)
        return out | {"weighted": out["risk"][..., None] * (static["tap"].values + 1.0)}


WITH_TAPS = HiddenWithTaps()


def test_a_variable_may_have_inner_dims(monkeypatch, tmp_path):
    """Written whole by every task (sharded or not), read back, masked in a partial cube."""
    from pipeline import experiments

    monkeypatch.setattr(experiments, "_LOADED", dict(experiments._LOADED))
    monkeypatch.setitem(experiments._REGISTRY, WITH_TAPS.name, (__name__, "WITH_TAPS"))
    raw = tomllib.loads(get_experiment("hidden").example_workflow("exact")) | {"experiment": WITH_TAPS.name}
    raw["chunks"] = {"lam": 1, "k": 3, "T": 2, "blocks_per_task": 2}
    wf = parse_workflow(toml_text(raw))
    assert wf.plan.sharded and wf.plan.tasks_total > 2
    reference = direct(toml_text(raw))["weighted"]
    tasks = list(wf.plan.task_keys())
    for cube, computed in (("all.zarr", tasks), ("some.zarr", tasks[::2])):
        location = StoreLocation(str(tmp_path / cube))
        create_store(wf, location)
        for task in computed:  # the real task body, in this process
            compute_task(wf.experiment, wf.settings, location, wf.fingerprint, task, [wf.plan.task_slices(task)])
        ds = open_cube(location, partial=True)
        weighted = ds["weighted"].transpose(*WITH_TAPS.axes, "tap").values
        if computed is tasks:
            assert same_bits(weighted, reference)
            continue
        done = np.broadcast_to(ds["computed"].transpose(*WITH_TAPS.axes).values[..., None], weighted.shape)
        assert done.any() and not done.all()
        assert same_bits(weighted[done], reference[done]) and np.isnan(weighted[~done]).all()
