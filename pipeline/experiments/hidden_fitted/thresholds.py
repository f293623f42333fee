"""Thresholds of a fitted-filter cube, each beside its theory (MATH §5.4, §6.5).

``<sys>`` is the cube's system axis (``lam`` or ``spectrum``); ``m`` is ``trajectories``.

``mean_risk``, ``risk_stderr`` (sys, noise_ratio, k, T, trajectories), ``risk_quantile`` (... , quantile)
    mean over the fits of ``R_T`` of the fitted filter, its standard error (NaN with one fit)
    and quantiles; ``bias`` the exact ``best_fir`` risk at ``T`` (the ``m -> inf`` limit) and
    ``excess = mean_risk - bias``.
``growth_exponent`` (sys, noise_ratio, k, trajectories)
    ``d log mean_risk / d log T`` between the two largest horizons.
``critical_k_learned`` (sys, noise_ratio, trajectories)
    smallest ``k`` of the cube from which on every growth exponent of the mean risk is at most
    ``growth_tol`` (NaN: none), against ``k_c = n_u`` (``critical_k_theory``) with a verdict
    (``CRITICAL_RULE``).
``k_opt`` (sys, noise_ratio, T, trajectories)
    ``argmin_k mean_risk`` over the cube's ``k``: the bias-variance optimum.
``k_star_kalman`` (sys, noise_ratio, T, tau)
    the truncated Kalman ``k*(T; tau)``: smallest ``k`` in ``1..max k`` with exact risk ``<= tau``
    (NaN: none), computed exactly here (theory role: no data).
``excess_decay`` (sys, noise_ratio, k, trajectories)
    the least-squares slope of ``log excess`` against ``log (m T)`` at fixed ``m`` over the
    horizons of ``_decay_fit``, for ``k >= n_u``; theory ``-1`` (MATH §6.5: the variance term
    falls like ``1/(m T)``), with a verdict (``DECAY_RULE``); ``excess_decay_stderr`` the larger
    of the residuals' standard error and the spread of the single fits' slopes over ``sqrt(fits)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.core import verdicts
from pipeline.core.measure import first_from_which, growth_horizons, measured, static, theory
from pipeline.models.fitted_fir import system_text
from pipeline.models.hidden_spectrum import risk_block

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import ThresholdOptions

QUANTILES = (0.1, 0.5, 0.9)
MIN_FITS = 3
"""Fewer fits than this leave every comparison with theory unresolved (no standard error to
tell a reading from the sampling noise)."""
DECAY_THEORY = -1.0
DECAY_TOL = 0.25
"""Half-width of the band around ``-1`` within which a decay exponent agrees."""
DECAY_MIN_TAPS = 10
"""The decay is fitted over horizons ``T >= 10 k`` (well determined fits) ..."""
DECAY_DECADES = 2.0
"""... within the last two decades of the cube's horizons (the asymptotic regime)."""
CRITICAL_RULE = (
    "the growth exponent of the mean learned risk must be within growth_tol at every k >= n_u and above "
    "it at the k below; a reading is decided when the window before the two largest horizons reads the "
    f"same and it is clear of growth_tol by 3 standard errors (from the fits; Student-t: 19.2 at 3 fits); "
    f"fewer than {MIN_FITS} fits, "
    "an undecided reading or n_u outside the cube's k: unresolved"
)
DECAY_RULE = (
    f"k >= n_u only: the exponent is the least-squares slope of log excess against log T at fixed m over "
    f"the horizons T >= {DECAY_MIN_TAPS} k within the last {DECAY_DECADES:g} decades (3 points at least); "
    f"agrees when within {DECAY_TOL} of -1 and the edge of the band is 3 standard errors "
    "(Student-t over the fits; of the slope: "
    "its residuals', or the spread of the single fits' slopes over sqrt(fits) if larger) away, disagrees "
    f"when outside the band by as much, unresolved otherwise and with fewer than {MIN_FITS} fits"
)


def system_axis(ds: xr.Dataset) -> str:
    return "lam" if "lam" in ds.dims else "spectrum"


def texts(ds: xr.Dataset) -> list[str]:
    """Spectrum texts of the cube's systems (``repr(lam)`` for a scalar ``lam``)."""
    sa = system_axis(ds)
    return [system_text(str(s) if sa == "spectrum" else float(s)) for s in ds[sa].values]


def kalman_k_star(ds: xr.Dataset, taus: tuple[float, ...]) -> np.ndarray:
    """Truncated Kalman ``k*(T; tau)`` (S, R, N, tau) over ``k = 1..max k`` (exact, MATH §5.3)."""
    ks = np.arange(1, int(ds["k"].max()) + 1)
    T = ds["T"].values.astype(np.int64)
    ratios = ds["noise_ratio"].values.astype(np.float64)
    obs = str(ds.attrs.get("observation", "sum"))
    out = np.full((ds.sizes[system_axis(ds)], ratios.size, T.size, len(taus)), np.nan)
    for i, text in enumerate(texts(ds)):
        risk = risk_block(text, ratios, "truncated_kalman", ks, T, obs)["risk"]  # (R, K, N)
        for t, tau in enumerate(taus):
            ok = risk <= tau
            out[i, :, :, t] = np.where(ok.any(axis=1), ks[np.argmax(ok, axis=1)].astype(np.float64), np.nan)
    return out


