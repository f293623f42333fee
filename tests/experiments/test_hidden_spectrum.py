"""The hidden experiment over spectra (issue 12, MATH §5) on the experiment seam: selection by
the ``spectrum`` axis, a real run and its chunking invariance, the scalar special case against
the ``lam`` experiment, refusals through the CLI, thresholds against theory, the workflow."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import verdicts
from pipeline.core.errors import ConfigError
from pipeline.experiments import get_experiment
from pipeline.experiments.hidden.thresholds import slope_band, staircase_slope_error
from pipeline.models.hidden import kalman
from pipeline.plan.config import load_workflow, parse_workflow
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from tests.helpers import (
    REPO,
    assert_cubes_identical,
    direct,
    emergence,
    hidden,
    hidden_spectrum,
    one_clean_line,
    run_quietly,
    write_workflow,
)

SMALL = hidden_spectrum()


def test_spectrum_axis_selects_the_spectrum_variant_and_lam_keeps_the_scalar_one():
    assert parse_workflow(SMALL).experiment == "hidden_spectrum"
    scalar = parse_workflow(hidden())
    assert scalar.experiment == "hidden" and "lam" in scalar.coords
    wf = parse_workflow(SMALL)
    assert wf.settings.extra["observation"] == "sum"
    assert list(wf.coords) == ["spectrum", "noise_ratio", "learner", "k", "T"]


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"spectrum": ["1.0, 1.0"]}, "grid.spectrum", "Assumption 4.1"),
        ({"spectrum": ["1.0@60^[1,1]"]}, "grid.spectrum", "Assumption 4.1"),
        ({"spectrum": ["0.5^17"]}, "grid.spectrum", "at most 16"),
        ({"observation": "first"}, "observation", "'sum'"),
        ({"learner": ["kalman"]}, "grid.learner", "truncated_kalman"),
    ],
)
def test_bad_values_name_key_value_and_rule(changes, key, words):
    with pytest.raises(ConfigError) as err:
        parse_workflow(hidden_spectrum(**changes))
    assert err.value.key.startswith(key) and words in str(err.value)
    assert "\n" not in str(err.value)


def test_lam_beside_spectrum_is_an_unknown_axis_and_the_variant_can_be_named():
    with pytest.raises(ConfigError) as err:
        parse_workflow(SMALL.replace("[grid]\n", "[grid]\nlam = [1.0]\n"))
    assert err.value.key == "grid.lam" and "spectrum" in str(err.value)
    named = parse_workflow(SMALL.replace('experiment = "hidden"', 'experiment = "hidden_spectrum"'))
    assert named.experiment == "hidden_spectrum"
    assert all((named.coords[a] == parse_workflow(SMALL).coords[a]).all() for a in named.coords)


def test_stable_double_block_is_allowed():
    """Assumption 4.1 concerns only |lam| >= 1: two blocks of a stable eigenvalue are fine."""
    assert parse_workflow(hidden_spectrum(spectrum=["1.0, 0.5^[1,1]"])).coords["spectrum"].tolist() == [
        "1.0, 0.5^[1,1]"
    ]


@pytest.mark.slow
def test_one_term_spectrum_is_the_scalar_experiment():
    """Spectrum "0.9" and lam = 0.9 (likewise 1.0 and 1.05): same cells to the model's
    documented 8.4e-14 (the scalar kernel's own error), same Kalman solution."""
    grid = {"noise_ratio": [0.1, 4.0, 100.0], "k": {"range": [1, 8]}, "T": [1, 5, 100, 10**4, 10**7]}
    for lam in (0.9, 1.0, 1.05):
        T = grid["T"] if lam <= 1 else [1, 5, 100, 1000]
        scalar = direct(hidden("s", lam=[lam], **(grid | {"T": T})))
        text = hidden_spectrum("v", spectrum=[str(lam)], **(grid | {"T": T}))
        wf = parse_workflow(text)
        exp = get_experiment(wf.experiment)
        st = exp.static(wf.coords, wf.settings)
        spec = exp.kernel(wf.coords, st, wf.settings)
        for name in ("risk", "log10_risk", "kl_rate"):
            a, b = scalar[name], spec[name]
            assert a.shape == b.shape
            np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
            fin = np.isfinite(a)
            np.testing.assert_allclose(b[fin], a[fin], rtol=1e-13, atol=0, err_msg=f"{name} lam={lam}")
        P, K, a_pole = kalman(np.float64(lam), np.asarray(grid["noise_ratio"]))
        np.testing.assert_allclose(st["innovation_variance"].values[0], P + np.asarray(grid["noise_ratio"]), rtol=1e-13)
        np.testing.assert_allclose(st["kalman_gain"].values[0, :, 0], K, rtol=1e-13)
        np.testing.assert_allclose(st["closed_loop_radius"].values[0], np.abs(a_pole), rtol=1e-13)


def test_static_part_pads_and_counts():
    wf = parse_workflow(hidden_spectrum(spectrum=["1.0", "1.0^2", "1.0, 0.5"]))
    st = get_experiment(wf.experiment).static(wf.coords, wf.settings)
    assert st["n"].values.tolist() == [1, 2, 2]
    assert st["n_unstable"].values.tolist() == [1, 2, 1]
    assert st["max_marginal_block"].values.tolist() == [1, 2, 1]
    assert st["system"].shape == (3, 2, 2) and np.isnan(st["system"].values[0, 1]).all()
    np.testing.assert_array_equal(st["system"].values[1], [[1.0, 1.0], [0.0, 1.0]])
    assert np.isnan(st["kalman_covariance"].values[0, :, 1, :]).all()
    assert not np.isnan(st["kalman_covariance"].values[1]).any()
    assert (st["closed_loop_radius"].values < 1).all()
    # best_fir bounded from k = n_u on; truncated_kalman never (n_u > 0)
    bf = st["bounded"].sel(learner="best_fir").values
    np.testing.assert_array_equal(bf, st["k"].values[None, :] >= st["n_unstable"].values[:, None])
    assert not st["bounded"].sel(learner="truncated_kalman").values.any()
    np.testing.assert_array_equal(st["critical_k"].sel(learner="best_fir"), [1, 2, 1])
    assert np.isinf(st["critical_k_theory"].sel(learner="truncated_kalman")).all()


@pytest.mark.slow
def test_refused_spectrum_exits_2_with_one_line_and_writes_nothing(tmp_path):
    path = write_workflow(tmp_path, hidden_spectrum(spectrum=["1.0", "1.0, 1.0"]))
    out = tmp_path / "o.zarr"
    result = emergence("run", str(path), "--out", str(out))
    line = one_clean_line(result.stderr)
    assert result.returncode == 2 and "grid.spectrum" in line and "'1.0, 1.0'" in line and "Assumption 4.1" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf.toml"]


@pytest.mark.slow
def test_real_run_thresholds_and_chunking_invariance(tmp_path, shared_cluster):
    run_quietly(SMALL, tmp_path / "a.zarr", shared_cluster)
    ds = open_cube(tmp_path / "a.zarr").load()
    assert ds.attrs["experiment"] == "hidden_spectrum"
    assert ds["risk"].dims == ("spectrum", "noise_ratio", "learner", "k", "T")
    assert not bool(ds["risk"].isnull().any())
    # k >= T: exactly 0
    assert (ds["risk"].where(ds["k"] >= ds["T"]).fillna(0) == 0).all()
    np.testing.assert_allclose(ds["kl_rate"], ds["risk"] / (2 * ds["innovation_variance"]), rtol=1e-15)

    th = thr.compute_thresholds(ds)
    g = th["growth_exponent"]
    # truncated_kalman grows like T^(2m - 1): 1 for "1.0" and "1.0, 0.5", 3 for "1.0^2", 0 for "0.9"
    for spectrum, exponent in (("1.0", 1), ("1.0^2", 3), ("1.0, 0.5", 1), ("0.9", 0)):
        np.testing.assert_allclose(g.sel(spectrum=spectrum, learner="truncated_kalman"), exponent, atol=0.05)
        assert float(th["growth_exponent_theory"].sel(spectrum=spectrum, learner="truncated_kalman", k=1)) == exponent
    # best_fir: empirical critical k (from the growth exponents) equals the rank test and n_u (>= 1 here)
    emp = th["critical_k_empirical"].sel(learner="best_fir")
    expected = np.maximum(ds["n_unstable"], 1)
    np.testing.assert_array_equal(emp, expected.broadcast_like(emp).transpose(*emp.dims))
    lines = thr.format_table(th)
    assert "1.0^2 | best_fir | 2 | 2 | 2 / 2, 2 / 2" in lines
    # no growth-exponent, critical-k or k* slope disagreement on this grid
    assert get_experiment("hidden_spectrum").disagreements(th) == []

    said = get_experiment("hidden_spectrum").summary(ds, th)
    assert any(
        line.startswith("spectrum 1.0^2, truncated_kalman: risk grows like T^3 at every k (theory T^3: agrees)")
        for line in said
    )
    assert (
        "spectrum 1.0, 0.5, best_fir: risk bounded in T from k = 1 taps (rank test; theory n_u = 1: agrees; "
        "growth readings: agrees)" in said
    )

    drawn = {d.stem: d for d in plots.draw(ds, th)}
    assert {"hspec_kstar_1.0p2", "hspec_kstar_1.0_0.5", "hspec_risk_best_fir_r0.5", "hspec_summary"} <= set(drawn)
    assert len([s for s in drawn if "_kstar_" in s]) == ds.sizes["spectrum"]
    # one risk map per learner and noise ratio, not only for one noise ratio
    assert len([s for s in drawn if "_risk_" in s]) == ds.sizes["learner"] * ds.sizes["noise_ratio"]
    # "0.9" has critical k 0 below the cube's smallest k: its empirical value is marked censored ("at most")
    assert (
        th["critical_k_empirical_verdict"].sel(spectrum="0.9", learner="best_fir").values.tolist()
        == ["unresolved"] * ds.sizes["noise_ratio"]
    )
    assert "v" in {line.get_marker() for line in drawn["hspec_summary"].figure.axes[0].get_lines()}

    split = SMALL + "\n[chunks]\nspectrum = 1\nnoise_ratio = 1\nk = 3\nT = 2\n"
    run_quietly(split, tmp_path / "b.zarr", shared_cluster)
    assert_cubes_identical(tmp_path / "a.zarr", tmp_path / "b.zarr", layout=False)


def test_shipped_workflow_maps_the_issue_spectra():
    wf = load_workflow(REPO / "workflows" / "hidden_spectra.toml")
    assert wf.experiment == "hidden_spectrum"
    assert set(wf.coords["spectrum"].tolist()) >= {
        "1.0",
        "1.0^2",
        "1.0^3",
        "1.0@60",
        "1.0@60^2",
        "1.0, -1.0",
        "1.0, 0.5^2",
        "0.9^2",
        "1.02",
    }
    assert set(wf.coords["learner"].tolist()) == {"truncated_kalman", "best_fir"}
    assert wf.coords["noise_ratio"].min() == pytest.approx(0.1) and wf.coords["noise_ratio"].max() == pytest.approx(100)
    assert wf.coords["k"].max() <= 64 and wf.coords["T"].max() <= 10**8


@pytest.mark.slow
def test_shipped_workflow_lists_no_disagreement(tmp_path, shared_cluster):
    """Issue 12's "done when": the headline cube against theory, every tolerance as documented."""
    run_quietly(load_workflow(REPO / "workflows" / "hidden_spectra.toml"), tmp_path / "hs.zarr", shared_cluster)
    th = thr.compute_thresholds(open_cube(tmp_path / "hs.zarr").load())
    assert get_experiment("hidden_spectrum").disagreements(th) == []
    # the widened k* resolution is in use where the closed loop oscillates, and only there
    period = th["closed_loop_period"]
    assert float(period.sel(spectrum="1.0^2", noise_ratio=th["noise_ratio"][3])) == pytest.approx(14.5, abs=0.1)
    assert (period.sel(spectrum=["1.0", "1.02"]) == 0).all()


def test_growth_verdicts_flag_misses_accept_exponential_and_wait_for_settling():
    g = np.array([2.8, 2.4, 1e6, 3.0, np.nan, 2.9, 2.9])
    before = np.array([2.9, 2.4, 1e5, 3.0, np.nan, 1.0, np.nan])  # the sixth still rising; the last: no window
    theory = np.array([3.0, 3.0, np.inf, np.inf, 0.0, 3.0, 3.0])
    got = verdicts.growth_verdicts(g, before, theory, theory, 0.5, None, 5.0).tolist()
    assert got == ["agrees", "disagrees", "agrees", "disagrees", "agrees", "unresolved", "unresolved"]
    # Monte Carlo: a miss within three standard errors of the band's edge is unresolved
    noisy = verdicts.growth_verdicts(
        np.array([3.6, 3.6]), np.array([3.6, 3.6]), 3.0, 3.0, 0.5, np.array([0.05, 0.01]), 5.0
    )
    assert noisy.tolist() == ["unresolved", "disagrees"]
    # a band wider than half the gap between growth laws cannot decide
    assert verdicts.growth_verdicts(np.array([1.2]), np.array([1.2]), 1.0, 1.0, 0.8, None, 5.0).tolist() == [
        "unresolved"
    ]


def test_slope_band_widens_by_the_closed_loop_oscillation_it_measures():
    x = np.log(np.geomspace(1e3, 1e15, 49))
    line = np.ceil(2.48 * x)
    wobble = line - 10.0 * (np.sin(2 * np.pi * 2.48 * x / 14.5) > 0.9)  # a near-zero every 14.5 taps
    plain = slope_band(2.48, x, line, period=14.5)
    wide = slope_band(2.48, x, wobble, period=14.5)
    assert plain == pytest.approx(0.248)  # no excess deviation: the 10% floor
    assert wide > plain
    # the excess of 10 taps recurring every 14.5/2.48 e-folds over 27.6 e-folds: 1.5 * 10/L * 2q(1 + q)
    q = (14.5 / 2.48) / (x[-1] - x[0])
    residual = wobble - np.polyval(np.polyfit(x, wobble, 1), x)
    excess = residual.max() - residual.min() - 1
    assert wide == pytest.approx(
        staircase_slope_error(2.48, x) + 1.5 * excess / (x[-1] - x[0]) * 2 * q * (1 + q), rel=1e-12
    )


@pytest.mark.slow
def test_montecarlo_agrees_with_exact(tmp_path, shared_cluster):
    text = hidden_spectrum(
        "mc", spectrum=["1.0", "1.0^2"], noise_ratio=[1.0], k=[1, 2, 3], T=[2, 5, 50], seed=1, mc_samples=4000
    )
    run_quietly(text, tmp_path / "exact.zarr", shared_cluster)
    run_quietly(text.replace("seed = 1", 'seed = 1\nmethod = "montecarlo"'), tmp_path / "mc.zarr", shared_cluster)
    exact, mc = open_cube(tmp_path / "exact.zarr").load(), open_cube(tmp_path / "mc.zarr").load()
    assert "risk_stderr" in mc and "risk_stderr" not in exact
    live = (mc["k"] < mc["T"]).broadcast_like(mc["risk"])
    assert (mc["risk_stderr"].where(live) > 0).sum() == int(live.sum())
    z = ((mc["risk"] - exact["risk"]) / mc["risk_stderr"]).where(live)
    assert float(abs(z).max()) < 5
    assert (mc["risk"].where(~live).fillna(0) == 0).all()
