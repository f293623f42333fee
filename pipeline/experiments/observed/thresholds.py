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
``growth_exponent`` (…, d, draw) between the two largest horizons and
``growth_exponent_before`` in the window before, ``bounded_theory`` (…, d).

Verdicts (``pipeline.core.verdicts``) per (spectrum, family, learner_family):
``critical_d_verdict`` (exact: equal or not), ``critical_d_empirical_verdict``
(``EMPIRICAL_VERDICT_RULE``: settled and clear of the Monte Carlo noise) and
``growth_at_dim_verdict`` for "never" cells.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from pipeline.core import verdicts
from pipeline.core.measure import (
    first_from_which,
    growth_exponent,
    growth_horizons,
    growth_stderr,
    measured,
    static,
    theory,
)

if TYPE_CHECKING:
    from pipeline.experiments.base import ThresholdOptions

PAIR = ("spectrum", "family", "learner_family")
EXPONENTIAL_ABOVE = 5.0
EMPIRICAL_VERDICT_RULE = (
    "every draw's growth exponent must be below growth_tol at each d >= critical_d_theory (up to the "
    "learner's dimension) and some draw's not at the d below (theory never: not at d = learner_dim); a "
    "reading decides only when the window before the two largest horizons reads the same (the growth has "
    f"settled) and it lies more than {verdicts.NOISE_SIGMAS:g} Monte Carlo standard errors from growth_tol. "
    "agrees: every deciding reading as predicted; disagrees: a decided reading contradicts; unresolved "
    "otherwise (e.g. two horizons only, or a transient still rising)."
)
GROWTH_AT_DIM_RULE = (
    "never cells only: every draw's growth exponent at d = learner_dim within max(growth_tol, 10%) of the "
    f"theory g (+inf: above {EXPONENTIAL_ABOVE:g}); decided as for growth exponents (settled over two "
    "windows, clear of the noise); the verdicts of the draws combined (any disagreement disagrees, any "
    "unresolved draw leaves it unresolved)."
)


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
    g_before = growth_exponent(ds["log10_risk"], window=2).transpose(*PAIR, "d", "draw").values
    stderr = growth_stderr(ds)
    sigma = None if stderr is None else stderr.transpose(*PAIR, "d", "draw").values
    # a NaN growth exponent at a defined cell is a risk exactly 0: bounded
    below_all = np.where(np.isnan(g), True, g < tol)
    below_before = np.where(np.isnan(g_before), np.isnan(g), g_before < tol)
    decided_all = verdicts.settled(below_all, below_before, np.isfinite(g_before) | np.isnan(g), g - tol, sigma)
    defined = d[None, None, None, :] <= ldim[..., None]
    crit_theory = ds["critical_d_theory"].transpose(*PAIR).values.astype(np.float64)
    learnable_theory = ds["learnable"].transpose(*PAIR).values.astype(bool)

    crit = np.full(crit_theory.shape, np.nan)
    crit_emp = np.full(crit_theory.shape, np.nan)
    emp_verdict = np.full(crit_theory.shape, verdicts.NOT_COMPARED, dtype=object)
    g_dim = np.full((*crit_theory.shape, ds.sizes["draw"]), np.nan)
    g_dim_before = np.full(g_dim.shape, np.nan)
    sigma_dim = np.zeros(g_dim.shape)
    for at in np.ndindex(*crit.shape):
        ok = np.asarray((bounded[at] == 1).all(axis=-1))
        below = np.asarray(below_all[at].all(axis=-1))
        # "every draw below" is decided when every draw's reading is; "some draw above" when one such is
        decided = np.where(
            below, (below_all[at] & decided_all[at]).all(axis=-1), (~below_all[at] & decided_all[at]).any(axis=-1)
        )
        top = np.flatnonzero(defined[at])
        emp_verdict[at] = verdicts.threshold_verdict(
            d[top].astype(np.float64), below[top], decided[top], float(crit_theory[at])
        )
        for out, holds in ((crit, ok), (crit_emp, below)):
            value = first_from_which(holds, defined[at], d)
            # "never": the property fails at d = learner_dim itself (not merely outside the grid)
            never = math.isnan(value) and bool(top.size) and int(d[top[-1]]) == int(ldim[at])
            out[at] = math.inf if never else value
        if not learnable_theory[at] and top.size and int(d[top[-1]]) == int(ldim[at]):
            g_dim[at] = g[at][top[-1]]
            g_dim_before[at] = g_before[at][top[-1]]
            if sigma is not None:
                sigma_dim[at] = sigma[at][top[-1]]
    bounded_theory = (d[None, None, None, :] >= crit_theory[..., None]) & defined
    t1, t2 = growth_horizons(ds["T"].values)
    spectra = [str(s) for s in ds["spectrum"].values]
    families = [str(f) for f in ds["family"].values]
    learners = [str(f) for f in ds["learner_family"].values]
    g_theory = _theory_growth(spectra, families, learners)
    crit_verdict = np.where(crit == crit_theory, verdicts.AGREES, verdicts.DISAGREES).astype(object)
    dim_verdict = verdicts.growth_verdicts(
        g_dim,
        g_dim_before,
        g_theory[..., None],
        g_theory[..., None],
        np.maximum(tol, 0.1 * np.nan_to_num(np.abs(g_theory), posinf=0.0))[..., None],
        sigma_dim if sigma is not None else None,
        EXPONENTIAL_ABOVE,
    )
    dim_verdict = np.array([verdicts.combine(dim_verdict[at]) for at in np.ndindex(*crit.shape)], dtype=object).reshape(
        crit.shape
    )

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
            "critical_d_verdict": verdicts.variable(
                crit_verdict,
                "critical_d against critical_d_theory",
                PAIR,
                ("critical_d", "critical_d_theory"),
                "exact (the rank criterion): agrees when equal (never = never), disagrees otherwise",
            ),
            "critical_d_empirical_verdict": verdicts.variable(
                emp_verdict,
                "critical_d_empirical against critical_d_theory",
                PAIR,
                ("critical_d_empirical", "critical_d_theory"),
                EMPIRICAL_VERDICT_RULE,
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
            "growth_exponent_before": measured(
                g_before,
                "growth exponent in the window before the two largest horizons (NaN: no such window)",
                "1",
                (*PAIR, "d", "draw"),
            ),
            "growth_at_dim_theory": theory(
                g_theory,
                "theory: r_T(learner_dim) ~ T^g for never cells (+inf: exponential; NaN where learnable)",
                "1",
                PAIR,
            ),
            "growth_at_dim_verdict": verdicts.variable(
                dim_verdict,
                "growth_at_dim against growth_at_dim_theory",
                PAIR,
                ("growth_at_dim", "growth_at_dim_theory"),
                GROWTH_AT_DIM_RULE,
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
