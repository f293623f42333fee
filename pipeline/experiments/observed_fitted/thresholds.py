"""Thresholds of a fitted observed cube, each beside its theory (MATH.md section 6.5).

Over the fits of every cell (dims ``spectrum, family, draw, learner_family, d, T,
trajectories``): ``mean_risk``, ``risk_stderr`` (NaN with one fit), ``risk_quantile``
(dim ``quantile``), ``excess = mean_risk - bias`` and ``normalised_excess = (m T / d)
excess`` beside ``normalised_excess_theory`` (dims learner, ``d``, ``trajectories``: 1 for
the whole class, ``d = n^2``, of a stable system, and of a marginal one, spectral radius 1,
from :data:`FPE_MANY_TRAJECTORIES` trajectories on; NaN where the theory says nothing).

``critical_d_learned`` per (spectrum, family, draw, learner_family, trajectories): the
smallest ``d`` from which the mean risk stays bounded in ``T`` (growth exponent between
the two largest horizons below ``growth_tol`` at it and every larger ``d``), beside
``critical_d_theory`` (``+inf``: never).

``dickey_fuller_quantile`` (dims spectrum, family, draw, learner_family, quantile_df): for
a scalar random walk (``n = 1``, eigenvalue 1) fitted from ``m = 1`` trajectory with
``d = 1``, the quantiles of ``T (ahat - 1)`` over fits at the largest ``T``, beside
Fuller's table (``T = infinity``), and ``random_walk_constant`` (``T`` times the mean risk there)
beside ``E[Z^2] / 2``.

Verdicts (``pipeline.core.verdicts``): see the ``*_RULE`` texts below (each verdict
variable's ``rule`` attribute).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from pipeline.core import verdicts as vd
from pipeline.core.measure import growth_horizons, measured, static, theory
from pipeline.models.fitted.theory import FPE_LIMIT, FULLER_QUANTILES, random_walk_constant

if TYPE_CHECKING:
    from pipeline.experiments.base import ThresholdOptions

CELL = ("spectrum", "family", "draw", "learner_family", "d", "T", "trajectories")
LEARNER = ("spectrum", "family", "draw", "learner_family")
PER_M = (*LEARNER, "trajectories")
QUANTILES = (0.1, 0.5, 0.9)
MIN_FITS = 5
"""Fewer fits than this: a mean-risk comparison is unresolved (the standard error is not
itself known well enough)."""
FPE_MIN_FITS = 30
"""Fewer fits than this: the normalised excess is unresolved (a mean of chi-square-like risks
and its standard error need the central limit theorem)."""
FPE_TOL = 0.25
"""Normalised excess within this of 1 (plus the noise) agrees: the ``O(n / (m T))`` and
transient corrections of a finite sample (docs/theory.md §6)."""
FPE_MIN_SAMPLES = 20
"""The normalised excess is judged only where ``m T >= FPE_MIN_SAMPLES d`` (the limit is
``m T -> infinity``)."""
FPE_MANY_TRAJECTORIES = 100
"""A marginal system's normalised excess tends to 1 only as ``m`` grows (MATH.md §6.5: from
one trajectory its constant is larger, 6.6 for the random walk): its theory applies from this
many trajectories on (measured, 2,000 fits, ``T = 300``: 5.6 / 1.34 / 1.02 at ``m`` = 1 / 10 /
100 for the random walk, 12.8 / 1.33 / 1.00 for ``1.0^2``)."""
GROWTH_MARGIN = 0.2
"""A growth exponent within this of ``growth_tol`` does not decide bounded vs unbounded."""
DF_MIN_T = 100
"""Dickey-Fuller quantiles are judged only at ``T >= DF_MIN_T`` (the table is ``T = infinity``;
Fuller's finite-``T`` rows at 100 differ from it by less than 5%)."""
DF_TOL = 0.05
"""Relative tolerance of a Dickey-Fuller quantile beyond its order-statistic interval."""
RW_TOL = 0.1
"""Relative tolerance of ``T E[R_T]`` against its ``T = infinity`` limit ``E[Z^2] / 2`` beyond the
noise (at ``T = 100`` the finite-``T`` value is ~5% below the limit, docs/theory.md §6)."""
DF_MIN_TAIL = 10
"""A quantile ``p`` is judged only with at least this many fits below it (``p * fits``)."""

FPE_RULE = (
    f"at the largest m T of each learner at d = n^2 of a stable system, or of a marginal one (spectral radius 1) "
    f"with m >= {FPE_MANY_TRAJECTORIES} there, with at least {FPE_MIN_FITS} fits and "
    f"m T >= {FPE_MIN_SAMPLES} d: agrees if |normalised_excess - 1| <= {FPE_TOL} + "
    f"{vd.NOISE_SIGMAS:g} standard errors (Student-t over the fits) "
    f"and the band (noise) is at most {vd.RESOLVED_FRACTION:g}; "
    "disagrees if outside; unresolved otherwise."
)
RW_RULE = (
    f"scalar random walk, m = 1, d = 1, largest T >= {DF_MIN_T}, at least {FPE_MIN_FITS} fits: T times the mean "
    f"risk agrees with E[Z^2] / 2 within {RW_TOL:.0%} + {vd.NOISE_SIGMAS:g} standard errors (Student-t), "
    "resolvable when the "
    f"band is at most {vd.RESOLVED_FRACTION:g} of it; disagrees outside; unresolved otherwise."
)
CRITICAL_RULE = (
    "the mean risk's growth exponent between the two largest horizons must be below growth_tol at every "
    "d >= critical_d_theory and not at the d below (theory never: not at the largest d); a reading decides "
    f"only with at least {MIN_FITS} fits and an exponent more than {GROWTH_MARGIN} from growth_tol; a theory "
    "outside the grid's d is unresolved."
)
DF_RULE = (
    f"scalar random walk, m = 1, d = 1, largest T >= {DF_MIN_T}: Fuller's quantile must lie within the "
    f"order-statistic interval (rank N p +- {vd.NOISE_SIGMAS:g} sqrt(N p (1 - p))) widened by {DF_TOL:.0%}; "
    f"judged only with N p >= {DF_MIN_TAIL} fits below it, resolvable when the interval is at most "
    f"{vd.RESOLVED_FRACTION:g} of the quantile."
)


def _fits(ds: xr.Dataset) -> int:
    return int(ds.sizes["fit"])


def _mean_stats(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    risk = ds["risk"].transpose(*CELL, "fit")
    n = _fits(ds)
    mean = risk.mean("fit", skipna=False)
    stderr = risk.std("fit", ddof=1, skipna=False) / math.sqrt(n) if n > 1 else xr.full_like(mean, np.nan)
    q = risk.quantile(list(QUANTILES), dim="fit", skipna=False)
    bias = ds["bias"].transpose(*CELL[:-1])
    with np.errstate(invalid="ignore"):
        excess = mean - bias
    m = ds["trajectories"].astype(float)
    T = ds["T"].astype(float)
    d = ds["d"].astype(float)
    norm = (m * T / d.where(d > 0)) * excess
    return {"mean": mean, "stderr": stderr, "quantile": q, "excess": excess, "norm": norm}


def _fpe_theory(ds: xr.Dataset) -> xr.DataArray:
    """(learner, ``d``, ``trajectories``): 1 at ``d = n^2`` of a learner spanning every matrix,
    for a stable system at every ``m`` and for a marginal one from ``FPE_MANY_TRAJECTORIES``
    trajectories on (NaN elsewhere)."""
    n = ds["n"]
    many = ds["trajectories"] >= FPE_MANY_TRAJECTORIES
    applies = (ds["spectral_radius"] < 1.0) | ((ds["spectral_radius"] == 1.0) & many)
    whole = (ds["learner_dim"] == n * n) & (ds["d"] == n * n)
    out = xr.where(applies & whole, FPE_LIMIT, np.nan)
    template = ds["risk"].isel(T=0, fit=0, drop=True)
    return out.broadcast_like(template).transpose(*LEARNER, "d", "trajectories")


def _fpe_verdict(norm: xr.DataArray, stderr: xr.DataArray, expect: xr.DataArray, ds: xr.Dataset) -> np.ndarray:
    """Per (spectrum, family, draw, learner_family, d): the normalised excess at the largest ``m T``
    against its theory there (not compared where none applies)."""
    n_fits = _fits(ds)
    norm = norm.transpose(*CELL)
    se = stderr.transpose(*CELL)
    T = ds["T"].values.astype(float)
    m = ds["trajectories"].values.astype(float)
    mT = m[None, :] * T[:, None]  # (T, m)
    t_at, m_at = np.unravel_index(int(np.argmax(mT)), mT.shape)
    expect = expect.isel(trajectories=int(m_at), drop=True).transpose(*LEARNER, "d")
    d_vals = ds["d"].values.astype(float)
    out = np.full(expect.shape, vd.NOT_COMPARED, dtype=object)
    for idx in np.ndindex(expect.shape):
        e = float(expect.values[idx])
        if math.isnan(e):
            continue
        x = float(norm.values[(*idx, t_at, m_at)])
        s = float(se.values[(*idx, t_at, m_at)]) * mT[t_at, m_at] / d_vals[idx[-1]]
        if math.isnan(x):
            out[idx] = vd.UNRESOLVED
            continue
        band = vd.noise_sigmas(n_fits) * s if np.isfinite(s) else math.inf
        outside = abs(x - e) > FPE_TOL + band
        decided = n_fits >= FPE_MIN_FITS and mT[t_at, m_at] >= FPE_MIN_SAMPLES * d_vals[idx[-1]]
        out[idx] = vd.decide(outside, decided, vd.band_resolvable(band, e))
    return out


def _growth(mean: xr.DataArray) -> xr.DataArray:
    """Growth exponent of the mean risk between the two largest horizons (+inf: from 0 or overflow)."""
    T = mean["T"].values
    t1, t2 = growth_horizons(T)
    r1 = mean.sel(T=t1, drop=True)
    r2 = mean.sel(T=t2, drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (np.log(r2) - np.log(r1)) / math.log(t2 / t1)
    return xr.where(np.isinf(r2) & np.isfinite(r1), np.inf, g)


def _critical(ds: xr.Dataset, mean: xr.DataArray, tol: float) -> tuple[np.ndarray, np.ndarray, xr.DataArray]:
    """``critical_d_learned`` and its verdict per (spectrum, family, draw, learner_family, m)."""
    g = _growth(mean).transpose(*LEARNER, "trajectories", "d")
    dims = ds["learner_dim"]
    dvals = ds["d"].values
    theo = ds["critical_d_theory"].broadcast_like(g.isel(trajectories=0, d=0, drop=True)).transpose(*LEARNER)
    D = dims.broadcast_like(theo).transpose(*LEARNER).values
    out = np.full(g.shape[:-1], np.nan)
    verdict = np.full(g.shape[:-1], vd.NOT_COMPARED, dtype=object)
    enough = _fits(ds) >= MIN_FITS
    for idx in np.ndindex(g.shape[:-1]):
        gv = g.values[idx]
        defined = dvals <= D[idx[:-1]]
        ok = gv < tol
        found = math.nan
        for i in range(dvals.size - 1, -1, -1):
            if not defined[i]:
                continue
            if not ok[i]:
                break
            found = float(dvals[i])
        out[idx] = math.inf if math.isnan(found) and defined.any() else found
        decided = enough & (np.abs(gv - tol) > GROWTH_MARGIN) & ~np.isnan(gv)
        verdict[idx] = vd.threshold_verdict(
            dvals[defined].astype(float), ok[defined], decided[defined], float(theo.values[idx[:-1]])
        )
    return out, verdict, g


def _dickey_fuller(ds: xr.Dataset) -> dict[str, tuple[object, ...]]:
    """``T (ahat - 1)`` quantiles of the scalar random walk at ``m = 1``, ``d = 1``, largest ``T``."""
    probs = np.array(sorted(FULLER_QUANTILES))
    fuller = np.array([FULLER_QUANTILES[p] for p in probs])
    shape = (*(ds.sizes[a] for a in LEARNER), probs.size)
    q = np.full(shape, np.nan)
    verdict = np.full(shape, vd.NOT_COMPARED, dtype=object)
    constant = np.full(shape[:-1], np.nan)
    constant_verdict = np.full(shape[:-1], vd.NOT_COMPARED, dtype=object)
    limit = random_walk_constant()
    if 1 not in ds["trajectories"].values or 1 not in ds["d"].values:
        return {}
    T = int(ds["T"].values.max())
    N = _fits(ds)
    any_walk = False
    for idx in np.ndindex(shape[:-1]):
        sel = dict(zip(LEARNER, (ds[a].values[i] for a, i in zip(LEARNER, idx, strict=True)), strict=True))
        st = ds.sel(spectrum=sel["spectrum"])
        if int(st["n"]) != 1 or float(st["spectral_radius"]) != 1.0 or float(st["system"].values[0, 0]) != 1.0:
            continue
        any_walk = True
        cell = ds.sel(sel).sel(d=1, trajectories=1, T=T)
        a0 = float(ds["nominal_model"].sel(spectrum=sel["spectrum"], family=sel["family"], draw=sel["draw"])[0, 0])
        b = float(ds["learner_basis"].sel(spectrum=sel["spectrum"], learner_family=sel["learner_family"])[0, 0, 0])
        ahat = a0 + cell["phi"].isel(param=0).values * b
        stat = np.sort(T * (ahat - 1.0))
        q[idx] = np.quantile(stat, probs)
        scaled = T * cell["risk"].values
        constant[idx] = float(np.mean(scaled))
        band = vd.noise_sigmas(N) * float(np.std(scaled, ddof=1)) / math.sqrt(N) if N > 1 else math.inf
        if np.isnan(constant[idx]):
            constant_verdict[idx] = vd.UNRESOLVED
        else:
            rw_outside = bool(abs(constant[idx] - limit) > RW_TOL * limit + band)
            decided = T >= DF_MIN_T and N >= FPE_MIN_FITS
            constant_verdict[idx] = vd.decide(rw_outside, decided, vd.band_resolvable(band, limit))
        for k, p in enumerate(probs):
            if np.isnan(stat).any():
                verdict[(*idx, k)] = vd.UNRESOLVED
                continue
            half = vd.NOISE_SIGMAS * math.sqrt(N * p * (1 - p))
            lo = stat[max(0, math.floor(N * p - half))]
            hi = stat[min(N - 1, math.ceil(N * p + half))]
            tol = DF_TOL * abs(fuller[k])
            outside = not (lo - tol <= fuller[k] <= hi + tol)
            decided = T >= DF_MIN_T and N * p >= DF_MIN_TAIL
            verdict[(*idx, k)] = vd.decide(outside, decided, vd.band_resolvable(hi - lo, fuller[k]))
    if not any_walk:
        return {}
    dims = (*LEARNER, "df_probability")
    return {
        "dickey_fuller_quantile": measured(
            q, "quantile of T (ahat - 1) over fits (m = 1, d = 1, largest T)", "1", dims, horizon=T
        ),
        "dickey_fuller_quantile_theory": theory(
            np.broadcast_to(fuller, shape).copy(), "Fuller's quantile of T (ahat - 1), T = infinity", "1", dims
        ),
        "dickey_fuller_quantile_verdict": vd.variable(
            verdict,
            "Dickey-Fuller quantile vs Fuller's table",
            dims,
            ("dickey_fuller_quantile", "dickey_fuller_quantile_theory"),
            DF_RULE,
        ),
        "random_walk_constant": measured(
            constant, "T times the mean risk (m = 1, d = 1, largest T)", "process-noise variance", LEARNER, horizon=T
        ),
        "random_walk_constant_theory": theory(
            np.full(shape[:-1], limit),
            "E[Z^2] / 2, the limit of T E[R_T] (Dickey-Fuller)",
            "process-noise variance",
            LEARNER,
        ),
        "random_walk_constant_verdict": vd.variable(
            constant_verdict,
            "T E[R_T] of the scalar random walk from one trajectory vs E[Z^2] / 2",
            LEARNER,
            ("random_walk_constant", "random_walk_constant_theory"),
            RW_RULE,
        ),
    }


def thresholds(ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
    """Every extracted value beside its theory (see the module docstring)."""
    st = _mean_stats(ds)
    fpe = _fpe_theory(ds)
    crit, crit_verdict, growth = _critical(ds, st["mean"], options.growth_tol)
    fpe_verdict = _fpe_verdict(st["norm"], st["stderr"], fpe, ds)
    theo = ds["critical_d_theory"].broadcast_like(ds["draw"]).transpose(*LEARNER)
    variables: dict[str, tuple[object, ...]] = {
        "mean_risk": measured(
            st["mean"].transpose(*CELL).values, "mean risk over fits", "process-noise variance", CELL
        ),
        "risk_stderr": measured(
            st["stderr"].transpose(*CELL).values,
            "standard error of the mean risk (NaN with one fit)",
            "process-noise variance",
            CELL,
        ),
        "risk_quantile": measured(
            st["quantile"].transpose(*CELL, "quantile").values,
            "quantile of the risk over fits",
            "process-noise variance",
            (*CELL, "quantile"),
        ),
        "bias": static(
            ds["bias"].transpose(*CELL[:-1]).values, "best-in-class risk", "process-noise variance", CELL[:-1]
        ),
        "excess": measured(
            st["excess"].transpose(*CELL).values, "mean risk - bias (variance term)", "process-noise variance", CELL
        ),
        "normalised_excess": measured(st["norm"].transpose(*CELL).values, "(m T / d) (mean risk - bias)", "1", CELL),
        "normalised_excess_theory": theory(
            fpe.values,
            "limit of (m T / d) excess (d = n^2: stable as m T grows, marginal as m grows; docs/theory.md §6)",
            "1",
            (*LEARNER, "d", "trajectories"),
        ),
        "normalised_excess_verdict": vd.variable(
            fpe_verdict,
            "normalised excess vs 1 at the largest m T",
            (*LEARNER, "d"),
            ("normalised_excess", "normalised_excess_theory"),
            FPE_RULE,
        ),
        "growth_exponent": measured(
            growth.values,
            "growth exponent of the mean risk between the two largest horizons",
            "1",
            (*LEARNER, "trajectories", "d"),
        ),
        "critical_d_learned": measured(
            crit,
            "smallest d from which the mean risk stays bounded in T (+inf: never)",
            "parameters",
            PER_M,
        ),
        "critical_d_theory": theory(
            theo.values, "theory critical d of the bias (+inf: never; docs/theory.md §6)", "parameters", LEARNER
        ),
        "critical_d_learned_verdict": vd.variable(
            crit_verdict,
            "learned critical d vs theory",
            PER_M,
            ("critical_d_learned", "critical_d_theory"),
            CRITICAL_RULE,
        ),
    }
    variables |= _dickey_fuller(ds)
    coords = {a: ds[a].values for a in CELL}
    coords["quantile"] = np.array(QUANTILES)
    if "dickey_fuller_quantile" in variables:
        coords["df_probability"] = np.array(sorted(FULLER_QUANTILES))
    out = xr.Dataset(variables, coords=coords)
    for a in CELL:
        out[a].attrs.update(ds[a].attrs)
    out["quantile"].attrs.update(long_name="probability of the quantile over fits", units="1")
    if "df_probability" in out.coords:
        out["df_probability"].attrs.update(long_name="probability of the Dickey-Fuller quantile", units="1")
    out.attrs["fits"] = _fits(ds)
    out.attrs["growth_tol"] = float(options.growth_tol)
    return out
