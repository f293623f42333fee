"""Thresholds of an observed cube, each beside its theory (MATH §1.4, §1.5, §4).

Every threshold is per (spectrum, family, learner_family): ``family`` is the
adversary's family, ``learner_family`` the learner's (``same``: the adversary's).

``critical_d``
    measured from ``bounded``: the smallest ``d`` from which every draw is bounded;
    ``+inf`` ("never") where no ``d <= learner_dim`` is, with ``learnable`` False.
``critical_d_empirical``
    the smallest ``d`` from which the growth exponent stays below the tolerance for every
    draw (``+inf``: never).
``critical_d_theory``, ``learnable_theory``
    the rule of MATH §1.4 / §1.5 as stored in the cube (``+inf`` where not learnable).
``growth_at_dim`` (…, draw), ``growth_at_dim_theory``
    for "never" cells, the growth exponent at ``d = learner_dim`` measured between the two
    largest horizons, and the theory's ``g`` (``+inf``: exponential growth); NaN for
    learnable cells.
``growth_exponent`` (…, d, draw), ``bounded_theory`` (…, d).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from pipeline.core.measure import first_from_which, growth_exponent, growth_horizons, measured, static, theory

if TYPE_CHECKING:
    from pipeline.experiments.base import ThresholdOptions

PAIR = ("spectrum", "family", "learner_family")


def with_learner_axis(ds: xr.Dataset) -> xr.Dataset:
    """A cube from before the ``learner_family`` axis as one with ``learner_family = same``
    (``learner_dim = family_dim``, ``learnable`` True); other cubes unchanged."""
    if "learner_family" in ds.dims:
        return ds
    same = np.array(["same"], dtype=object)
    out = ds.copy()
    for name in list(out.data_vars):
        dims = out[name].dims
        if ("d" in dims or name == "critical_d_theory") and "family" in dims:
            at = dims.index("family") + 1
            out[name] = out[name].expand_dims(learner_family=same, axis=at)
    out["learner_dim"] = out["family_dim"].expand_dims(learner_family=same, axis=2)
    out["learnable"] = xr.ones_like(out["learner_dim"], dtype=bool)
    return out


def _theory_growth(spectra: list[str], families: list[str], learners: list[str]) -> np.ndarray:
    """``g`` of MATH §1.5 per (spectrum, family, learner_family); NaN where learnable."""
    from pipeline.models import parametrisation as pm

    out = np.full((len(spectra), len(families), len(learners)), np.nan)
    for i, s in enumerate(spectra):
        for j, f in enumerate(families):
            for k, lf in enumerate(learners):
                g = pm.never_growth_exponent(s, f, f if lf == "same" else lf)
                out[i, j, k] = np.nan if g is None else g
    return out


def thresholds(ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
    """The thresholds dataset of an observed cube (see the module docstring)."""
    tol = options.growth_tol
    ds = with_learner_axis(ds).sortby(["d", "T"])
    d = ds["d"].values
    ldim = ds["learner_dim"].transpose(*PAIR).values
    bounded = ds["bounded"].transpose(*PAIR, "d", "draw").values
    g = growth_exponent(ds["log10_risk"]).transpose(*PAIR, "d", "draw").values
    defined = d[None, None, None, :] <= ldim[..., None]
    crit_theory = ds["critical_d_theory"].transpose(*PAIR).values.astype(np.float64)
    learnable_theory = ds["learnable"].transpose(*PAIR).values.astype(bool)

    crit = np.full(crit_theory.shape, np.nan)
    crit_emp = np.full(crit_theory.shape, np.nan)
    g_dim = np.full((*crit_theory.shape, ds.sizes["draw"]), np.nan)
    for at in np.ndindex(*crit.shape):
        ok = np.asarray((bounded[at] == 1).all(axis=-1))
        # a NaN growth exponent at a defined cell is a risk exactly 0: bounded
        below = np.asarray(np.where(np.isnan(g[at]), True, g[at] < tol).all(axis=-1))
        top = np.flatnonzero(defined[at])
        for out, holds in ((crit, ok), (crit_emp, below)):
            value = first_from_which(holds, defined[at], d)
            # "never": the property fails at d = learner_dim itself (not merely outside the grid)
            never = math.isnan(value) and bool(top.size) and int(d[top[-1]]) == int(ldim[at])
            out[at] = math.inf if never else value
        if not learnable_theory[at] and top.size and int(d[top[-1]]) == int(ldim[at]):
            g_dim[at] = g[at][top[-1]]
    bounded_theory = (d[None, None, None, :] >= crit_theory[..., None]) & defined
    t1, t2 = growth_horizons(ds["T"].values)
    spectra = [str(s) for s in ds["spectrum"].values]
    families = [str(f) for f in ds["family"].values]
    learners = [str(f) for f in ds["learner_family"].values]
    g_theory = _theory_growth(spectra, families, learners)

    coords = {name: ds[name] for name in ("spectrum", "family", "learner_family", "d", "draw")}
    for extra in ("n", "n_unstable", "spectral_radius"):
        if extra in ds.coords:
            coords[extra] = ds[extra]
    never_text = "+inf where no d <= learner_dim qualifies (never)"
    th = xr.Dataset(
        {
            "critical_d": measured(
                crit,
                "critical parameter count measured from bounded: smallest d from which every draw is bounded; "
                + never_text,
                "parameters",
                PAIR,
            ),
            "learnable": measured(
                np.isfinite(crit),
                "measured: some d <= learner_dim bounds every draw (critical_d finite)",
                "1",
                PAIR,
            ),
            "critical_d_theory": theory(
                crit_theory,
                f"critical parameter count from docs/theory.md §1.4 / §1.5; {never_text}",
                "parameters",
                PAIR,
            ),
            "learnable_theory": theory(
                learnable_theory, "theory: some d <= learner_dim bounds the risk (docs/theory.md §1.5)", "1", PAIR
            ),
            "critical_d_empirical": measured(
                crit_emp,
                f"smallest d from which the growth exponent stays below {tol:g} for every draw; {never_text}",
                "parameters",
                PAIR,
            ),
            "learner_dim": static(ldim.astype(np.int64), "dimension of the learner's family", "parameters", PAIR),
            "family_dim": static(
                ds["family_dim"].transpose("spectrum", "family").values.astype(np.int64),
                "dimension of the adversary's family",
                "parameters",
                ("spectrum", "family"),
            ),
            "growth_exponent": measured(
                g,
                f"growth exponent d log R / d log T between T = {t1:.6g} and {t2:.6g}"
                " (NaN where d > learner_dim or the risk is 0)",
                "1",
                (*PAIR, "d", "draw"),
            ),
            "growth_at_dim": measured(
                g_dim,
                f"growth exponent at d = learner_dim between T = {t1:.6g} and {t2:.6g} (NaN where learnable)",
                "1",
                (*PAIR, "draw"),
            ),
            "growth_at_dim_theory": theory(
                g_theory,
                "theory: r_T(learner_dim) ~ T^g for never cells (+inf: exponential; NaN where learnable)",
                "1",
                PAIR,
            ),
            "bounded_theory": theory(
                bounded_theory,
                "theory: risk bounded in T (d >= critical_d_theory, d <= learner_dim)",
                "1",
                (*PAIR, "d"),
            ),
        },
        coords=coords,
    )
    th.attrs.update({"growth_tol": float(tol), "growth_horizons": [t1, t2]})
    return th
