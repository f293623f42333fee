"""Text of a hidden cube's thresholds: the table, the disagreements with theory, the summary.

Every comparison carries its verdict (``pipeline.core.verdicts``: agrees, disagrees,
unresolved, not known yet), computed with the thresholds (``thresholds.SLOPE_VERDICT_RULE``,
``thresholds.GROWTH_VERDICT_RULE``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core import verdicts as vd
from pipeline.core.measure import known
from pipeline.core.wording import fmt, ranges

if TYPE_CHECKING:
    import xarray as xr

BOUNDED_BELOW = 0.1
EXPONENTIAL_ABOVE = 5.0
UNKNOWN_CELL = "?"
"""How a table cell shows a value a partial cube cannot know yet (the table's head says so)."""


def _units(th: xr.Dataset) -> list[tuple[float, float, str]]:
    return [
        (float(lam), float(ratio), str(learner))
        for lam in th["lam"].values
        for ratio in th["noise_ratio"].values
        for learner in th["learner"].values
    ]


def _verdict(th: xr.Dataset, name: str, **sel: object) -> str:
    return str(th[f"{name}_verdict"].sel(sel).values)


def disagreements(th: xr.Dataset) -> list[str]:
    """One line per slope or growth exponent whose verdict is ``disagrees``."""
    lines = []
    for lam, ratio, learner in _units(th):
        unit = {"lam": lam, "noise_ratio": ratio, "learner": learner}
        theory = float(th["k_star_slope_theory"].sel(unit))
        for tau in th["tau"].values:
            sel = unit | {"tau": tau}
            if _verdict(th, "k_star_slope", **sel) == vd.DISAGREES:
                lines.append(
                    f"k_star_slope lam={lam:g} noise_ratio={ratio:.3g} {learner} tau={tau:g}: "
                    f"{float(th['k_star_slope'].sel(sel)):.3f} vs theory {theory:.3f} "
                    f"(band ±{float(th['k_star_slope_band'].sel(sel)):.3g})"
                )
        g_verdict = vd.as_text(th["growth_exponent_verdict"].sel(unit).values)
        bad = g_verdict == vd.DISAGREES
        if bad.any():
            g = th["growth_exponent"].sel(unit).values
            gt = float(th["growth_exponent_theory"].sel(lam=lam, learner=learner))
            worst = g[bad][np.argmax(np.abs(g[bad] - gt))]
            lines.append(
                f"growth_exponent lam={lam:g} noise_ratio={ratio:.3g} {learner} "
                f"k={ranges([int(x) for x in th['k'].values[bad]])}: up to {worst:.3g} vs theory {gt:.3g}"
            )
    return lines


def _slope_cell(th: xr.Dataset, sel: dict[str, object]) -> str:
    verdict = _verdict(th, "k_star_slope", **sel)
    if verdict == vd.UNKNOWN:
        return vd.UNKNOWN_TEXT
    slope, band = float(th["k_star_slope"].sel(sel)), float(th["k_star_slope_band"].sel(sel))
    shown = fmt(slope, ".3f") + (f"±{band:.2g}" if math.isfinite(band) else "")
    return f"{shown} {verdict or 'n/a'}"


def _growth_cell(verdict_values: np.ndarray) -> str:
    """The verdicts of one unit's growth exponents over k, in a few words."""
    present = {v: n for v, n in vd.counts_of(verdict_values).items() if n}
    if len(present) == 1:
        return vd.text(next(iter(present)))
    return vd.counts_text(vd.counts_of(verdict_values)) if present else "n/a"


def table(th: xr.Dataset) -> list[str]:
    """Slopes of k* and growth exponents, measured / theory and verdict, per (lam, noise ratio,
    learner)."""
    taus = [float(t) for t in th["tau"].values]
    t1, t2 = th.attrs["growth_horizons"]
    ks = th["k"].values
    k_show = sorted({int(ks.min()), int(ks[len(ks) // 2]), int(ks.max())})
    lines = [
        "k* slope = d k*/d ln T per tau: measured ± agreement band, verdict (theory in its own column; "
        "regime and band rules in the dataset attributes asymptotic_regime_rule, slope_band_rule)",
        f"growth exponent g = d log R / d log T between T = {t1:.3g} and {t2:.3g}: measured at "
        f"k = {', '.join(map(str, k_show))} / theory, verdicts over every k",
        "",
    ]
    header = (
        f"{'lam':>6} {'noise':>8} {'a':>7} {'learner':<17}| {'slope theory':>12} "
        + " ".join(f"{'tau=' + format(t, 'g'):>22}" for t in taus)
        + f" | {'g':>16} {'theory':>8}  verdicts"
    )
    lines += [header, "-" * len(header)]
    for lam, ratio, learner in _units(th):
        unit = {"lam": lam, "noise_ratio": ratio, "learner": learner}
        a = float(th["a"].sel(lam=lam, noise_ratio=ratio))
        theory = float(th["k_star_slope_theory"].sel(unit))
        cells = [_slope_cell(th, unit | {"tau": tau}) for tau in taus]
        g = th["growth_exponent"].sel(unit)
        g_known = known(th, "growth_exponent", **unit)
        gs = "/".join(fmt(float(g.sel(k=kk)), ".2f") if g_known else UNKNOWN_CELL for kk in k_show)
        gt = float(th["growth_exponent_theory"].sel(lam=lam, learner=learner))
        lines.append(
            f"{lam:6.3g} {ratio:8.3g} {a:7.4f} {learner:<17}| {fmt(theory, '.3f'):>12} "
            + " ".join(f"{c:>22}" for c in cells)
            + f" | {gs:>16} {fmt(gt, '.3g'):>8}  {_growth_cell(th['growth_exponent_verdict'].sel(unit).values)}"
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


def _slope_finding(th: xr.Dataset, lam: float, tau: float) -> str:
    """How the truncated Kalman k* slopes at ``lam`` stand against theory, over the noise ratios."""
    sel = {"lam": lam, "learner": "truncated_kalman", "tau": tau}
    counted = vd.counts_text(vd.counts(th.sel(sel), ["k_star_slope_verdict"]))
    return f"  lam = {lam:g}, truncated_kalman: k* slope in ln T (tau = {tau:g}) against theory: {counted}"


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """One finding per (lam, learner), k* at the largest horizon for |lam| = 1 and how the k*
    slopes stand against theory."""
    kmax = int(th["k"].max())
    Tmax = float(th["T"].max())
    lines = ["findings:"]
    for lam in th["lam"].values:
        for learner in th["learner"].values:
            unit = {"lam": lam, "learner": learner}
            if not known(th, "growth_exponent", **unit):
                lines.append(f"  lam = {lam:g}, {learner}: {vd.UNKNOWN_TEXT} (unfinished blocks)")
                continue
            found = regime(th["growth_exponent"].sel(unit).values)
            verdict = _growth_cell(th["growth_exponent_verdict"].sel(unit).values)
            lines.append(
                f"  lam = {lam:g}, {learner}: risk {found} (every noise ratio, k <= {kmax}; against theory: {verdict})"
            )
    tau = 1.0 if 1.0 in th["tau"].values else float(th["tau"].values[0])
    for lam in th["lam"].values[np.abs(np.abs(th["lam"].values) - 1) <= 1e-12]:
        if "truncated_kalman" not in th["learner"].values:
            break
        parts = []
        for ratio in th["noise_ratio"].values:
            sel = {"lam": lam, "noise_ratio": ratio, "learner": "truncated_kalman", "T": Tmax, "tau": tau}
            k_star = float(th["k_star"].sel(sel))
            if not known(th, "k_star", **sel):
                measured = UNKNOWN_CELL
            else:
                measured = f"{k_star:.0f}" if math.isfinite(k_star) else f">{kmax}"
            predicted = float(th["k_star_theory"].sel(lam=lam, noise_ratio=ratio, T=Tmax, tau=tau))
            parts.append(f"r={ratio:.3g}: {measured} (theory ~{predicted:.0f})")
        lines.append(
            f"  lam = {lam:g}, truncated_kalman: taps needed for R_T <= {tau:g} at T = {Tmax:.0e}: " + ", ".join(parts)
        )
        lines.append(_slope_finding(th, float(lam), tau))
    Ts = th.attrs["growth_horizons"]
    lines.append(
        f"growth exponent g = dlog R/dlog T between T = {Ts[0]:.3g} and {Ts[1]:.3g} "
        "(g ~ 1: diverges linearly; g ~ 0: bounded)"
    )
    return lines
