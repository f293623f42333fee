"""Thresholds of a hidden cube, each beside its theory (MATH §2.4, §4).

``k_star`` (lam, noise_ratio, learner, T, tau)
    smallest ``k`` of the cube with ``risk <= tau``; NaN where no ``k`` reaches ``tau``.
``k_star_theory`` (lam, noise_ratio, T, tau)
    ``ln(q T / (2 tau)) / (2 ln(1/a))`` (q = 1), for ``|lam| = 1`` only (NaN otherwise).
``k_star_slope`` (lam, noise_ratio, learner, tau)
    least-squares slope of ``k_star`` against ``ln T`` over the horizons of the asymptotic
    regime (``ASYMPTOTIC_REGIME_RULE``, also in the dataset attributes), beside
    ``k_star_slope_theory`` (lam, noise_ratio, learner).
``growth_exponent`` (lam, noise_ratio, learner, k) and ``growth_exponent_theory`` (lam, learner)
    ``d log R / d log T`` between the two largest horizons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.measure import first_k_below, growth_exponent, growth_horizons, measured, static, theory
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
    risk: np.ndarray, k: np.ndarray, T: np.ndarray, taus: Sequence[float], pole: np.ndarray, lam: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``k_star`` (U, R, L, N, tau), its ``slope_in_regime`` (U, R, L, tau) and the fit's
    horizons (U, R, L, N, tau), from ``risk`` (U, R, L, K, N) over systems U, noise ratios R,
    learners L, filter lengths ``k`` (K,) and horizons ``T`` (N,); ``pole`` (U, R) is the
    Kalman closed loop's pole or radius, ``lam`` (U,) the largest eigenvalue modulus."""
    k_star = np.stack([first_k_below(risk, k, tau, axis=3) for tau in taus], axis=-1)
    slope = np.full((*k_star.shape[:3], len(taus)), np.nan)
    regime = np.zeros(k_star.shape, dtype=bool)
    for i, j, li, ti in np.ndindex(*slope.shape):
        slope[i, j, li, ti], regime[i, j, li, :, ti] = slope_in_regime(
            k_star[i, j, li, :, ti], T, float(pole[i, j]), float(k.min()), float(lam[i])
        )
    return k_star, slope, regime


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

    k_star, slope, regime = k_star_slopes(risk, k, T, taus, a, lam)

    tau_arr = np.asarray(taus, dtype=np.float64)
    k_theory = np.where(
        model.is_marginal(lam)[:, None, None, None],
        model.kstar_theory(a[:, :, None, None], T[None, None, :, None], tau_arr),
        np.nan,
    )
    slope_theory = np.stack([model.kstar_slope_theory(lam[:, None], a, learner) for learner in learners], axis=2)
    t1, t2 = growth_horizons(T)
    g = growth_exponent(ds["log10_risk"]).transpose("lam", "noise_ratio", "learner", "k")
    g_theory = np.stack([model.growth_exponent_theory(lam, learner, t1, t2) for learner in learners], axis=1)

    d5 = ("lam", "noise_ratio", "learner", "T", "tau")
    d4 = ("lam", "noise_ratio", "learner", "tau")
    out = xr.Dataset(
        {
            "k_star": measured(k_star, "smallest filter length k of the cube with R_T <= tau (NaN: none)", "taps", d5),
            "k_star_theory": theory(
                k_theory,
                "theory k*(T) = ln(q T / (2 tau)) / (2 ln(1/a)) (docs/theory.md §2.4; |lam| = 1 only)",
                "taps",
                ("lam", "noise_ratio", "T", "tau"),
            ),
            "k_star_in_regime": measured(
                regime, "horizon used in the k_star_slope fit (asymptotic regime)", "1", d5, rule=ASYMPTOTIC_REGIME_RULE
            ),
            "k_star_slope": measured(
                slope,
                "least-squares slope of k_star against ln T in the asymptotic regime",
                "taps per e-fold of T",
                d4,
                rule=ASYMPTOTIC_REGIME_RULE,
            ),
            "k_star_slope_points": measured(
                regime.sum(axis=3).astype(np.int64), "number of horizons in the k_star_slope fit", "1", d4
            ),
            "k_star_slope_theory": theory(
                slope_theory,
                "theory slope of k* in ln T: truncated_kalman "
                "1/(2 ln(1/a)) at |lam| = 1, 0 for |lam| < 1, +inf for |lam| > 1 "
                "(k* linear in T); best_fir 0",
                "taps per e-fold of T",
                ("lam", "noise_ratio", "learner"),
            ),
            "a": static(a, "Kalman predictor pole a = lam - K", "1", ("lam", "noise_ratio")),
            "growth_exponent": measured(
                g.values,
                f"growth exponent d log R / d log T between T = {t1:.6g} and {t2:.6g}",
                "1",
                ("lam", "noise_ratio", "learner", "k"),
            ),
            "growth_exponent_theory": theory(
                g_theory,
                "theory growth exponent: 0 where bounded (|lam| < 1, "
                "best_fir), 1 for truncated_kalman at |lam| = 1, "
                "2 (T2 - T1) log10|lam| / log10(T2/T1) for |lam| > 1",
                "1",
                ("lam", "learner"),
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
            "growth_tol": float(options.growth_tol),
            "growth_horizons": [t1, t2],
        }
    )
    return out
