"""Thresholds of a hidden cube, each beside its theory (MATH §2.4, §4).

``k_star`` (lam, noise_ratio, learner, T, tau)
    smallest ``k`` of the cube with ``risk <= tau``; NaN where no ``k`` reaches ``tau``.
``k_star_theory`` (lam, noise_ratio, T, tau)
    ``ln(q T / (2 tau)) / (2 ln(1/a))`` (q = 1), for ``|lam| = 1`` only (NaN otherwise).
``k_star_slope`` (lam, noise_ratio, learner, tau)
    least-squares slope of ``k_star`` against ``ln T`` over the horizons of the asymptotic
    regime (``ASYMPTOTIC_REGIME_RULE``, also in the dataset attributes), beside
    ``k_star_slope_theory`` (lam, noise_ratio, learner), with the half-width of its agreement
    band ``k_star_slope_band`` (``SLOPE_BAND_RULE``), the decades of ``T`` the fit spans
    ``k_star_slope_decades`` and ``k_star_slope_verdict`` (``SLOPE_VERDICT_RULE``).
``growth_exponent`` (lam, noise_ratio, learner, k) and ``growth_exponent_theory`` (lam, learner)
    ``d log R / d log T`` between the two largest horizons, ``growth_exponent_before`` in the
    window before, and ``growth_exponent_verdict`` (``GROWTH_VERDICT_RULE``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core import verdicts
from pipeline.core.measure import (
    first_k_below,
    growth_exponent,
    growth_horizons,
    growth_stderr,
    measured,
    static,
    theory,
)
from pipeline.models import hidden as model

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import ThresholdOptions

REGIME_FACTOR = 10.0
MIN_POINTS = 3
MIN_SPAN = 10.0

ASYMPTOTIC_REGIME_RULE = (
    f"A horizon T enters the least-squares fit of k_star against ln T when (1) k_star(T) is "
    f"defined (some k of the cube reaches tau); (2) T >= {REGIME_FACTOR:g} * max(k_star(T), "
    f"1/(1 - |a|), 1/(1 - |lam|) if |lam| < 1), i.e. the horizon is long against the filter length, "
    f"the memory 1/(1-|a|) of the Kalman predictor and the correlation time of a stable state, "
    f"so that at lam = 1 R_T = a^(2k) (T/2 + O(k + 1/(1-a))) is dominated by its leading term "
    f"and a bounded risk has settled; (3) k_star(T) is above the smallest k of the cube (a value at the "
    f"grid's lower edge is censored), unless k_star sits at that edge at every horizon passing "
    f"(1)-(2), in which case k_star is constant and the slope is 0. The fit needs at least "
    f"{MIN_POINTS} horizons spanning a factor of at least {MIN_SPAN:g} in T; otherwise NaN."
)


SLOPE_RTOL = 0.10
STEP_TAPS = 1.5
EXPONENTIAL_ABOVE = 5.0

SLOPE_BAND_RULE = (
    f"Half-width of the band of k_star slopes that agree with a positive theory slope s: the larger of "
    f"{SLOPE_RTOL:.0%} of s (corrections to the asymptotic law) and e_step + e_osc. e_step is the largest "
    "least-squares slope error an exact integer staircase ceil(s ln T + c) makes on the fitted horizons, "
    "over every offset c (k* is an integer). e_osc = 1.5 W/L min(1, 2q(1 + q)) bounds the error of a "
    "further deviation of range W taps (the range of the fit's residuals beyond one tap) that recurs "
    "every P taps of k*, i.e. every P/s e-folds of T, over a window of L = ln(Tmax/Tmin) e-folds "
    "(q = P/(s L)); P is the closed-loop oscillation period (0 for the scalar system, e_osc = 0). For a "
    f"zero theory: ({STEP_TAPS:g} + P)/L taps per e-fold (one step of k*, or one period, over the window)."
)
SLOPE_VERDICT_RULE = (
    "agrees: |slope - theory| <= band, the band is at most "
    f"{verdicts.RESOLVED_FRACTION:.0%} of a positive theory and the fit spans at least "
    f"{verdicts.RESOLVED_DECADES:g} decades of T; disagrees: |slope - theory| > band; unresolved: no fit "
    "(too few horizons in the asymptotic regime), a wider band or a shorter window; no comparison where "
    "the theory is +inf (rho > 1: k* grows linearly in T, which the growth exponent tests)."
)
GROWTH_VERDICT_RULE = (
    "band: the larger of growth_tol and 10% of the theory (+inf theory: exponential growth agrees with "
    f"an exponent above {EXPONENTIAL_ABOVE:g}); agrees or disagrees only when the window before the "
    "largest horizons tells the same (the growth has settled), the miss is more than "
    f"{verdicts.NOISE_SIGMAS:g} Monte Carlo standard errors from the band's edge, and (to agree) the band "
    f"is at most {verdicts.GROWTH_LAW_GAP / 2:g} or {verdicts.RESOLVED_FRACTION:.0%} of the theory; "
    "unresolved otherwise (e.g. a cube with two horizons)."
)


def staircase_slope_error(slope: float, x: np.ndarray) -> float:
    """The largest ``|fitted slope - slope|`` of a least-squares line through the integer staircase
    ``ceil(slope * x + c)`` sampled at ``x``, over every offset ``c`` (the staircase is constant
    between the offsets where some ``slope * x_i + c`` crosses an integer, so one offset per piece
    is tried). 0 for ``slope <= 0`` or fewer than two points."""
    x = np.asarray(x, dtype=np.float64)
    if slope <= 0 or x.size < 2 or not np.isfinite(slope):
        return 0.0
    cuts = np.unique(np.concatenate([[0.0, 1.0], np.mod(-slope * x, 1.0)]))
    offsets = (cuts[:-1] + cuts[1:]) / 2
    centred = x - x.mean()
    weights = centred / (centred @ centred)
    return float(np.max(np.abs(np.ceil(slope * x[None, :] + offsets[:, None]) @ weights - slope)))


def slope_band(slope_theory: float, x: np.ndarray, k_star: np.ndarray, period: float = 0.0) -> float:
    """Half-width of the agreement band of a ``k*`` slope fitted to ``k_star`` at ``x = ln T``
    (the fit's horizons) against ``slope_theory``, with ``period`` the closed-loop oscillation
    period in taps (``SLOPE_BAND_RULE``); NaN without a fit or for an infinite theory."""
    x = np.asarray(x, dtype=np.float64)
    k_star = np.asarray(k_star, dtype=np.float64)
    if x.size < 2 or not np.isfinite(slope_theory):
        return math.nan
    span = float(x.max() - x.min())
    if span <= 0:
        return math.nan
    if slope_theory <= 0:
        return (STEP_TAPS + period) / span
    residual = k_star - np.polyval(np.polyfit(x, k_star, 1), x)
    excess = max(0.0, float(residual.max() - residual.min()) - 1.0)
    e_osc = 0.0
    if period > 0:
        q = period / (slope_theory * span)
        e_osc = 1.5 * excess / span * min(1.0, 2.0 * q * (1.0 + q))
    return max(SLOPE_RTOL * slope_theory, staircase_slope_error(slope_theory, x) + e_osc)


def slope_verdict(slope: float, slope_theory: float, band: float, decades: float) -> str:
    """``SLOPE_VERDICT_RULE`` for one fitted slope."""
    if np.isinf(slope_theory) or np.isnan(slope_theory):
        return verdicts.NOT_COMPARED
    if not (np.isfinite(slope) and np.isfinite(band)):
        return verdicts.UNRESOLVED
    outside = abs(slope - slope_theory) > band * (1 + 1e-9) + 1e-12
    narrow = slope_theory == 0 or verdicts.band_resolvable(band, slope_theory)
    resolvable = narrow and decades >= verdicts.RESOLVED_DECADES - 1e-9
    return verdicts.decide(outside, True, resolvable)


def slope_in_regime(
    k_star: np.ndarray, T: np.ndarray, a: float, k_min: float, lam: float = 1.0
) -> tuple[float, np.ndarray]:
    """Slope of ``k_star`` (one value per horizon ``T``) against ``ln T``, and the mask of
    horizons in the fit (``ASYMPTOTIC_REGIME_RULE``)."""
    T = np.asarray(T, dtype=np.float64)
    k_star = np.asarray(k_star, dtype=np.float64)
    memory = 1.0 / (1.0 - abs(a)) if abs(a) < 1 else np.inf
    if abs(lam) < 1:
        memory = max(memory, 1.0 / (1.0 - abs(lam)))
    with np.errstate(invalid="ignore"):
        base = np.isfinite(k_star) & (REGIME_FACTOR * np.maximum(k_star, memory) <= T)
    censored = k_star <= k_min
    mask = base if base.any() and np.all(censored[base]) else base & ~censored
    if mask.sum() < MIN_POINTS or T[mask].max() < MIN_SPAN * T[mask].min():
        return math.nan, mask
    y = k_star[mask]
    if np.all(y == y[0]):
        return 0.0, mask
    return float(np.polyfit(np.log(T[mask]), y, 1)[0]), mask


def k_star_slopes(
    risk: np.ndarray,
    k: np.ndarray,
    T: np.ndarray,
    taus: Sequence[float],
    pole: np.ndarray,
    lam: np.ndarray,
    slope_theory: np.ndarray,
    period: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``k_star`` (U, R, L, N, tau), its ``slope`` by :func:`slope_in_regime` (U, R, L, tau), the
    fit's horizons ``regime`` (U, R, L, N, tau), the fit's ``band`` (:func:`slope_band`) and
    ``decades`` of ``T``, and the ``verdict`` against ``slope_theory`` (U, R, L), from ``risk``
    (U, R, L, K, N) over systems U, noise ratios R, learners L, filter lengths ``k`` (K,) and
    horizons ``T`` (N,); ``pole`` (U, R) is the Kalman closed loop's pole or radius, ``lam``
    (U,) the largest eigenvalue modulus, ``period`` (U, R) the closed-loop oscillation period
    in taps (None: 0)."""
    k_star = np.stack([first_k_below(risk, k, tau, axis=3) for tau in taus], axis=-1)
    shape = (*k_star.shape[:3], len(taus))
    out = {name: np.full(shape, np.nan) for name in ("slope", "band", "decades")}
    out["verdict"] = np.full(shape, verdicts.NOT_COMPARED, dtype=object)
    regime = np.zeros(k_star.shape, dtype=bool)
    lnT = np.log(np.asarray(T, dtype=np.float64))
    for i, j, li, ti in np.ndindex(*shape):
        ks = k_star[i, j, li, :, ti]
        slope, mask = slope_in_regime(ks, T, float(pole[i, j]), float(k.min()), float(lam[i]))
        regime[i, j, li, :, ti] = mask
        at = (i, j, li, ti)
        theory_slope = float(slope_theory[i, j, li])
        out["slope"][at] = slope
        if mask.any():
            out["decades"][at] = float(lnT[mask].max() - lnT[mask].min()) / math.log(10.0)
        if math.isfinite(slope):
            p = 0.0 if period is None else float(period[i, j])
            out["band"][at] = slope_band(theory_slope, lnT[mask], ks[mask], p)
        out["verdict"][at] = slope_verdict(slope, theory_slope, float(out["band"][at]), float(out["decades"][at]))
    return {"k_star": k_star, "regime": regime, **out}


def thresholds(ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
    """The thresholds dataset of a hidden cube (see the module docstring)."""
    import xarray as xr

    taus = options.taus
    ds = ds.sortby(["k", "T"])
    risk = ds["risk"].transpose("lam", "noise_ratio", "learner", "k", "T").values
    lam = ds["lam"].values.astype(np.float64)
    learners = [str(v) for v in ds["learner"].values]
    k, T = ds["k"].values, ds["T"].values
    a = ds["a"].transpose("lam", "noise_ratio").values.astype(np.float64)

    slope_theory = np.stack([model.kstar_slope_theory(lam[:, None], a, learner) for learner in learners], axis=2)
    fit = k_star_slopes(risk, k, T, taus, a, lam, slope_theory)

    tau_arr = np.asarray(taus, dtype=np.float64)
    k_theory = np.where(
        model.is_marginal(lam)[:, None, None, None],
        model.kstar_theory(a[:, :, None, None], T[None, None, :, None], tau_arr),
        np.nan,
    )
    t1, t2 = growth_horizons(T)
    t0, _ = growth_horizons(T, window=2)
    dims4 = ("lam", "noise_ratio", "learner", "k")
    g = growth_exponent(ds["log10_risk"]).transpose(*dims4).values
    g_before = growth_exponent(ds["log10_risk"], window=2).transpose(*dims4).values
    sigma = growth_stderr(ds)
    g_theory = np.stack([model.growth_exponent_theory(lam, learner, t1, t2) for learner in learners], axis=1)
    g_theory_before = np.stack(
        [
            model.growth_exponent_theory(lam, learner, t0, t1) if np.isfinite(t0) else np.full(lam.shape, np.nan)
            for learner in learners
        ],
        axis=1,
    )
    tol = float(options.growth_tol)
    band = np.maximum(tol, 0.1 * np.abs(g_theory))[:, None, :, None]
    g_verdict = verdicts.growth_verdicts(
        g,
        g_before,
        g_theory[:, None, :, None],
        g_theory_before[:, None, :, None],
        band,
        None if sigma is None else sigma.transpose(*dims4).values,
        EXPONENTIAL_ABOVE,
    )

    d5 = ("lam", "noise_ratio", "learner", "T", "tau")
    d4 = ("lam", "noise_ratio", "learner", "tau")
    out = xr.Dataset(
        {
            "k_star": measured(
                fit["k_star"], "smallest filter length k of the cube with R_T <= tau (NaN: none)", "taps", d5
            ),
            "k_star_theory": theory(
                k_theory,
                "theory k*(T) = ln(q T / (2 tau)) / (2 ln(1/a)) (docs/theory.md §2.4; |lam| = 1 only)",
                "taps",
                ("lam", "noise_ratio", "T", "tau"),
            ),
            "k_star_in_regime": measured(
                fit["regime"],
                "horizon used in the k_star_slope fit (asymptotic regime)",
                "1",
                d5,
                rule=ASYMPTOTIC_REGIME_RULE,
            ),
            "k_star_slope": measured(
                fit["slope"],
                "least-squares slope of k_star against ln T in the asymptotic regime",
                "taps per e-fold of T",
                d4,
                rule=ASYMPTOTIC_REGIME_RULE,
            ),
            "k_star_slope_points": measured(
                fit["regime"].sum(axis=3).astype(np.int64), "number of horizons in the k_star_slope fit", "1", d4
            ),
            "k_star_slope_band": measured(
                fit["band"],
                "half-width of the band of slopes that agree with the theory",
                "taps per e-fold of T",
                d4,
                rule=SLOPE_BAND_RULE,
            ),
            "k_star_slope_decades": measured(fit["decades"], "decades of T spanned by the k_star_slope fit", "1", d4),
            "k_star_slope_theory": theory(
                slope_theory,
                "theory slope of k* in ln T: truncated_kalman "
                "1/(2 ln(1/a)) at |lam| = 1, 0 for |lam| < 1, +inf for |lam| > 1 "
                "(k* linear in T); best_fir 0",
                "taps per e-fold of T",
                ("lam", "noise_ratio", "learner"),
            ),
            "k_star_slope_verdict": verdicts.variable(
                fit["verdict"],
                "k_star_slope against k_star_slope_theory",
                d4,
                ("k_star_slope", "k_star_slope_theory"),
                SLOPE_VERDICT_RULE,
            ),
            "a": static(a, "Kalman predictor pole a = lam - K", "1", ("lam", "noise_ratio")),
            "growth_exponent": measured(
                g, f"growth exponent d log R / d log T between T = {t1:.6g} and {t2:.6g}", "1", dims4
            ),
            "growth_exponent_before": measured(
                g_before,
                f"growth exponent between T = {t0:.6g} and {t1:.6g} (the window before; NaN: no such window)",
                "1",
                dims4,
            ),
            "growth_exponent_theory": theory(
                g_theory,
                "theory growth exponent: 0 where bounded (|lam| < 1, "
                "best_fir), 1 for truncated_kalman at |lam| = 1, "
                "2 (T2 - T1) log10|lam| / log10(T2/T1) for |lam| > 1",
                "1",
                ("lam", "learner"),
            ),
            "growth_exponent_verdict": verdicts.variable(
                g_verdict,
                "growth_exponent against growth_exponent_theory",
                dims4,
                ("growth_exponent", "growth_exponent_theory"),
                GROWTH_VERDICT_RULE,
            ),
        },
        coords={
            "lam": ds["lam"],
            "noise_ratio": ds["noise_ratio"],
            "learner": ds["learner"],
            "T": ds["T"],
            "tau": ("tau", tau_arr, {"long_name": "risk level tau", "units": "process-noise variance (q)"}),
            "k": ds["k"],
        },
    )
    out.attrs.update(
        {
            "asymptotic_regime_rule": ASYMPTOTIC_REGIME_RULE,
            "taus": list(map(float, taus)),
            "growth_tol": tol,
            "growth_horizons": [t1, t2],
            "slope_band_rule": SLOPE_BAND_RULE,
        }
    )
    return out
