"""The observed experiment end to end: MATH §1.4's table out of a real cube, chunking,
Monte Carlo, thresholds with known answers, their disagreements and the figures."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import xarray.testing as xrt

from pipeline.core.errors import UsageError
from pipeline.experiments.observed import report
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from tests.helpers import (
    SYNTHETIC_FAMILIES,
    SYNTHETIC_SPECTRA,
    SYNTHETIC_THEORY,
    assert_cubes_identical,
    observed,
    run_quietly,
    synthetic_observed,
)

TABLE = {  # MATH §1.4 reference values: block, full, similarity
    "1.0^2, 0.5": (4, 6, 4),
    "1.0^3": (9, 9, 6),
    "1.0^[1,1]": (4, 4, 0),
    "1.0^[2,1]": (9, 9, 4),
    "1.05@30": (2, 4, 2),
    "0.9^2, 0.5": (0, 0, 0),
}
TABLE_WORKFLOW = observed(
    "table", seed=1, spectrum=list(TABLE), family=["block", "full", "similarity"], T=[1, 10, 1000]
)


@pytest.mark.slow
def test_math_table_out_of_a_cube_and_chunking_invariance(tmp_path, shared_cluster):
    run_quietly(TABLE_WORKFLOW, tmp_path / "a.zarr", shared_cluster)
    ds = open_cube(tmp_path / "a.zarr").load().sel(learner_family="same")
    for spectrum, expected in TABLE.items():
        got = tuple(int(ds["critical_d_theory"].sel(spectrum=spectrum, family=f)) for f in SYNTHETIC_FAMILIES)
        assert got == expected, spectrum
    defined = ds["d"] <= ds["family_dim"]
    assert not bool((ds["risk"].isnull() & defined).any())  # NaN only where d > family_dim
    assert bool((ds["risk"].isnull() | defined).all())
    # the exact rank test agrees with the closed-form d* (defined cells)
    expected = (ds["d"] >= ds["critical_d_theory"]).broadcast_like(ds["bounded"])
    np.testing.assert_array_equal(ds["bounded"].where(defined, True).values, (expected | ~defined).values)
    split = TABLE_WORKFLOW + "\n[chunks]\nspectrum = 2\nfamily = 1\nT = 2\ndraw = 1\n"
    run_quietly(split, tmp_path / "b.zarr", shared_cluster)
    assert_cubes_identical(tmp_path / "a.zarr", tmp_path / "b.zarr", layout=False)


@pytest.mark.slow
def test_montecarlo_agrees_with_exact(tmp_path, shared_cluster):
    text = observed("mc", seed=1, spectrum=["1.0^[1,1]"], family=["block", "full"], T=[5, 40])
    run_quietly(text, tmp_path / "exact.zarr", shared_cluster)
    run_quietly(
        text.replace("seed = 1", 'seed = 1\nmethod = "montecarlo"\nmc_samples = 2000'),
        tmp_path / "mc.zarr",
        shared_cluster,
    )
    exact, mc = open_cube(tmp_path / "exact.zarr").load(), open_cube(tmp_path / "mc.zarr").load()
    defined = (exact["d"] <= exact["family_dim"]) & (exact["risk"] > 0)
    with np.errstate(invalid="ignore"):  # 0/0 at the exactly-zero cells left out below
        z = ((mc["risk"] - exact["risk"]) / mc["risk_stderr"]).where(defined)
    assert int(defined.sum()) > 10
    assert float(np.abs(z).max()) < 4.5, z.values


def test_known_answer():
    out = thr.compute_thresholds(synthetic_observed(), source="obs.zarr")
    expected = xr.DataArray(
        SYNTHETIC_THEORY.astype(float),
        dims=("spectrum", "family"),
        coords={
            "spectrum": np.array(SYNTHETIC_SPECTRA, dtype=object),
            "family": np.array(SYNTHETIC_FAMILIES, dtype=object),
            "n": ("spectrum", [3, 2, 3]),
            "n_unstable": ("spectrum", [2, 2, 0]),
            "spectral_radius": ("spectrum", [1.0, 1.0, 0.9]),
        },
    )
    for name in ("critical_d", "critical_d_theory", "critical_d_empirical"):
        xrt.assert_equal(out[name].sel(learner_family="same", drop=True).drop_attrs(), expected)
    g = out["growth_exponent"].sel(learner_family="same")
    assert float(g.sel(spectrum="1.0^2, 0.5", family="full", d=0, draw=0)) == pytest.approx(3.0)
    assert np.isnan(g.sel(spectrum="1.0^[1,1]", family="full", d=5)).all()  # d > family_dim
    assert report.disagreements(out) == []
    table = thr.format_table(out)
    assert "disagreements with theory: 0" in table
    # exact counts agree; the growth readings have settled over the two windows of T = 10, 100, 1000
    assert set(np.asarray(out["critical_d_verdict"].values, dtype=str).ravel()) == {"agrees"}
    assert set(np.asarray(out["critical_d_empirical_verdict"].values, dtype=str).ravel()) == {"agrees"}
    assert table.splitlines()[-1] == "comparisons with theory: 18 agree, 0 disagree, 0 unresolved"


def test_every_draw_counts():
    out = thr.compute_thresholds(synthetic_observed(late_draw=True))
    sel = {"spectrum": "1.0^2, 0.5", "family": "block", "learner_family": "same"}
    assert float(out["critical_d"].sel(sel)) == 5 and float(out["critical_d_empirical"].sel(sel)) == 5
    assert float(out["critical_d_theory"].sel(sel)) == 4
    assert report.disagreements(out) == [
        "critical_d spectrum=1.0^2, 0.5 family=block: 5 vs theory 4",
        "critical_d_empirical spectrum=1.0^2, 0.5 family=block: 5 vs theory 4",
    ]


def test_growth_tol_moves_empirical_threshold():
    out = thr.compute_thresholds(synthetic_observed(), thr.options(growth_tol=4.0))  # T^3 counts as bounded
    assert (out["critical_d_empirical"].values == 0).all()
    with pytest.raises(UsageError, match="--growth-tol"):
        thr.options(growth_tol=-1)


def test_cubes_of_the_first_format_still_open():
    old = synthetic_observed().rename_vars({"critical_d_theory": "critical_d"})
    from pipeline.experiments import experiment_of

    adapted = experiment_of(old).adapt(old)
    same = adapted["critical_d_theory"].sel(learner_family="same", drop=True)
    xrt.assert_identical(same, synthetic_observed()["critical_d_theory"])
    # a cube from before the learner_family axis reads as learner_family = same
    xrt.assert_equal(adapted["learner_dim"].sel(learner_family="same", drop=True), old["family_dim"])
    assert bool(adapted["learnable"].all())


def test_figures_have_distinct_names_for_every_spectrum():
    ds = synthetic_observed()
    ds = ds.assign_coords(spectrum=np.array(["1.0^2", "1.0, 2", "0.5@45"], dtype=object))
    stems = [d.stem for d in plots.draw(ds, thr.compute_thresholds(ds))]
    assert len(stems) == len(set(stems)) == 4
    assert "synthetic_observed_risk_0.5at45" in stems


@pytest.mark.slow
def test_critical_d_equals_theory_on_a_real_run(tmp_path, shared_cluster):
    text = observed(
        "critical",
        seed=3,
        spectrum=list(TABLE),
        family=["block", "full", "similarity"],
        T={"geom": [1e2, 1e8], "num": 4},
    )
    run_quietly(text, tmp_path / "c.zarr", shared_cluster)
    ds = open_cube(tmp_path / "c.zarr")
    out = thr.compute_thresholds(ds)
    xrt.assert_equal(out["critical_d"].drop_attrs(), out["critical_d_theory"].drop_attrs())
    xrt.assert_equal(out["critical_d_empirical"].drop_attrs(), out["critical_d_theory"].drop_attrs())
    assert out["critical_d_theory"].sel(spectrum="1.0^[2,1]", learner_family="same").values.tolist() == [9, 9, 4]
    assert report.disagreements(out) == []


def _noisy_late_draw(rel_stderr: float) -> xr.Dataset:
    """The late-draw cube as a Monte Carlo cube: draw 1 of (1.0^2, 0.5; block) grows like T^0.55
    at d = d* = 4 (just above growth_tol 0.5), every risk with relative standard error ``rel_stderr``."""
    ds = synthetic_observed(late_draw=True)
    cell = {"spectrum": "1.0^2, 0.5", "family": "block", "d": 4, "draw": 1}
    ds["log10_risk"].loc[cell] = 0.55 * np.log10(ds["T"].values) - 1.0
    ds["risk"] = 10.0 ** ds["log10_risk"]
    ds["risk_stderr"] = ds["risk"] * rel_stderr
    return ds


def test_montecarlo_miss_within_the_noise_is_unresolved_not_a_disagreement():
    sel = {"spectrum": "1.0^2, 0.5", "family": "block", "learner_family": "same"}
    # sigma_g = sqrt(2) * 0.08 / ln 10 = 0.049: the miss of 0.05 is within 3 standard errors
    noisy = thr.compute_thresholds(_noisy_late_draw(0.08))
    assert float(noisy["critical_d_empirical"].sel(sel)) == 5
    assert str(noisy["critical_d_empirical_verdict"].sel(sel).values) == "unresolved"
    assert report.disagreements(noisy) == ["critical_d spectrum=1.0^2, 0.5 family=block: 5 vs theory 4"]
    # the same reading with a hundredfold smaller error is a disagreement
    clear = thr.compute_thresholds(_noisy_late_draw(0.0008))
    assert str(clear["critical_d_empirical_verdict"].sel(sel).values) == "disagrees"


def test_two_horizons_cannot_tell_a_transient_from_the_law():
    """With T = 10, 100 only (as the reference Monte Carlo cube mc_observed), a growth exponent
    has no window before it to show it has settled: the empirical count is unresolved."""
    out = thr.compute_thresholds(synthetic_observed().isel(T=[0, 1]))
    verdict = out["critical_d_empirical_verdict"].sel(learner_family="same", drop=True)
    growing = (out["family_dim"] > 0).values  # a family of dimension 0: r_T = 0 exactly, nothing to settle
    assert set(np.asarray(verdict.values, dtype=str)[growing]) == {"unresolved"}
    assert set(np.asarray(out["critical_d_verdict"].values, dtype=str).ravel()) == {"agrees"}  # exact: decided


def test_figures_a_reader_can_read():
    ds = synthetic_observed()
    drawn = {d.stem: d.figure for d in plots.draw(ds, thr.compute_thresholds(ds))}
    # the grey region of d beyond a family's dimension is named in the legend
    bounded = drawn["synthetic_observed_bounded"]
    legend = [t.get_text() for ax in bounded.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("d > family dimension") for label in legend)
    # a risk map's d axis ends at the spectrum's largest family dimension (1.0^[1,1]: 4), its colour
    # bar label is one line
    risk = drawn["synthetic_observed_risk_1.0p1_1"]
    assert all(ax.get_xlim()[1] <= 4.5 for ax in risk.axes[:-1])
    assert "\n" not in risk.axes[-1].get_ylabel()


def test_learner_lines_stay_apart_and_name_the_horizon_in_powers_of_ten():
    from pipeline.experiments.observed.thresholds import with_learner_axis

    same = with_learner_axis(synthetic_observed())
    other = same.assign_coords(learner_family=np.array(["block"], dtype=object))
    ds = xr.concat([same, other], dim="learner_family", data_vars="minimal", coords="minimal", compat="override")
    ds = ds.assign_coords(T=[10, 1000, 10**8])
    fig = {d.stem: d.figure for d in plots.draw(ds, thr.compute_thresholds(ds))}[
        "synthetic_observed_learners_1.0p2_0.5"
    ]
    ax = fig.axes[0]
    assert "10^{8}" in ax.get_ylabel() and "e+" not in ax.get_ylabel().replace(" ", "")
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 1 and line.get_marker() not in ("None", "*")]
    assert len(curves) == 2
    assert len({(c.get_marker(), c.get_linestyle()) for c in curves}) == 2  # told apart where they coincide
    assert curves[0].get_linewidth() > curves[1].get_linewidth()  # the one below is the wider
