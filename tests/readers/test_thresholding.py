"""What every thresholds store shares: provenance, a consolidated and marked store that plain
xarray opens quietly, partial cubes that yield no finding from unfinished cells."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import xarray.testing as xrt

from pipeline.core.measure import known
from pipeline.core.types import COMPUTED, PARTIAL_ATTR
from pipeline.readers import thresholding as thr
from pipeline.storage.guard import OUTPUT_ATTR, Found, identify
from pipeline.storage.location import StoreLocation
from tests.helpers import synthetic_hidden, synthetic_observed


@pytest.mark.parametrize("make", [synthetic_hidden, synthetic_observed])
def test_written_store_is_consolidated_marked_and_opens_quietly(tmp_path, make):
    out = thr.compute_thresholds(make(), thr.options([1.0]), source="x.zarr")
    path = str(tmp_path / "x.thresholds.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        thr.write_thresholds(out, path)
        back = xr.open_zarr(path).load()  # consolidated: no warning, no flag needed
    assert back.attrs[OUTPUT_ATTR] == "thresholds" and back.attrs["source"] == "x.zarr"
    assert identify(StoreLocation(path)) is Found.THRESHOLDS
    xrt.assert_identical(
        back.assign_coords({c: back[c].astype(object) for c in back.coords if back[c].dtype.kind not in "biuf"}), out
    )
    thr.write_thresholds(out, path)  # its own output: replaced without a flag
    assert not (tmp_path / "x.thresholds.zarr.writing").exists()


def test_default_output_beside_store():
    assert thr.default_output("data/random_walk.zarr") == "data/random_walk.thresholds.zarr"
    assert thr.default_output("s3://b/x.zarr/") == "s3://b/x.thresholds.zarr"


def _partial(ds: xr.Dataset, computed: np.ndarray) -> xr.Dataset:
    """``ds`` as ``cubes.open_cube(partial=True)`` presents an unfinished cube."""
    mask = xr.DataArray(computed, dims=ds["risk"].dims, coords={d: ds[d] for d in ds["risk"].dims})
    out = ds.copy()
    for name in ("risk", "log10_risk", "kl_rate"):
        out[name] = ds[name].where(mask)
    out[COMPUTED] = mask
    out.attrs[PARTIAL_ATTR] = "partial: 1/2 blocks"
    return out


def test_no_finding_from_unfinished_cells():
    ds = synthetic_hidden()
    computed = np.ones(ds["risk"].shape, dtype=bool)
    computed[0, 0, 0, 6:, :] = False  # truncated_kalman, k >= 7: not computed
    out = thr.compute_thresholds(_partial(ds, computed), thr.options([1.0]))
    k_star = out["k_star"].sel(lam=1.0, noise_ratio=4.0, learner="truncated_kalman", tau=1.0)
    assert np.isnan(k_star).all()  # the k* search needs every k: unknown, not "none"
    assert not known(out, "k_star", lam=1.0, noise_ratio=4.0, learner="truncated_kalman", T=10, tau=1.0)
    assert known(out, "k_star", lam=1.0, noise_ratio=4.0, learner="best_fir", T=10, tau=1.0)
    assert float(out["k_star"].sel(lam=1.0, noise_ratio=4.0, learner="best_fir", T=10, tau=1.0)) == 1.0
    np.testing.assert_allclose(out["growth_exponent"].sel(learner="truncated_kalman", k=3).squeeze(), 1.0)
    assert np.isnan(out["growth_exponent"].sel(learner="truncated_kalman", k=9)).all()
    assert out["k_star_theory"].notnull().any()  # theory needs no cell
    text = thr.format_table(out)
    assert "partial: 1/2 blocks" in text
    # the synthetic slope 0.869 vs 2.241 is a disagreement when known; here it is not known
    assert "disagreements with theory: 0" in text
    sel = {"lam": 1.0, "noise_ratio": 4.0, "learner": "truncated_kalman", "tau": 1.0}
    assert str(out["k_star_slope_verdict"].sel(sel).values) == "unknown"
    assert "not known yet" in text.splitlines()[-1] and " 0 disagree" in text.splitlines()[-1]


def test_partial_observed_critical_d_is_unknown_not_a_disagreement():
    ds = synthetic_observed(late_draw=True)
    computed = np.ones(ds["risk"].shape, dtype=bool)
    computed[0, 0, 5:, :, :] = False
    masked = _partial(ds, computed)
    masked["bounded"] = ds["bounded"].where(xr.DataArray(computed[:, :, :, 0, :], dims=ds["bounded"].dims))
    out = thr.compute_thresholds(masked)
    assert np.isnan(float(out["critical_d"].sel(spectrum="1.0^2, 0.5", family="block", learner_family="same")))
    assert "critical_d spectrum=1.0^2, 0.5 family=block" not in thr.format_table(out)
