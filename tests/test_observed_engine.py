"""The observed experiment through the engine: MATH §1.4 table from a cube, chunking, Monte Carlo."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline import store
from pipeline.config import parse_workflow
from pipeline.engine import run
from pipeline.summary import summarize
from tests.conftest import comparable

TABLE = {  # MATH §1.4 reference values: block, full, similarity
    "1.0^2, 0.5": (4, 6, 4), "1.0^3": (9, 9, 6), "1.0^[1,1]": (4, 4, 0),
    "1.0^[2,1]": (9, 9, 4), "1.05@30": (2, 4, 2), "0.9^2, 0.5": (0, 0, 0),
}
WORKFLOW = """
experiment = "observed"
name = "table"
seed = 1
[grid]
spectrum = ["1.0^2, 0.5", "1.0^3", "1.0^[1,1]", "1.0^[2,1]", "1.05@30", "0.9^2, 0.5"]
family = ["block", "full", "similarity"]
d = "all"
T = [1, 10, 1000]
draw = 2
"""


def _run(text, path, scheduler):
    run(parse_workflow(text), store.StoreLocation(str(path)), scheduler=scheduler, progress=False,
        say=lambda s: None)
    return xr.open_zarr(path).load()


def test_table_from_cube_and_chunking_invariance(tmp_path, dask_scheduler):
    ds = _run(WORKFLOW, tmp_path / "a.zarr", dask_scheduler)
    for spectrum, expected in TABLE.items():
        got = tuple(int(ds["critical_d"].sel(spectrum=spectrum, family=f)) for f in ("block", "full", "similarity"))
        assert got == expected, spectrum
    defined = ds["d"] <= ds["family_dim"]
    assert not bool((ds["risk"].isnull() & defined).any())  # NaN only where d > family_dim
    assert bool((ds["risk"].isnull() | defined).all())
    np.testing.assert_array_equal(ds["bounded"].where(defined).fillna(True).values,
                                  (ds["d"] >= ds["critical_d"]).broadcast_like(ds["bounded"]).values
                                  | ~defined.broadcast_like(ds["bounded"]).values)
    split = _run(WORKFLOW + "[chunks]\nspectrum = 2\nfamily = 1\nT = 2\ndraw = 1\n", tmp_path / "b.zarr",
                 dask_scheduler)
    xr.testing.assert_identical(comparable(ds, layout=False), comparable(split, layout=False))
    assert "1.0^[2,1]" in summarize(store.StoreLocation(str(tmp_path / "a.zarr")))


def test_observed_montecarlo_agrees_with_exact(tmp_path, dask_scheduler):
    text = WORKFLOW.replace('"1.0^3", "1.0^[1,1]", "1.0^[2,1]", "1.05@30", "0.9^2, 0.5"', '"1.0^[1,1]"')
    text = text.replace("T = [1, 10, 1000]", "T = [5, 40]").replace('family = ["block", "full", "similarity"]',
                                                                     'family = ["block", "full"]')
    exact = _run(text, tmp_path / "exact.zarr", dask_scheduler)
    mc = _run('method = "montecarlo"\nmc_samples = 2000\n' + text, tmp_path / "mc.zarr", dask_scheduler)
    defined = (exact["d"] <= exact["family_dim"]) & (exact["risk"] > 0)
    z = ((mc["risk"] - exact["risk"]) / mc["risk_stderr"]).where(defined)
    assert int(defined.sum()) > 10
    assert float(np.abs(z).max()) < 4.5, z.values
