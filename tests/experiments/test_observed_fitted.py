"""The fitted observed experiment (issue 20; docs/theory.md §6) through its cube.

* a cell is recomputable from the cube alone: its ``phi`` equals statsmodels ``OLS`` on the
  explicit design of the same trajectories, built from the cube's ``system``,
  ``basis_change``, ``nominal_model`` and ``learner_basis``; its risk equals an mpmath risk;
* its bits do not depend on the chunking (nominal ``perturbed`` too, with family and draw
  axes; the shared test of every experiment covers the example workflow);
* bad values are refused in one line naming key, value and what is allowed, exit 2,
  nothing written;
* extending a finished cube along ``fits``, ``trajectories`` or ``T`` computes only the new
  cells, which equal a fresh run's.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import statsmodels.api as sm
import xarray as xr

from pipeline.cli import main
from pipeline.experiments import get_experiment
from pipeline.models.spectra import parse_spectrum
from pipeline.plan.config import parse_workflow
from pipeline.plan.grid import BlockPlan
from pipeline.readers.cubes import open_cube
from tests.experiments.test_every_experiment import random_chunks, same_bits
from tests.helpers import (
    assert_cubes_identical,
    direct,
    observed_fitted,
    one_clean_line,
    run_quietly,
    write_workflow,
)
from tests.models.fitted import oracles

EASY = dict(
    spectrum=["0.9, 0.5^2", "0.8@40, 0.3"],
    learner_family=["leading", "full", "diagonal"],
    d=[2, 9],
    T=[6, 25],
    trajectories=[2, 9],
    fits=2,
    basis="random",
    seed=5,
)


def _cell_matrices(ds: xr.Dataset, spectrum: str, learner: str, family: str = "none", draw: int = 0):
    n = int(ds["n"].sel(spectrum=spectrum))
    st = ds.sel(spectrum=spectrum)
    Q = st["basis_change"].values[:n, :n]
    A = st["system"].values[:n, :n]
    A0 = st["nominal_model"].sel(family=family, draw=draw).values[:n, :n]
    D = int(st["learner_dim"].sel(learner_family=learner))
    B = st["learner_basis"].sel(learner_family=learner).values[:D, :n, :n]
    return n, Q, A, A0, B


def test_easy_cells_equal_statsmodels_ols_and_mpmath_risk(tmp_path):
    out = tmp_path / "easy.zarr"
    report = run_quietly(observed_fitted("easy", **EASY), out)
    assert report.complete
    ds = open_cube(out).load()
    seed = int(EASY["seed"])
    worst_phi = worst_risk = 0.0
    checked = 0
    for spectrum in ds["spectrum"].values:
        J = parse_spectrum(str(spectrum)).jordan_matrix()
        for learner in ds["learner_family"].values:
            _, Q, A, A0, B = _cell_matrices(ds, str(spectrum), str(learner))
            for d in ds["d"].values:
                if d > B.shape[0]:
                    assert np.isnan(ds["risk"].sel(spectrum=spectrum, learner_family=learner, d=d)).all()
                    continue
                for T in ds["T"].values:
                    for m in ds["trajectories"].values:
                        for fit in ds["fit"].values:
                            cell = ds.sel(
                                spectrum=spectrum,
                                family="none",
                                draw=0,
                                learner_family=learner,
                                d=d,
                                T=T,
                                trajectories=m,
                                fit=fit,
                            )
                            key = (str(spectrum), int(fit))  # the training set's key (docs/theory.md §6)
                            X, y = oracles.system_design(str(spectrum), seed, key, int(m), int(T), Q, B, A0, int(d))
                            ref = sm.OLS(y, X).fit().params
                            phi = cell["phi"].values
                            assert not bool(cell["underdetermined"]) and np.isnan(phi[d:]).all()
                            worst_phi = max(worst_phi, float(np.max(np.abs(phi[:d] - ref)) / np.max(np.abs(ref))))
                            Ahat = A0 + np.einsum("i,irc->rc", phi[:d], B[:d])
                            with mp.workdps(40):
                                Delta = mp.matrix((Q.T @ (A - Ahat) @ Q).tolist())
                                exact = oracles.mp_risk(J, int(T), Delta)
                            risk = float(cell["risk"])
                            worst_risk = max(worst_risk, abs(risk - float(exact)) / float(exact))
                            assert float(cell["log10_risk"]) == pytest.approx(np.log10(risk), rel=1e-12)
                            checked += 1
    assert checked > 30
    assert worst_phi < 1e-10, worst_phi
    assert worst_risk < 1e-9, worst_risk
    # the bias is the m -> infinity limit: below every mean risk's reach, and 0 for the whole class
    bias = ds["bias"].sel(family="none", draw=0)
    full = bias.sel(learner_family="full", d=9, spectrum="0.9, 0.5^2")
    assert (full == 0).all() and np.isneginf(
        ds["log10_bias"].sel(learner_family="full", d=9, spectrum="0.9, 0.5^2")
    ).all()


PERTURBED = dict(
    spectrum=["1.0^2, 0.5", "1.1, 0.5"],
    family=["block", "similarity"],
    draw=2,
    learner_family=["leading", "block"],
    d=[0, 2, 4, 9],
    T=[3, 20],
    trajectories=[1, 4],
    fits=2,
    nominal="perturbed",
)


def test_random_chunkings_give_the_same_bits_with_an_adversary():
    """Block by block in this process (as workers compute them), nominal = "perturbed"."""
    text = observed_fitted("pert", **PERTURBED)
    wf = parse_workflow(text)
    experiment = get_experiment(wf.experiment)
    static = experiment.static(wf.coords, wf.settings)
    reference = direct(text)
    dims = static["learner_dim"].transpose("spectrum", "learner_family").values
    defined = wf.coords["d"][None, None, :] <= dims[:, :, None]  # (spectrum, learner_family, d)
    risk = np.moveaxis(reference["risk"], (1, 2), (-2, -1))  # (spectrum, learner_family, d, ..., family, draw)
    assert np.isfinite(risk[defined]).all() and np.isnan(risk[~defined]).all() and (~defined).any()
    variables = experiment.variables(wf.settings)
    shape = tuple(len(wf.coords[a]) for a in experiment.axes)
    for seed in (21, 22):
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


BAD = [
    ({"nominal": "adversarial"}, "nominal = 'adversarial': must be one of 'zero', 'perturbed'"),
    ({"fit": "ridge"}, None),
    ({"learner_family": ["same"]}, "grid.learner_family"),
    ({"fits": 0}, "grid.fits = 0: must be an integer"),
    ({"trajectories": [0, 2]}, "grid.trajectories"),
    ({"T": [10, 5]}, "grid.T = [10, 5]: must be strictly increasing"),
    ({"family": ["block"]}, "grid.family = 'block': nominal = \"zero\" has no adversary"),
    ({"nominal": "perturbed"}, "grid.family = 'none': nominal = \"perturbed\" needs one of"),
    ({"d": [-1, 2]}, "grid.d"),
    ({"basis": "schur"}, "basis = 'schur'"),
]


@pytest.mark.parametrize(("change", "expected"), BAD, ids=[next(iter(c)) + str(i) for i, (c, _) in enumerate(BAD)])
def test_bad_values_are_one_line_exit_2_nothing_written(change, expected, tmp_path, capsys):
    out = tmp_path / "never.zarr"
    path = write_workflow(tmp_path, observed_fitted("bad", **change))
    assert main(["run", str(path), "--out", str(out)]) == 2
    line = one_clean_line(capsys.readouterr().err)
    assert line.startswith("emergence: error: ")
    if expected:
        assert expected in line, line
    assert not out.exists()


def test_a_cell_depends_only_on_its_own_training_set():
    """The same (spectrum, fit, T, m) cell from a grid with other T, m and fits has the same bits
    (prefix sharing, MATH.md 6.3): what makes extending a cube compute only the new cells."""
    small = direct(observed_fitted("a", T=[5, 10], trajectories=[2], fits=2))
    big = direct(observed_fitted("b", T=[5, 10, 20], trajectories=[2, 8], fits=4))
    for name in ("risk", "phi", "underdetermined"):
        assert same_bits(big[name][:, :, :, :, :, :2, :1, :2], small[name]), name
    assert same_bits(big["bias"][..., :2], small["bias"])


@pytest.mark.slow
def test_extending_fits_trajectories_and_T_computes_only_new_cells(tmp_path, shared_cluster):
    base = observed_fitted("grow", T=[5, 10], trajectories=[2], fits=2, chunks={"T": 1, "fit": 1})
    grown_text = observed_fitted("grow", T=[5, 10, 20], trajectories=[2, 8], fits=3, chunks={"T": 1, "fit": 1})
    grown = tmp_path / "grown.zarr"
    first = run_quietly(base, grown, shared_cluster)
    old = xr.open_zarr(grown).load()
    report = run_quietly(grown_text, grown, shared_cluster, extend=True)
    cells = parse_workflow(grown_text).plan.cells
    assert report.cells_computed == cells - first.cells_computed
    extended = xr.open_zarr(grown).load()
    at = {"T": old["T"], "trajectories": old["trajectories"], "fit": old["fit"]}
    xr.testing.assert_equal(extended.sel(at)[["risk", "phi"]], old[["risk", "phi"]])
    fresh = tmp_path / "fresh.zarr"
    run_quietly(grown_text, fresh, shared_cluster)
    assert_cubes_identical(grown, fresh, layout=False)


# -- thresholds ---------------------------------------------------------------------------------

SMALL_LEARNING = dict(
    spectrum=["0.5, 0.3", "1.0"],
    learner_family=["full"],
    d=[0, 1, 4],
    T=[20, 120],
    trajectories=[1, 40],
    fits=30,
)


@pytest.fixture(scope="module")
def learning_cube(tmp_path_factory):
    out = tmp_path_factory.mktemp("learning") / "learning.zarr"
    assert run_quietly(observed_fitted("learning", **SMALL_LEARNING), out).complete
    return open_cube(out).load()


def test_thresholds_over_fits_equal_numpy_on_the_cube(learning_cube):
    from pipeline.readers import thresholding as thr

    ds = learning_cube
    th = thr.compute_thresholds(ds)
    cell = ("spectrum", "family", "draw", "learner_family", "d", "T", "trajectories")
    risk = ds["risk"].transpose(*cell, "fit").values
    np.testing.assert_allclose(th["mean_risk"].transpose(*cell).values, risk.mean(-1), rtol=1e-14)
    stderr = risk.std(-1, ddof=1) / np.sqrt(risk.shape[-1])
    np.testing.assert_allclose(th["risk_stderr"].transpose(*cell).values, stderr, rtol=1e-12)
    q = np.moveaxis(np.quantile(risk, [0.1, 0.5, 0.9], axis=-1), 0, -1)
    np.testing.assert_allclose(th["risk_quantile"].transpose(*cell, "quantile").values, q, rtol=1e-14)
    excess = risk.mean(-1) - ds["bias"].transpose(*cell[:-1]).values[..., None]
    np.testing.assert_allclose(th["excess"].transpose(*cell).values, excess, rtol=1e-12, atol=1e-300)
    mT = ds["T"].values[:, None] * ds["trajectories"].values[None, :]
    at = th["normalised_excess"].sel(spectrum="0.5, 0.3", d=4).squeeze(drop=True).transpose("T", "trajectories")
    np.testing.assert_allclose(at.values, mT / 4 * excess[0, 0, 0, 0, 2], rtol=1e-12)
    # the whole class of a stable system: its theory 1 applies at d = n^2 only
    theory = th["normalised_excess_theory"].squeeze(["family", "draw", "learner_family"], drop=True)
    assert (theory.sel(spectrum="0.5, 0.3", d=4) == 1.0).all() and np.isnan(theory.sel(d=[0, 1])).all()
    assert np.isnan(theory.sel(spectrum="1.0")).all()  # a marginal system: not from 40 trajectories
    # Dickey-Fuller: T (ahat - 1) of the scalar random walk at m = 1, d = 1, the largest T
    b = float(ds["learner_basis"].sel(spectrum="1.0", learner_family="full")[0, 0, 0])
    phi = ds["phi"].sel(spectrum="1.0", d=1, trajectories=1, T=120).isel(param=0).squeeze().values
    want = np.quantile(120 * (phi * b - 1.0), [0.01, 0.05, 0.1])
    got = th["dickey_fuller_quantile"].sel(spectrum="1.0").squeeze().values
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # 30 fits put fewer than 10 below every tabulated quantile: unresolved, never "agrees"
    assert set(np.asarray(th["dickey_fuller_quantile_verdict"].sel(spectrum="1.0").values, dtype=str).ravel()) == {
        "unresolved"
    }
    risk_walk = ds["risk"].sel(spectrum="1.0", d=1, trajectories=1, T=120).squeeze().values
    constant = float(th["random_walk_constant"].sel(spectrum="1.0").squeeze())
    assert constant == pytest.approx(120 * risk_walk.mean(), rel=1e-14)
    assert float(th["random_walk_constant_theory"].sel(spectrum="1.0").squeeze()) == pytest.approx(6.6428, abs=1e-4)
    assert np.isnan(th["random_walk_constant"].sel(spectrum="0.5, 0.3")).all()
    # the learned critical d: the random walk needs d = 1 (theory 1); the stable system's 0
    crit = th["critical_d_learned"].squeeze(["family", "draw", "learner_family"], drop=True)
    assert (crit.sel(spectrum="1.0") == 1).all() and (crit.sel(spectrum="0.5, 0.3") == 0).all()
    verdicts = np.asarray(th["critical_d_learned_verdict"].values, dtype=str)
    assert set(verdicts.ravel()) == {"agrees"}
    assert thr.format_table(th).count("disagreements with theory: 0") == 1


def test_a_disagreement_is_listed_with_its_tolerance(learning_cube):
    """A cube whose stable whole-class risks were three times too large disagrees with 1."""
    from pipeline.experiments import experiment_of
    from pipeline.readers import thresholding as thr

    ds = learning_cube.copy()
    tripled = (ds["spectrum"] == "0.5, 0.3") & (ds["d"] == 4)
    ds["risk"] = xr.where(tripled, 3.0 * ds["risk"], ds["risk"]).transpose(*ds["risk"].dims)
    th = thr.compute_thresholds(ds)
    verdict = th["normalised_excess_verdict"].sel(spectrum="0.5, 0.3", d=4).squeeze()
    assert str(verdict.values) == "disagrees"
    lines = experiment_of(th).disagreements(th)
    assert any(line.startswith("normalised_excess 0.5, 0.3 learner=full d=4 T=120 m=40:") for line in lines), lines
    assert any("tolerance: 0.25 + 3 standard errors" in line for line in lines)
    same = thr.compute_thresholds(learning_cube)
    untouched = str(same["normalised_excess_verdict"].sel(spectrum="0.5, 0.3", d=4).squeeze().values)
    assert untouched in ("agrees", "unresolved")  # 30 fits: the noise band may be too wide to agree


def test_a_marginal_system_is_held_to_1_from_many_trajectories(tmp_path, threaded_cluster):
    """MATH §6.5: the random walk's constant is ~6.6 from one trajectory and tends to 1 as m grows;
    the comparison is made at m >= 100 only, and a cube three times off there disagrees."""
    from pipeline.experiments.observed_fitted.thresholds import FPE_MANY_TRAJECTORIES
    from pipeline.readers import thresholding as thr

    grid = dict(spectrum=["1.0"], learner_family=["full"], d=[1], T=[20, 100], trajectories=[1, 100], fits=800)
    out = tmp_path / "walk.zarr"
    assert run_quietly(observed_fitted("walk", **grid), out, threaded_cluster).complete
    ds = open_cube(out).load()
    assert FPE_MANY_TRAJECTORIES == 100
    th = thr.compute_thresholds(ds)
    theory = th["normalised_excess_theory"].squeeze(drop=True)
    assert np.isnan(float(theory.sel(trajectories=1))) and float(theory.sel(trajectories=100)) == 1.0
    one = float(th["normalised_excess"].sel(T=100, trajectories=1).squeeze())
    many = float(th["normalised_excess"].sel(T=100, trajectories=100).squeeze())
    assert one > 3 and abs(many - 1) < 0.25, (one, many)  # 6.6 from one trajectory, 1 from many
    assert str(th["normalised_excess_verdict"].squeeze().values) == "agrees"
    ds["risk"] = 3.0 * ds["risk"]
    tripled = thr.compute_thresholds(ds)
    assert str(tripled["normalised_excess_verdict"].squeeze().values) == "disagrees"
    assert thr.format_table(tripled).count("normalised_excess 1.0 learner=full d=1 T=100 m=100:") == 1


def test_fit_best_is_the_plain_observed_experiment_with_its_fingerprint():
    from tests.helpers import observed

    plain = parse_workflow(observed("same"))
    best = parse_workflow(observed("same", fit="best"))
    assert (best.experiment, best.fingerprint) == ("observed", plain.fingerprint)
    assert parse_workflow(observed_fitted("f")).experiment == "observed_fitted"
