"""The fitted-filter experiments (``experiment = "hidden"``, ``fit = "least_squares"``): the cube's
filters are the least-squares fits of the data MATH §6.3 defines, whatever the chunking, grown
cubes compute only their new cells, partial cubes draw no finding from uncomputed cells, and bad
workflows are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
import xarray as xr

from pipeline.cli import main
from pipeline.core import verdicts
from pipeline.driver.resume import create_store
from pipeline.experiments import get_experiment
from pipeline.models.fitted_fir import fitted_system, outputs, training_key
from pipeline.plan.config import parse_workflow
from pipeline.plan.grid import BlockPlan
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from pipeline.storage.location import StoreLocation
from pipeline.worker.tasks import compute_task
from tests.helpers import assert_cubes_identical, direct, one_clean_line, run_quietly, write_workflow
from tests.oracles.fitted_fir import design_matrix

U = 2.0**-53

EASY = """
experiment = "hidden"
fit = "least_squares"
name = "easy"
seed = 7
[grid]
spectrum = ["0.9", "0.5@40, 0.2"]
noise_ratio = [0.5, 4.0]
k = [1, 3, 5]
T = [60, 150]
trajectories = [1, 4]
fits = 2
"""

LAM = """
experiment = "hidden"
fit = "least_squares"
name = "grow"
[grid]
lam = [0.8, 1.0]
noise_ratio = [1.0]
k = [1, 2, 3]
T = [5, 50, 300]
trajectories = [1, 2]
fits = 2
"""


def test_easy_cells_theta_equals_statsmodels_ols_on_the_same_trajectories():
    """Each cell's data are the first m trajectories' first T steps of its fit's stream
    (prefix sharing, MATH §6.3): OLS on the explicit zero-padded design of exactly those
    outputs gives the cube's theta (to a backward-stable solver's forward error)."""
    wf = parse_workflow(EASY)
    out = direct(EASY)
    c = wf.coords
    for i, text in enumerate(c["spectrum"]):
        for j, r in enumerate(c["noise_ratio"]):
            s = fitted_system(str(text), float(r))
            for f in c["fit"]:
                Y = outputs(
                    s, wf.settings.seed, training_key(s, int(f)), int(c["trajectories"].max()), int(c["T"].max()) + 1
                )
                for a, k in enumerate(c["k"]):
                    for b, T in enumerate(c["T"]):
                        for d, m in enumerate(c["trajectories"]):
                            X, z = design_matrix(Y[:m], int(k), int(T))
                            ols = sm.OLS(z, X).fit().params
                            ours = out["theta"][i, j, a, b, d, f, :k]
                            tol = 20 * np.linalg.cond(X) * U * np.max(np.abs(ols))
                            assert np.max(np.abs(ours - ols)) <= tol, (text, r, f, k, T, m)
                            assert np.isnan(out["theta"][i, j, a, b, d, f, k:]).all()
                            assert not out["underdetermined"][i, j, a, b, d, f]


def test_random_chunkings_give_the_same_bits():
    wf = parse_workflow(LAM)
    experiment = get_experiment(wf.experiment)
    static = experiment.static(wf.coords, wf.settings)
    reference = experiment.kernel(wf.coords, static, wf.settings)
    variables = experiment.variables(wf.settings)
    shape = tuple(len(wf.coords[a]) for a in experiment.axes)
    rng = np.random.default_rng(3)
    for _ in range(3):
        plan = BlockPlan(experiment.axes, shape, tuple(int(rng.integers(1, n + 1)) for n in shape))
        for key in plan:
            slices = plan.slices(key)
            coords = {a: wf.coords[a][s] for a, s in slices.items()}
            part = experiment.kernel(
                coords, static.isel({d: s for d, s in slices.items() if d in static.dims}), wf.settings
            )
            for var, spec in variables.items():
                expected = np.asarray(reference[var])[tuple(slices.get(d, slice(None)) for d in spec.dims)]
                got = np.asarray(part[var])
                assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), (var, key)


def test_extending_fits_trajectories_and_T_computes_only_new_cells(tmp_path, threaded_cluster):
    grown_text = (
        LAM.replace("fits = 2", "fits = 3")
        .replace("trajectories = [1, 2]", "trajectories = [1, 2, 5]")
        .replace("T = [5, 50, 300]", "T = [5, 50, 300, 600]")
    )
    grown = tmp_path / "grown.zarr"
    first = run_quietly(LAM, grown, threaded_cluster)
    old = xr.open_zarr(grown).load()
    report = run_quietly(grown_text, grown, threaded_cluster, extend=True)
    before, after = 2 * 1 * 3 * 3 * 2 * 2, 2 * 1 * 3 * 4 * 3 * 3
    assert (first.cells_computed, report.cells_computed) == (before, after - before)
    extended = xr.open_zarr(grown).load()
    names = ["risk", "theta", "bias"]
    xr.testing.assert_equal(extended.sel({d: old[d] for d in ("fit", "trajectories", "T")})[names], old[names])
    fresh = tmp_path / "fresh.zarr"
    run_quietly(grown_text, fresh, threaded_cluster)
    assert_cubes_identical(grown, fresh, layout=False)


def test_a_partial_cube_draws_no_finding_from_uncomputed_cells(tmp_path):
    text = LAM.replace("[grid]", "[chunks]\ntrajectories = 1\nfit = 1\nblocks_per_task = 1\n\n[grid]")
    wf = parse_workflow(text)
    location = StoreLocation(str(tmp_path / "part.zarr"))
    create_store(wf, location)
    tasks = list(wf.plan.task_keys())
    assert len(tasks) == 4
    compute_task(wf.experiment, wf.settings, location, wf.fingerprint, tasks[0], [wf.plan.task_slices(tasks[0])])
    ds = open_cube(location, partial=True)
    th = thr.compute_thresholds(ds)
    crit = th["critical_k_learned"]
    assert np.isnan(crit.values).all()  # every m is missing a fit: none known
    verdict = verdicts.as_text(th["critical_k_learned_verdict"].values)
    assert (verdict == verdicts.UNKNOWN).all()
    assert np.isnan(th["k_opt"].values).all() and np.isnan(th["mean_risk"].values).all()
    summary = get_experiment(wf.experiment).summary(ds, th)
    assert all(verdicts.UNKNOWN_TEXT in line for line in summary)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("fits = 2", "fits = 0"), "grid.fits = 0: must be an integer count >= 1"),
        (("fits = 2", "fits = [0, 1]"), "grid.fits = [0, 1]: must be an integer count >= 1"),
        (("k = [1, 2, 3]", "k = [0, 2]"), "grid.k = 0: must be an integer >= 1"),
        (("trajectories = [1, 2]", "trajectories = [1, 1]"), "grid.trajectories = 1: duplicate axis value"),
        (("[grid]", '[grid]\nlearner = ["best_fir"]'), "grid.learner = ['best_fir']: unknown axis"),
        (('name = "grow"', 'name = "grow"\nmethod = "montecarlo"'), "method = 'montecarlo': the hidden_fitted"),
        (("lam = [0.8, 1.0]", "lam = [1.5]"), "grid.T = 300: spectrum '1.5': T = 300 too long"),
        (('fit = "least_squares"', 'fit = "ridge"'), "fit = 'ridge': must be 'best'"),
    ],
)
def test_bad_values_are_one_line_exit_2_nothing_written(change, message, tmp_path, capsys):
    out = tmp_path / "never.zarr"
    wf = write_workflow(tmp_path, LAM.replace(*change))
    assert main(["run", str(wf), "--out", str(out)]) == 2
    line = one_clean_line(capsys.readouterr().err)
    assert line.startswith("emergence: error: " + message), line
    assert not out.exists()


def test_a_complex_pair_outside_the_unit_circle_is_refused(tmp_path, capsys):
    out = tmp_path / "never.zarr"
    text = EASY.replace('spectrum = ["0.9", "0.5@40, 0.2"]', 'spectrum = ["1.1@30"]')
    assert main(["run", str(write_workflow(tmp_path, text)), "--out", str(out)]) == 2
    line = one_clean_line(capsys.readouterr().err)
    assert line.startswith("emergence: error: grid.spectrum = '1.1@30': ") and "modulus <= 1" in line
    assert not out.exists()
