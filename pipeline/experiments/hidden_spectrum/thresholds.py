"""Thresholds of a hidden-spectrum cube, each beside its theory (MATH §5.4).

``growth_exponent`` (spectrum, noise_ratio, learner, k) and ``growth_exponent_theory``
(spectrum, learner, k)
    ``d log R / d log T`` between the two largest horizons of the cube; theory ``2m - 1``
    for ``truncated_kalman`` at ``rho(A) = 1``, ``2 max(m_lam - k_lam) - 1`` for ``best_fir``
    below ``n_u`` taps, 0 where bounded, ``+inf`` for exponential growth.
``critical_k`` (spectrum, learner), ``critical_k_theory`` (spectrum, learner)
    the exact rank test (static part of the cube) and its theory ``n_u`` (``+inf``: never).
``critical_k_empirical`` (spectrum, noise_ratio, learner)
    smallest ``k`` of the cube from which on every ``growth_exponent`` is below
    ``growth_tol`` (NaN: none), with ``critical_k_empirical_verdict`` against the rank test
    for ``best_fir`` (``CRITICAL_VERDICT_RULE``); ``critical_k_verdict`` weighs the rank test
    against ``n_u``.
``k_star`` (spectrum, noise_ratio, learner, T, tau), ``k_star_slope`` (spectrum, noise_ratio,
learner, tau) and ``k_star_slope_theory`` (spectrum, noise_ratio, learner)
    as in the scalar experiment, with the Kalman closed-loop radius ``rho(F)`` in place of
    the pole ``a``: theory ``(2m - 1) / (2 ln(1/rho(F)))`` for ``truncated_kalman``; its band,
    decades and verdict as in the scalar experiment, the band widened where the closed loop
    oscillates (``SLOPE_BAND_RULE`` with ``P = closed_loop_period``).
``growth_exponent_verdict`` (spectrum, noise_ratio, learner, k)
    ``growth_tol`` around a finite theory, above ``EXPONENTIAL_ABOVE`` for ``+inf``
    (``GROWTH_VERDICT_RULE``).
``closed_loop_period`` (spectrum, noise_ratio)
    the longest oscillation period in taps of the dominant modes of ``F = A - K C``
    (:func:`pipeline.models.hidden_spectrum.closed_loop_period`, from the cube's stored
    matrices): the resolution of ``k*`` beyond its integer step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

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
from pipeline.experiments.hidden.thresholds import (
    ASYMPTOTIC_REGIME_RULE,
    EXPONENTIAL_ABOVE,
    GROWTH_VERDICT_RULE,
    SLOPE_BAND_RULE,
    SLOPE_VERDICT_RULE,
    k_star_slopes,
)
from pipeline.models import hidden_spectrum as model
from pipeline.models.spectra import parse_spectrum

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import ThresholdOptions

CUBE = ("spectrum", "noise_ratio", "learner", "k", "T")
CRITICAL_VERDICT_RULE = (
    "best_fir only: the growth exponent must be within growth_tol of 0 at every k >= the rank test's "
    "critical k and not at the k below it; agrees when every such reading holds and is settled (the "
    "window before the largest horizons reads the same, clear of the Monte Carlo noise), disagrees when a "
    "settled reading contradicts it, unresolved otherwise, and where the critical k lies outside the "
    "cube's k (censored)."
)


def closed_loop_periods(ds: xr.Dataset, k_max: int) -> np.ndarray:
    """``closed_loop_period`` of ``F = A - K C`` per (spectrum, noise_ratio), from the cube's
    NaN-padded ``system``, ``observation_matrix`` and ``kalman_gain``; shape (S, R), taps."""
    A = ds["system"].transpose("spectrum", "row", "col").values
    C = ds["observation_matrix"].transpose("spectrum", "col").values
    K = ds["kalman_gain"].transpose("spectrum", "noise_ratio", "row").values
    n = ds["n"].values
    out = np.empty(K.shape[:2])
    for i, j in np.ndindex(*out.shape):
        m = int(n[i])
        F = A[i, :m, :m] - np.outer(K[i, j, :m], C[i, :m])
        out[i, j] = model.closed_loop_period(F, k_max)
    return out


def thresholds(ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
    """The thresholds dataset of a hidden-spectrum cube (see the module docstring)."""
    import xarray as xr

    taus = options.taus
    tol = float(options.growth_tol)
    ds = ds.sortby(["k", "T"])
    spectra = [str(s) for s in ds["spectrum"].values]
    learners = [str(v) for v in ds["learner"].values]
    k, T = ds["k"].values, ds["T"].values
    ratios = ds["noise_ratio"].values.astype(np.float64)
    risk = ds["risk"].transpose(*CUBE).values
    rho = ds["closed_loop_radius"].transpose("spectrum", "noise_ratio").values.astype(np.float64)
    max_modulus = np.array([parse_spectrum(s).spectral_radius for s in spectra])
    period = closed_loop_periods(ds, int(k.max()))

    t1, t2 = growth_horizons(T)
    dims4 = ("spectrum", "noise_ratio", "learner", "k")
    g = growth_exponent(ds["log10_risk"]).transpose(*dims4).values
    g_before = growth_exponent(ds["log10_risk"], window=2).transpose(*dims4).values
    stderr = growth_stderr(ds)
    sigma = None if stderr is None else stderr.transpose(*dims4).values
    g_theory = np.array(
        [[[model.growth_exponent_theory(s, lr, int(kk)) for kk in k] for lr in learners] for s in spectra]
    )
    g_verdict = verdicts.growth_verdicts(
        g, g_before, g_theory[:, None], g_theory[:, None], np.full(g.shape, tol), sigma, EXPONENTIAL_ABOVE
    )
    # a NaN growth exponent at the largest horizons is a risk exactly 0 there: bounded
    below = np.where(np.isnan(g), True, np.abs(g) <= tol)
    below_before = np.where(np.isnan(g_before), np.isnan(g), np.abs(g_before) <= tol)
    decided = verdicts.settled(below, below_before, np.isfinite(g_before) | np.isnan(g), np.abs(g) - tol, sigma)
    crit_emp = np.full(g.shape[:3], np.nan)
    crit_verdict = np.full(g.shape[:3], verdicts.NOT_COMPARED, dtype=object)
    rank = ds["critical_k"].transpose("spectrum", "learner").values.astype(np.float64)
    kf = k.astype(np.float64)
    for i, j, li in np.ndindex(*crit_emp.shape):
        crit_emp[i, j, li] = first_from_which(below[i, j, li], np.isfinite(g[i, j, li]), kf)
        if learners[li] == "best_fir":
            crit_verdict[i, j, li] = verdicts.threshold_verdict(
                kf, below[i, j, li], decided[i, j, li], float(rank[i, li])
            )
    crit_theory = ds["critical_k_theory"].transpose("spectrum", "learner").values.astype(np.float64)
    rank_verdict = np.where(rank == crit_theory, verdicts.AGREES, verdicts.DISAGREES).astype(object)

    # the stable-state memory term of the regime rule uses the largest eigenvalue modulus
    slope_theory = np.empty((len(spectra), ratios.size, len(learners)))
    for i, s in enumerate(spectra):
        tk = model.kstar_slope_theory(s, ratios, ds.attrs.get("observation", "sum"))
        for li, lr in enumerate(learners):
            slope_theory[i, :, li] = tk if lr == "truncated_kalman" else 0.0
    fit = k_star_slopes(risk, k, T, taus, rho, max_modulus, slope_theory, period)

    d5 = ("spectrum", "noise_ratio", "learner", "T", "tau")
    d_tau = ("spectrum", "noise_ratio", "learner", "tau")
    d3 = ("spectrum", "noise_ratio", "learner")
    out = xr.Dataset(
        {
            "growth_exponent": measured(
                g, f"growth exponent d log R / d log T between T = {t1:.6g} and {t2:.6g}", "1", dims4
            ),
            "growth_exponent_before": measured(
                g_before, "growth exponent in the window before the two largest horizons (NaN: none)", "1", dims4
            ),
            "growth_exponent_theory": theory(
                g_theory,
                "theory growth exponent (MATH §5.4): 2m - 1 for truncated_kalman at rho(A) = 1, "
                "2 max(m_lam - k_lam) - 1 for best_fir below n_u taps, 0 where bounded, +inf exponential",
                "1",
                ("spectrum", "learner", "k"),
            ),
            "growth_exponent_verdict": verdicts.variable(
                g_verdict,
                "growth_exponent against growth_exponent_theory",
                dims4,
                ("growth_exponent", "growth_exponent_theory"),
                GROWTH_VERDICT_RULE,
            ),
            "critical_k_empirical": measured(
                crit_emp,
                f"smallest k from which on every growth exponent is <= {tol:g} (NaN: none)",
                "taps",
                d3,
            ),
            "critical_k_empirical_verdict": verdicts.variable(
                crit_verdict,
                "critical_k_empirical against the rank test critical_k (best_fir)",
                d3,
                ("critical_k_empirical", "critical_k"),
                CRITICAL_VERDICT_RULE,
            ),
            "critical_k": static(
                rank,
                "critical k by the exact rank test (+inf: never)",
                "taps",
                ("spectrum", "learner"),
            ),
            "critical_k_theory": theory(
                crit_theory,
                "theory critical k: n_u for best_fir, 0 or never (+inf) for truncated_kalman",
                "taps",
                ("spectrum", "learner"),
            ),
            "critical_k_verdict": verdicts.variable(
                rank_verdict,
                "critical_k (exact rank test) against critical_k_theory",
                ("spectrum", "learner"),
                ("critical_k", "critical_k_theory"),
                "exact: agrees when equal (both +inf for never), disagrees otherwise",
            ),
            "k_star": measured(
                fit["k_star"],
                "smallest filter length k of the cube with R_T <= tau (NaN: none)",
                "taps",
                d5,
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
                d_tau,
                rule=ASYMPTOTIC_REGIME_RULE,
            ),
            "k_star_slope_band": measured(
                fit["band"],
                "half-width of the band of slopes that agree with the theory",
                "taps per e-fold of T",
                d_tau,
                rule=SLOPE_BAND_RULE,
            ),
            "k_star_slope_decades": measured(
                fit["decades"], "decades of T spanned by the k_star_slope fit", "1", d_tau
            ),
            "k_star_slope_theory": theory(
                slope_theory,
                "theory slope of k* in ln T: truncated_kalman (2m - 1) / (2 ln(1/rho(F))), "
                "0 if n_u = 0, +inf if rho(A) > 1; best_fir 0",
                "taps per e-fold of T",
                d3,
            ),
            "k_star_slope_verdict": verdicts.variable(
                fit["verdict"],
                "k_star_slope against k_star_slope_theory",
                d_tau,
                ("k_star_slope", "k_star_slope_theory"),
                SLOPE_VERDICT_RULE,
            ),
            "closed_loop_radius": static(rho, "rho(F) of the Kalman closed loop", "1", ("spectrum", "noise_ratio")),
            "closed_loop_period": static(
                period,
                "longest oscillation period of the dominant closed-loop modes (0: none)",
                "taps",
                ("spectrum", "noise_ratio"),
            ),
            "n_unstable": static(ds["n_unstable"].values, "n_u", "1", ("spectrum",)),
            "max_marginal_block": static(ds["max_marginal_block"].values, "m", "1", ("spectrum",)),
        },
        coords={
            "spectrum": ds["spectrum"],
            "noise_ratio": ds["noise_ratio"],
            "learner": ds["learner"],
            "k": ds["k"],
            "T": ds["T"],
            "tau": ("tau", np.asarray(taus, dtype=np.float64), {"long_name": "risk level tau"}),
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
