"""Thresholds on small synthetic cubes with known answers, and on real runs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import xarray as xr
import xarray.testing as xrt

from pipeline import thresholds as th
from pipeline.errors import UsageError

DECADES = np.array([10, 100, 1000, 10**4, 10**5, 10**6, 10**7, 10**8])
HIDDEN_WORKFLOW = 'experiment = "hidden"\nname = "synthetic_hidden"\n'
OBSERVED_WORKFLOW = 'experiment = "observed"\nname = "synthetic_observed"\n'


def synthetic_hidden(k_max: int = 12) -> xr.Dataset:
    """truncated_kalman: R = 10^(log10 T - k/2), so k*(T; tau=1) = 2 log10 T exactly (slope 2/ln 10)
    and g = 1; best_fir: R = 3 * 10^(-k/2), bounded (k* constant, g = 0)."""
    k = np.arange(1, k_max + 1)
    logT = np.log10(DECADES.astype(float)).round()
    trunc = logT[None, :] - k[:, None] / 2.0
    best = np.log10(3.0) - k[:, None] / 2.0 + 0.0 * logT[None, :]
    log10_risk = np.stack([trunc, best])[None, None]  # lam nr learner k T
    dims = ("lam", "noise_ratio", "learner", "k", "T")
    ds = xr.Dataset(
        {"log10_risk": (dims, log10_risk), "risk": (dims, 10.0 ** log10_risk),
         "kl_rate": (dims, 10.0 ** log10_risk / 2.0),
         "a": (("lam", "noise_ratio"), [[0.8]]), "P": (("lam", "noise_ratio"), [[1.0]]),
         "kalman_gain": (("lam", "noise_ratio"), [[0.5]])},
        coords={"lam": [1.0], "noise_ratio": [4.0],
                "learner": np.array(["truncated_kalman", "best_fir"], dtype=object), "k": k, "T": DECADES},
    )
    ds.attrs.update(experiment="hidden", workflow=HIDDEN_WORKFLOW, workflow_fingerprint="f00")
    return ds


def test_hidden_k_star_known_answer():
    ds = synthetic_hidden()
    out = th.compute_thresholds(ds, taus=[1.0, 0.01])
    logT = np.log10(DECADES.astype(float)).round()
    trunc = {1.0: 2 * logT, 0.01: 2 * logT + 4}
    expected_trunc = np.stack([np.where(trunc[t] <= 12, trunc[t], np.nan) for t in (1.0, 0.01)], axis=-1)
    # best_fir: 3 * 10^(-k/2) <= tau  <=>  k >= 2 log10(3 / tau)
    expected_best = np.stack([np.full(DECADES.size, math.ceil(2 * math.log10(3 / t))) for t in (1.0, 0.01)], -1)
    expected = xr.DataArray(np.stack([expected_trunc, expected_best])[None, None].astype(float),
                            dims=("lam", "noise_ratio", "learner", "T", "tau"),
                            coords={"lam": [1.0], "noise_ratio": [4.0],
                                    "learner": np.array(["truncated_kalman", "best_fir"], dtype=object),
                                    "T": DECADES, "tau": [1.0, 0.01]})
    xrt.assert_equal(out["k_star"].drop_attrs(), expected)


def test_hidden_slope_regime_and_theory():
    out = th.compute_thresholds(synthetic_hidden(), taus=[1.0, 0.01])
    tk = out.sel(lam=1.0, noise_ratio=4.0, learner="truncated_kalman")
    # regime: T >= 10 max(k*, 1/(1-a) = 5), k* defined (k <= 12) and > k_min:
    # tau=1: k* = 2,4,..,16 -> T = 100..1e6 (k* <= 12); tau=0.01: k* = 6,8,..,12 -> T = 100..1e4
    np.testing.assert_array_equal(tk["k_star_in_regime"].sel(tau=1.0), [0, 1, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(tk["k_star_in_regime"].sel(tau=0.01), [0, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_allclose(tk["k_star_slope"].values, 2 / math.log(10), rtol=1e-12)
    bf = out["k_star_slope"].sel(learner="best_fir")
    np.testing.assert_array_equal(bf.values.ravel(), [0.0, 0.0])  # constant k* (censored at k_min for tau=1)
    assert float(out["k_star_slope_theory"].squeeze()) == pytest.approx(1 / (2 * math.log(1 / 0.8)))
    np.testing.assert_allclose(out["k_star_theory"].sel(tau=1.0).squeeze(),
                               np.log(DECADES / 2.0) / (2 * math.log(1 / 0.8)))
    np.testing.assert_allclose(out["growth_exponent"].sel(learner="truncated_kalman").squeeze(), 1.0)
    np.testing.assert_allclose(out["growth_exponent"].sel(learner="best_fir").squeeze(), 0.0, atol=1e-12)
    np.testing.assert_array_equal(out["growth_exponent_theory"].squeeze(), [1.0, 0.0])
    assert "asymptotic_regime_rule" in out.attrs and "1/(1 - |a|)" in out.attrs["asymptotic_regime_rule"]
    assert out["k_star_slope"].attrs["rule"] == out.attrs["asymptotic_regime_rule"]


def test_hidden_table_lists_disagreements():
    out = th.compute_thresholds(synthetic_hidden(), taus=[1.0], source="synthetic.zarr")
    text = th.format_table(out)
    assert "workflow synthetic_hidden" in text
    tail = text.split("disagreements with theory:")[1]
    # 2/ln10 = 0.869 against 1/(2 ln(1/0.8)) = 2.241: listed
    assert "k_star_slope lam=1 noise_ratio=4 truncated_kalman tau=1: 0.869 vs theory 2.241" in tail
    assert "best_fir" not in tail and "growth_exponent" not in tail


def test_theory_slope_and_growth_by_lam():
    ds = synthetic_hidden()
    ds = xr.concat([ds.assign_coords(lam=[v]) for v in (0.9, 1.0, 1.05)], dim="lam")
    out = th.compute_thresholds(ds, taus=[1.0])
    np.testing.assert_array_equal(out["k_star_slope_theory"].values.ravel(), [0.0, 1 / (2 * math.log(1 / 0.8)), np.inf])
    g = out["growth_exponent_theory"].sel(learner="truncated_kalman").values
    assert g[0] == 0 and g[1] == 1
    assert g[2] == pytest.approx(2 * (1e8 - 1e7) * math.log10(1.05))
    assert np.isnan(out["k_star_theory"].sel(lam=0.9)).all()


def test_slope_disagreement_tolerance():
    assert not th.slope_disagrees(1.05, 1.0, 1e6)  # within 10%
    assert th.slope_disagrees(1.2, 1.0, 1e6)  # 20% and 2.8 taps over the window
    assert not th.slope_disagrees(0.1, 0.0, 1e6)  # 1.4 taps: one integer step can do that
    assert th.slope_disagrees(0.2, 0.0, 1e6)
    assert not th.slope_disagrees(5.0, math.inf, 1e6) and not th.slope_disagrees(math.nan, 1.0, 1e6)


def test_stable_lam_memory_enters_regime():
    T = np.array([10, 100, 1000, 10**4, 10**5])
    _, mask = th.slope_in_regime(np.array([2.0, 3, 4, 4, 4]), T, a=0.5, k_min=1, lam=0.99)
    assert mask.tolist() == [False, False, True, True, True]  # T >= 10 / (1 - 0.99)


def test_slope_rule_needs_three_points_over_a_decade():
    T = np.array([1000, 2000, 4000, 8000])
    slope, mask = th.slope_in_regime(np.array([5.0, 6, 7, 8]), T, a=0.5, k_min=1)
    assert math.isnan(slope) and mask.all()  # 4 points but only a factor 8 in T
    slope, _ = th.slope_in_regime(np.array([5.0, 6, np.nan, np.nan]), T * 10, a=0.5, k_min=1)
    assert math.isnan(slope)
    slope, mask = th.slope_in_regime(np.array([1.0, 2, 3, 4]), np.array([100, 1000, 10**4, 10**5]), 0.5, 1)
    assert mask.tolist() == [False, True, True, True] and slope == pytest.approx(1 / math.log(10))


SPECTRA = ["1.0^2, 0.5", "1.0^[1,1]", "0.9^2, 0.5"]
FAMILIES = ["block", "full", "similarity"]
FAMILY_DIM = np.array([[5, 9, 6], [4, 4, 0], [5, 9, 6]])
THEORY = np.array([[4, 6, 4], [4, 4, 0], [0, 0, 0]])


def synthetic_observed(late_draw: bool = False) -> xr.Dataset:
    """bounded iff d >= d* (MATH 1.4 table); unbounded risk grows like T^3, bounded is flat.
    With ``late_draw``, draw 1 of (1.0^2, 0.5; block) stays unbounded at d = d* (critical_d one higher)."""
    d = np.arange(0, 10)
    T = np.array([10, 100, 1000])
    draws = np.arange(2)
    crit = np.broadcast_to(THEORY[:, :, None, None], (3, 3, 1, 2)).copy()
    if late_draw:
        crit[0, 0, 0, 1] += 1
    bounded = d[None, None, :, None] >= crit  # spectrum family d draw
    defined = d[None, None, :, None] <= FAMILY_DIM[:, :, None, None]
    slope = np.where(bounded, 0.0, 3.0)[..., None, :]  # s f d T draw
    log10_risk = slope * np.log10(T)[None, None, None, :, None] - 1.0
    log10_risk = np.where(defined[..., None, :], log10_risk, np.nan)
    log10_risk = np.where((d[None, None, :] == FAMILY_DIM[:, :, None])[..., None, None], -np.inf, log10_risk)
    dims = ("spectrum", "family", "d", "T", "draw")
    ds = xr.Dataset(
        {"log10_risk": (dims, log10_risk), "risk": (dims, 10.0 ** log10_risk),
         "kl_rate": (dims, 10.0 ** log10_risk / 2),
         "bounded": (("spectrum", "family", "d", "draw"), bounded & defined),
         "critical_d": (("spectrum", "family"), THEORY.astype(np.int64)),
         "family_dim": (("spectrum", "family"), FAMILY_DIM)},
        coords={"spectrum": np.array(SPECTRA, dtype=object), "family": np.array(FAMILIES, dtype=object),
                "d": d, "T": T, "draw": draws,
                "n": ("spectrum", [3, 2, 3]), "n_unstable": ("spectrum", [2, 2, 0]),
                "spectral_radius": ("spectrum", [1.0, 1.0, 0.9])},
    )
    ds.attrs.update(experiment="observed", workflow=OBSERVED_WORKFLOW, workflow_fingerprint="f01")
    return ds


def test_spectrum_theory_matches_math_table():
    table = {"1.0^2, 0.5": (3, 2, 4, 6, 4), "1.0^3": (3, 3, 9, 9, 6), "1.0^[1,1]": (2, 2, 4, 4, 0),
             "1.0^[2,1]": (3, 3, 9, 9, 4), "1.05@30": (2, 2, 2, 4, 2), "0.9^2, 0.5": (3, 0, 0, 0, 0)}
    for spectrum, (n, nu, block, full, sim) in table.items():
        got = th.spectrum_theory(spectrum)
        assert (got.n, got.n_unstable) == (n, nu), spectrum
        assert got.critical_d == {"block": block, "full": full, "similarity": sim}, spectrum
    # the same eigenvalue in two terms is one eigenvalue with two blocks
    assert th.spectrum_theory("1.0^2, 1.0").critical_d == th.spectrum_theory("1.0^[2,1]").critical_d
    with pytest.raises(UsageError):
        th.spectrum_theory("abc")


def test_observed_known_answer():
    out = th.compute_thresholds(synthetic_observed(), source="obs.zarr")
    expected = xr.DataArray(THEORY.astype(float), dims=("spectrum", "family"),
                            coords={"spectrum": np.array(SPECTRA, dtype=object),
                                    "family": np.array(FAMILIES, dtype=object),
                                    "n": ("spectrum", [3, 2, 3]), "n_unstable": ("spectrum", [2, 2, 0]),
                                    "spectral_radius": ("spectrum", [1.0, 1.0, 0.9])})
    for name in ("critical_d", "critical_d_theory", "critical_d_empirical"):
        xrt.assert_equal(out[name].drop_attrs(), expected)
    g = out["growth_exponent"]
    assert float(g.sel(spectrum="1.0^2, 0.5", family="full", d=0, draw=0)) == pytest.approx(3.0)
    assert np.isnan(g.sel(spectrum="1.0^[1,1]", family="full", d=5)).all()  # d > family_dim
    assert th.disagreements(out) == []
    assert "disagreements with theory: none" in th.format_table(out)


def test_observed_every_draw_counts():
    out = th.compute_thresholds(synthetic_observed(late_draw=True))
    sel = dict(spectrum="1.0^2, 0.5", family="block")
    assert float(out["critical_d"].sel(sel)) == 5 and float(out["critical_d_empirical"].sel(sel)) == 5
    assert float(out["critical_d_theory"].sel(sel)) == 4
    problems = th.disagreements(out)
    assert problems == ["critical_d spectrum=1.0^2, 0.5 family=block: 5 vs theory 4",
                        "critical_d_empirical spectrum=1.0^2, 0.5 family=block: 5 vs theory 4"]


def test_growth_tol_moves_empirical_threshold():
    ds = synthetic_observed()
    out = th.compute_thresholds(ds, growth_tol=4.0)  # T^3 counts as bounded now
    assert (out["critical_d_empirical"].values == 0).all()
    with pytest.raises(UsageError):
        th.compute_thresholds(ds, growth_tol=-1)
    with pytest.raises(UsageError):
        th.compute_thresholds(synthetic_hidden(), taus=[0.0])


@pytest.mark.parametrize("make", [synthetic_hidden, synthetic_observed])
def test_written_dataset_round_trips_quietly(tmp_path, make):
    out = th.compute_thresholds(make(), taus=[1.0], source="x.zarr")
    path = str(tmp_path / "x.thresholds.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        th.write_thresholds(out, path)
        back = xr.open_zarr(path, consolidated=False).load()
    xrt.assert_identical(back.assign_coords({c: back[c].astype(object) for c in back.coords
                                             if back[c].dtype.kind not in "biuf"}), out)


def test_default_output_beside_store():
    assert th.default_output("data/random_walk.zarr") == "data/random_walk.thresholds.zarr"
    assert th.default_output("s3://b/x.zarr/") == "s3://b/x.thresholds.zarr"


# --------------------------------------------------------------------------- real runs

SLOPE_WORKFLOW = """experiment = "hidden"
name = "slope"
[grid]
lam = [1.0]
noise_ratio = [10.0, 100.0]
learner = ["truncated_kalman"]
k = { range = [1, 128] }
T = { geom = [1e3, 1e8], num = 21 }
"""

OBSERVED_RUN = """experiment = "observed"
name = "critical"
seed = 3
[grid]
spectrum = ["1.0^2, 0.5", "1.0^3", "1.0^[1,1]", "1.0^[2,1]", "1.05@30", "0.9^2, 0.5"]
family = ["block", "full", "similarity"]
d = "all"
T = { geom = [1e2, 1e8], num = 4 }
draw = 2
"""


def _run(tmp_path, text: str, scheduler: str) -> xr.Dataset:
    from pipeline.config import parse_workflow
    from pipeline.engine import run
    from pipeline.store import StoreLocation, open_cube

    wf = parse_workflow(text)
    location = StoreLocation(str(tmp_path / f"{wf.name}.zarr"))
    run(wf, location, scheduler=scheduler, progress=False, say=lambda s: None)
    return open_cube(location)


def test_k_star_slope_matches_theorem41_on_a_real_run(tmp_path, dask_scheduler):
    """lam = 1, truncated Kalman, noise ratios 10 and 100, T over 5 decades: within 10% of 1/(2 ln(1/a))."""
    out = th.compute_thresholds(_run(tmp_path, SLOPE_WORKFLOW, dask_scheduler), taus=[1.0, 0.1])
    for ratio in (10.0, 100.0):
        s = 1.0 / ratio  # MATH 2.1: a = 2 / (2 + s + sqrt(s^2 + 4 s)) at lam = 1
        theory = 1.0 / (2.0 * math.log((2.0 + s + math.sqrt(s * s + 4.0 * s)) / 2.0))
        assert float(out["k_star_slope_theory"].sel(lam=1.0, noise_ratio=ratio)) == pytest.approx(theory, rel=1e-9)
        for tau in (1.0, 0.1):
            sel = dict(lam=1.0, noise_ratio=ratio, learner="truncated_kalman", tau=tau)
            T_fit = out["T"].values[out["k_star_in_regime"].sel(sel).values]
            assert T_fit.max() / T_fit.min() >= 0.99e5  # five decades
            assert float(out["k_star_slope"].sel(sel)) == pytest.approx(theory, rel=0.10)
    assert th.disagreements(out) == []


def test_critical_d_equals_theory_on_a_real_run(tmp_path, dask_scheduler):
    ds = _run(tmp_path, OBSERVED_RUN, dask_scheduler)
    out = th.compute_thresholds(ds)
    xrt.assert_equal(out["critical_d"].drop_attrs(), out["critical_d_theory"].drop_attrs())
    xrt.assert_equal(out["critical_d_empirical"].drop_attrs(), out["critical_d_theory"].drop_attrs())
    xrt.assert_equal(out["critical_d"].drop_attrs(), ds["critical_d"].astype(float).drop_attrs().load())
    assert out["critical_d_theory"].sel(spectrum="1.0^[2,1]").values.tolist() == [9, 9, 4]
    assert th.disagreements(out) == []
