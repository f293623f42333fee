"""Text of a hidden cube's thresholds: the table, the disagreements with theory, the summary."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.measure import known
from pipeline.core.wording import fmt, ranges

if TYPE_CHECKING:
    import xarray as xr

SLOPE_RTOL = 0.10
STEP_TAPS = 1.5
BOUNDED_BELOW = 0.1
EXPONENTIAL_ABOVE = 5.0


def slope_band(theory: float, span: float, resolution: float = STEP_TAPS) -> float:
    """Half-width of the band of measured slopes that agree with ``theory``: 10% of a positive
    theory or ``resolution`` taps over the fitted window (``span`` = Tmax / Tmin of the fit),
    whichever is wider. ``resolution`` defaults to 1.5 taps: ``k*`` is an integer, and a single
    one-tap step inside the window gives a least-squares slope of up to 1.5 / ln(span), so finer
    differences are below the resolution of the measurement."""
    taps = resolution / math.log(max(span, math.e))
    return max(SLOPE_RTOL * theory, taps) if theory > 0 else taps


def slope_disagrees(slope: float, theory: float, span: float, resolution: float = STEP_TAPS) -> bool:
    """True when a finite measured slope lies outside :func:`slope_band` of a finite theory."""
    if not (math.isfinite(slope) and math.isfinite(theory)):
        return False
    return abs(slope - theory) > slope_band(theory, span, resolution)


def _units(th: xr.Dataset) -> list[tuple[float, float, str]]:
    return [
        (float(lam), float(ratio), str(learner))
        for lam in th["lam"].values
        for ratio in th["noise_ratio"].values
        for learner in th["learner"].values
    ]


def disagreements(th: xr.Dataset) -> list[str]:
    """One line per slope or growth exponent that misses its theory beyond the tolerances."""
    lines = []
    T = th["T"].values.astype(np.float64)
    tol = float(th.attrs["growth_tol"])
    for lam, ratio, learner in _units(th):
        unit = {"lam": lam, "noise_ratio": ratio, "learner": learner}
        theory = float(th["k_star_slope_theory"].sel(unit))
        for tau in th["tau"].values:
            sel = unit | {"tau": tau}
            if not known(th, "k_star_slope", **sel):
                continue
            slope = float(th["k_star_slope"].sel(sel))
            mask = th["k_star_in_regime"].sel(sel).values.astype(bool)
            span = T[mask].max() / T[mask].min() if mask.any() else 1.0
            if slope_disagrees(slope, theory, span):
                lines.append(
                    f"k_star_slope lam={lam:g} noise_ratio={ratio:.3g} {learner} tau={tau:g}: "
                    f"{slope:.3f} vs theory {theory:.3f}"
                )
        if not known(th, "growth_exponent", **unit):
            continue
        g = th["growth_exponent"].sel(unit).values
        gt = float(th["growth_exponent_theory"].sel(lam=lam, learner=learner))
        allowed = max(tol, 0.1 * abs(gt))
        bad = np.isfinite(g) & (np.abs(g - gt) > allowed)
        if bad.any():
            worst = g[bad][np.argmax(np.abs(g[bad] - gt))]
            lines.append(
                f"growth_exponent lam={lam:g} noise_ratio={ratio:.3g} {learner} "
                f"k={ranges([int(x) for x in th['k'].values[bad]])}: up to {worst:.3g} vs theory "
                f"{gt:.3g} (tolerance {allowed:.3g})"
            )
    return lines


def table(th: xr.Dataset) -> list[str]:
    """Slopes of k* and growth exponents, measured / theory, per (lam, noise ratio, learner)."""
    taus = [float(t) for t in th["tau"].values]
    t1, t2 = th.attrs["growth_horizons"]
    ks = th["k"].values
    k_show = sorted({int(ks.min()), int(ks[len(ks) // 2]), int(ks.max())})
    lines = [
        "k_star_slope = d k*/d ln T: measured / theory (n = horizons in the fit; regime rule in the "
        "dataset attribute asymptotic_regime_rule)",
        f"growth exponent g = d log R / d log T between T = {t1:.3g} and {t2:.3g}: measured at "
        f"k = {', '.join(map(str, k_show))} / theory",
        "",
    ]
    header = (
        f"{'lam':>6} {'noise':>8} {'a':>7} {'learner':<17}| "
        + " ".join(f"{'slope tau=' + format(t, 'g'):>20}" for t in taus)
        + " | "
        + f"{'g':>20} {'g theory':>8}"
    )
    lines += [header, "-" * len(header)]
    for lam, ratio, learner in _units(th):
        unit = {"lam": lam, "noise_ratio": ratio, "learner": learner}
        a = float(th["a"].sel(lam=lam, noise_ratio=ratio))
        theory = float(th["k_star_slope_theory"].sel(unit))
        cells = []
        for tau in taus:
            sel = unit | {"tau": tau}
            npts = th["k_star_slope_points"].sel(sel).values
            n = "?" if not np.isfinite(npts) else str(int(npts))
            cells.append(f"{fmt(float(th['k_star_slope'].sel(sel)), '.3f')} / {fmt(theory, '.3f')} n={n}")
        g = th["growth_exponent"].sel(unit)
        gs = "/".join(fmt(float(g.sel(k=kk)), ".2f") for kk in k_show)
        gt = float(th["growth_exponent_theory"].sel(lam=lam, learner=learner))
        lines.append(
            f"{lam:6.3g} {ratio:8.3g} {a:7.4f} {learner:<17}| "
            + " ".join(f"{c:>20}" for c in cells)
            + f" | {gs:>20} {fmt(gt, '.3g'):>8}"
        )
    return lines


def regime(g: np.ndarray) -> str:
    """Describe growth exponents over k (NaN where the risk is 0)."""
    finite = g[np.isfinite(g)]
    if finite.size == 0:
        return "zero risk"
    top = float(np.max(finite))
    if top < BOUNDED_BELOW:
        return "bounded in T"
    if top > EXPONENTIAL_ABOVE:
        return "grows exponentially in T"
    return f"grows like T^{top:.2f}"


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """One finding per (lam, learner), and k* at the largest horizon for |lam| = 1."""
    kmax = int(th["k"].max())
    Tmax = float(th["T"].max())
    lines = ["findings:"]
    for lam in th["lam"].values:
        for learner in th["learner"].values:
            unit = {"lam": lam, "learner": learner}
            if not known(th, "growth_exponent", **unit):
                lines.append(f"  lam = {lam:g}, {learner}: not known yet (unfinished blocks)")
                continue
            found = regime(th["growth_exponent"].sel(unit).values)
            lines.append(f"  lam = {lam:g}, {learner}: risk {found} (every noise ratio, k <= {kmax})")
    tau = 1.0 if 1.0 in th["tau"].values else float(th["tau"].values[0])
    for lam in th["lam"].values[np.abs(np.abs(th["lam"].values) - 1) <= 1e-12]:
        if "truncated_kalman" not in th["learner"].values:
            break
        parts = []
        for ratio in th["noise_ratio"].values:
            sel = {"lam": lam, "noise_ratio": ratio, "learner": "truncated_kalman", "T": Tmax, "tau": tau}
            k_star = float(th["k_star"].sel(sel))
            if not known(th, "k_star", **sel):
                measured = "?"
            else:
                measured = f"{k_star:.0f}" if math.isfinite(k_star) else f">{kmax}"
            predicted = float(th["k_star_theory"].sel(lam=lam, noise_ratio=ratio, T=Tmax, tau=tau))
            parts.append(f"r={ratio:.3g}: {measured} (theory ~{predicted:.0f})")
        lines.append(
            f"  lam = {lam:g}, truncated_kalman: taps needed for R_T <= {tau:g} at T = {Tmax:.0e}: " + ", ".join(parts)
        )
    Ts = th.attrs["growth_horizons"]
    lines.append(
        f"growth exponent g = dlog R/dlog T between T = {Ts[0]:.3g} and {Ts[1]:.3g} "
        "(g ~ 1: diverges linearly; g ~ 0: bounded)"
    )
    return lines
