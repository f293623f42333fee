"""Thresholds of an observed cube, each beside its theory (MATH §1.4, §4).

``critical_d`` (spectrum, family)
    measured from ``bounded``: the smallest ``d`` from which every draw is bounded.
``critical_d_empirical`` (spectrum, family)
    the smallest ``d`` from which the growth exponent stays below the tolerance for every draw.
``critical_d_theory`` (spectrum, family)
    the closed forms of MATH §1.4, as stored in the cube.
``growth_exponent`` (spectrum, family, d, draw), ``bounded_theory`` (spectrum, family, d).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.measure import first_from_which, growth_exponent, growth_horizons, measured, static, theory

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import ThresholdOptions


def thresholds(ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
    """The thresholds dataset of an observed cube (see the module docstring)."""
    import xarray as xr

    tol = options.growth_tol
    ds = ds.sortby(["d", "T"])
    d = ds["d"].values
    family_dim = ds["family_dim"].transpose("spectrum", "family").values
    bounded = ds["bounded"].transpose("spectrum", "family", "d", "draw").values
    g = growth_exponent(ds["log10_risk"]).transpose("spectrum", "family", "d", "draw").values
    defined = d[None, None, :] <= family_dim[:, :, None]
    crit_theory = ds["critical_d_theory"].transpose("spectrum", "family").values.astype(np.float64)

    crit = np.full(crit_theory.shape, np.nan)
    crit_emp = np.full(crit_theory.shape, np.nan)
    for si, fi in np.ndindex(*crit.shape):
        crit[si, fi] = first_from_which((bounded[si, fi] == 1).all(axis=-1), defined[si, fi], d)
        # a NaN growth exponent at a defined cell is a risk exactly 0: bounded
        below = np.where(np.isnan(g[si, fi]), True, g[si, fi] < tol).all(axis=-1)
        crit_emp[si, fi] = first_from_which(below, defined[si, fi], d)
    bounded_theory = (d[None, None, :] >= crit_theory[:, :, None]) & defined
    t1, t2 = growth_horizons(ds["T"].values)

    dims2 = ("spectrum", "family")
    coords = {name: ds[name] for name in ("spectrum", "family", "d", "draw")}
    for extra in ("n", "n_unstable", "spectral_radius"):
        if extra in ds.coords:
            coords[extra] = ds[extra]
    out = xr.Dataset(
        {
            "critical_d": measured(
                crit,
                "critical parameter count measured from bounded: smallest d from which every draw is bounded",
                "parameters",
                dims2,
            ),
            "critical_d_theory": theory(
                crit_theory,
                "critical parameter count d* from the closed forms of docs/theory.md §1.4",
                "parameters",
                dims2,
            ),
            "critical_d_empirical": measured(
                crit_emp,
                f"smallest d from which the growth exponent stays below {tol:g} for every draw",
                "parameters",
                dims2,
            ),
            "family_dim": static(
                family_dim.astype(np.int64), "dimension of the perturbation family", "parameters", dims2
            ),
            "growth_exponent": measured(
                g,
                f"growth exponent d log R / d log T between T = {t1:.6g} and {t2:.6g}"
                " (NaN where d > family_dim or the risk is 0)",
                "1",
                ("spectrum", "family", "d", "draw"),
            ),
            "bounded_theory": theory(
                bounded_theory,
                "theory: risk bounded in T (d >= critical_d_theory, d <= family_dim)",
                "1",
                ("spectrum", "family", "d"),
            ),
        },
        coords=coords,
    )
    out.attrs.update({"growth_tol": float(tol), "growth_horizons": [t1, t2]})
    return out