def _slope(a: np.ndarray, b: np.ndarray, T1: float, T2: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (np.log10(b) - np.log10(a)) / (np.log10(T2) - np.log10(T1))
    return np.where(np.isfinite(g), g, np.nan)


def _slope_sigma(a: np.ndarray, sa: np.ndarray, b: np.ndarray, sb: np.ndarray, T1: float, T2: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((sa / a) ** 2 + (sb / b) ** 2) / np.log(T2 / T1)


def _decay_fit(excess: np.ndarray, k: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares slope of ``log excess`` against ``log T`` per (S, R, K, M) over the horizons
    ``T >= max(DECAY_MIN_TAPS k, T_max / 10^DECAY_DECADES)`` with a positive finite excess, its
    standard error from the residuals, and the number of points (slope NaN below 3 points)."""
    S_, R_, K_, _, M_ = excess.shape
    slope = np.full((S_, R_, K_, M_), np.nan)
    se = np.full(slope.shape, np.nan)
    count = np.zeros(slope.shape, dtype=np.int64)
    x_all = np.log(T)
    for a, kv in enumerate(k):
        window = (DECAY_MIN_TAPS * kv <= T) & (T.max() / 10.0**DECAY_DECADES <= T)
        for i, j, im in np.ndindex(S_, R_, M_):
            e = excess[i, j, a, :, im]
            ok = window & np.isfinite(e) & (e > 0)
            n = int(ok.sum())
            count[i, j, a, im] = n
            if n < 3:
                continue
            x, y = x_all[ok], np.log(e[ok])
            xc = x - x.mean()
            b = float(xc @ (y - y.mean()) / (xc @ xc))
            res = y - y.mean() - b * xc
            slope[i, j, a, im] = b
            se[i, j, a, im] = float(np.sqrt(res @ res / (n - 2) / (xc @ xc)))
    return slope, se, count


def thresholds(ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
    """The thresholds dataset of a fitted-filter cube (see the module docstring)."""
    import xarray as xr

    sa = system_axis(ds)
    ds = ds.sortby(["k", "T", "trajectories"])
    cube = (sa, "noise_ratio", "k", "T", "trajectories")
    tol = float(options.growth_tol)
    taus = tuple(float(t) for t in options.taus)
    k = ds["k"].values.astype(np.float64)
    T = ds["T"].values.astype(np.float64)
    F = ds.sizes["fit"]
    risk = ds["risk"].transpose(*cube, "fit").values
    with np.errstate(invalid="ignore", over="ignore"):
        mean = risk.mean(axis=-1)
        stderr = risk.std(axis=-1, ddof=1) / np.sqrt(F) if F > 1 else np.full(mean.shape, np.nan)
        quant = np.moveaxis(np.quantile(risk, QUANTILES, axis=-1), 0, -1)
    bias = ds["bias"].transpose(*cube[:4]).values
    excess = mean - bias[..., None]
    n_u = ds["n_unstable"].values.astype(np.float64)
    k_c = ds["critical_k_theory"].values.astype(np.float64)
    enough = F >= MIN_FITS

    # growth of the mean risk in T (two largest horizons, and the window before)
    t1, t2 = growth_horizons(T)
    t0, _ = growth_horizons(T, window=2)
    i1, i2 = T.size - 2, T.size - 1
    g = _slope(mean[..., i1, :], mean[..., i2, :], t1, t2)  # (S, R, K, M)
    sg = _slope_sigma(mean[..., i1, :], stderr[..., i1, :], mean[..., i2, :], stderr[..., i2, :], t1, t2)
    g0 = _slope(mean[..., i1 - 1, :], mean[..., i1, :], t0, t1) if T.size >= 3 else np.full(g.shape, np.nan)
    below = np.where(np.isnan(g), True, g <= tol)
    below0 = np.where(np.isnan(g0), np.isnan(g), g0 <= tol)
    decided = verdicts.settled(below, below0, np.isfinite(g0) | np.isnan(g), g - tol, sg, samples=F) & enough
    S_, R_, K_, M_ = g.shape
    crit = np.full((S_, R_, M_), np.nan)
    crit_verdict = np.full(crit.shape, verdicts.NOT_COMPARED, dtype=object)
    for i, j, im in np.ndindex(S_, R_, M_):
        crit[i, j, im] = first_from_which(below[i, j, :, im], np.ones(K_, dtype=bool), k)
        crit_verdict[i, j, im] = verdicts.threshold_verdict(
            k, below[i, j, :, im], decided[i, j, :, im], max(float(k_c[i]), 1.0)
        )

    # bias-variance optimum
    nan_any = np.isnan(mean).any(axis=2)  # a partial cube: some k not computed yet
    k_opt = np.where(nan_any, np.nan, k[np.argmin(np.where(np.isnan(mean), np.inf, mean), axis=2)])

    # decay of the excess in m T at fixed m (k >= n_u): least squares over the window of horizons
    decay, sdecay, _ = _decay_fit(excess, k, T)
    if F >= 2:  # the spread of the slopes of the single fits: the T-points of one fit are correlated
        per_fit = np.stack([_decay_fit(risk[..., f] - bias[..., None], k, T)[0] for f in range(F)])
        with np.errstate(invalid="ignore"):
            sdecay = np.fmax(sdecay, per_fit.std(axis=0, ddof=1) / np.sqrt(F))
    compared = (k[None, None, :, None] >= n_u[:, None, None, None]) & np.ones(decay.shape, dtype=bool)
    decay = np.where(compared, decay, np.nan)
    sdecay_shown = np.where(compared, sdecay, np.nan)
    decay_verdict = np.full(decay.shape, verdicts.NOT_COMPARED, dtype=object)
    for idx in zip(*np.nonzero(compared), strict=True):
        d, sd = decay[idx], sdecay[idx]
        if not (np.isfinite(d) and np.isfinite(sd)):
            decay_verdict[idx] = verdicts.UNRESOLVED
            continue
        miss = abs(d - DECAY_THEORY) - DECAY_TOL
        clear = bool(abs(miss) > verdicts.noise_sigmas(F) * sd)
        decay_verdict[idx] = verdicts.decide(miss > 0, clear and enough, enough)

    kstar = kalman_k_star(ds, taus)
    d5 = (sa, "noise_ratio", "k", "T", "trajectories")
    dg = (sa, "noise_ratio", "k", "trajectories")
    dc = (sa, "noise_ratio", "trajectories")
    out = xr.Dataset(
        {
            "mean_risk": measured(mean, "mean over fits of R_T of the fitted filter", "process-noise variance (q)", d5),
            "risk_stderr": measured(
                stderr, "standard error of mean_risk over the fits (NaN: one fit)", "process-noise variance (q)", d5
            ),
            "risk_quantile": measured(
                quant,
                "quantiles over fits of R_T of the fitted filter",
                "process-noise variance (q)",
                (*d5, "quantile"),
            ),
            "bias": theory(
                bias, "exact best_fir risk at T (the m -> infinity limit)", "process-noise variance (q)", d5[:4]
            ),
            "excess": measured(
                excess, "excess = mean_risk - bias (the variance term)", "process-noise variance (q)", d5
            ),
            "growth_exponent": measured(
                g, f"d log mean_risk / d log T between T = {t1:.6g} and {t2:.6g} (NaN: a risk 0)", "1", dg
            ),
            "critical_k_learned": measured(
                crit, f"smallest k from which on the mean risk grows by at most T^{tol:g} (NaN: none)", "taps", dc
            ),
            "critical_k_theory": theory(k_c, "k_c = n_u (MATH §5.4, §6.5)", "taps", (sa,)),
            "critical_k_learned_verdict": verdicts.variable(
                crit_verdict,
                "critical_k_learned against k_c = n_u",
                dc,
                ("critical_k_learned", "critical_k_theory"),
                CRITICAL_RULE,
            ),
            "k_opt": measured(
                k_opt,
                "bias-variance optimum argmin_k mean_risk over the cube's k",
                "taps",
                (sa, "noise_ratio", "T", "trajectories"),
            ),
            "k_star_kalman": theory(
                kstar,
                "truncated Kalman k*(T; tau): smallest k in 1..max k with exact R_T <= tau (NaN: none)",
                "taps",
                (sa, "noise_ratio", "T", "tau"),
            ),
            "excess_decay": measured(
                decay,
                "least-squares slope of log excess against log (m T) at fixed m (k >= n_u; NaN: else or too few T)",
                "1",
                dg,
            ),
            "excess_decay_stderr": measured(
                sdecay_shown, "standard error of excess_decay (residuals, or the spread over fits if larger)", "1", dg
            ),
            "excess_decay_theory": theory(
                np.float64(DECAY_THEORY), "theory decay exponent of the excess in m T (MATH §6.5)", "1", ()
            ),
            "excess_decay_verdict": verdicts.variable(
                decay_verdict, "excess_decay against -1", dg, ("excess_decay", "excess_decay_theory"), DECAY_RULE
            ),
            "n_unstable": static(n_u, "n_u", "1", (sa,)),
        },
        coords={
            sa: ds[sa],
            "noise_ratio": ds["noise_ratio"],
            "k": ds["k"],
            "T": ds["T"],
            "trajectories": ds["trajectories"],
            "quantile": ("quantile", np.asarray(QUANTILES), {"long_name": "quantile over fits", "units": "1"}),
            "tau": ("tau", np.asarray(taus), {"long_name": "risk level tau", "units": "process-noise variance (q)"}),
        },
    )
    out.attrs.update({"taus": list(taus), "growth_tol": tol, "growth_horizons": [t1, t2], "fits": int(F)})
    return out
