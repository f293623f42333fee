"""Text of a hidden-spectrum cube's thresholds: the table, the disagreements with theory, the summary.

Tolerances: a growth exponent agrees with a finite theory within ``growth_tol`` (the
thresholds option, default 0.5) and with ``+inf`` (exponential growth) when it exceeds
``EXPONENTIAL_ABOVE``; the empirical critical ``k`` agrees with the rank test when equal;
the rank test agrees with ``n_u`` when equal; the ``k*`` slope as in the scalar experiment
(``pipeline.experiments.hidden.report.slope_disagrees``: 10% of the theory, and a number of
taps over the fitted window) with the resolution in taps widened from 1.5 to
``1.5 + closed_loop_period``: where the dominant closed-loop modes oscillate, ``k*(T)`` is a
staircase that strays from its ``ln T`` asymptote by about one period (docs/theory.md §5).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.measure import known
from pipeline.core.wording import fmt
from pipeline.experiments.hidden.report import STEP_TAPS, slope_disagrees

if TYPE_CHECKING:
    import xarray as xr

EXPONENTIAL_ABOVE = 5.0


def growth_disagrees(g: float, theory: float, tol: float) -> bool:
    """Whether a measured growth exponent ``g`` misses its ``theory`` (``inf``: exponential)."""
    if not math.isfinite(g):
        return False
    if math.isinf(theory):
        return g <= EXPONENTIAL_ABOVE
    return abs(g - theory) > tol


def _k(v: float) -> str:
    return "never" if math.isinf(v) else ("none" if math.isnan(v) else str(int(v)))


def disagreements(th: xr.Dataset) -> list[str]:
    """One line per growth exponent, critical k or k* slope that misses its theory."""
    lines = []
    tol = float(th.attrs["growth_tol"])
    T = th["T"].values.astype(np.float64)
    for s in th["spectrum"].values:
        for learner in th["learner"].values:
            unit = {"spectrum": s, "learner": learner}
            ck = float(th["critical_k"].sel(unit))
            ct = float(th["critical_k_theory"].sel(unit))
            if ck != ct:
                lines.append(f"spectrum {s!r}, {learner}: critical k (rank test) {_k(ck)} vs theory {_k(ct)}")
            for ratio in th["noise_ratio"].values:
                cell = unit | {"noise_ratio": ratio}
                ce = float(th["critical_k_empirical"].sel(cell))
                k_min, k_max = float(th["k"].min()), float(th["k"].max())
                # the empirical value cannot be below the cube's smallest k
                if learner == "best_fir" and math.isfinite(ck) and ck <= k_max and ce != max(ck, k_min):
                    lines.append(
                        f"spectrum {s!r}, noise ratio {fmt(ratio)}, {learner}: empirical critical k {_k(ce)} "
                        f"vs rank test {_k(ck)}"
                    )
                for kk in th["k"].values:
                    g = float(th["growth_exponent"].sel(cell | {"k": kk}))
                    gt = float(th["growth_exponent_theory"].sel(unit | {"k": kk}))
                    if known(th, "growth_exponent", **cell, k=kk) and growth_disagrees(g, gt, tol):
                        lines.append(
                            f"spectrum {s!r}, noise ratio {fmt(ratio)}, {learner}, k = {int(kk)}: growth exponent "
                            f"{g:.3g} vs theory {gt:g} (tolerance {tol:g})"
                        )
                theory = float(th["k_star_slope_theory"].sel(cell))
                resolution = STEP_TAPS + float(th["closed_loop_period"].sel(spectrum=s, noise_ratio=ratio))
                for tau in th["tau"].values:
                    sel = cell | {"tau": tau}
                    slope = float(th["k_star_slope"].sel(sel))
                    mask = th["k_star_in_regime"].sel(sel).values.astype(bool)
                    span = T[mask].max() / T[mask].min() if mask.any() else 1.0
                    if slope_disagrees(slope, theory, span, resolution):
                        lines.append(
                            f"spectrum {s!r}, noise ratio {fmt(ratio)}, {learner}, tau = {fmt(tau)}: k* slope "
                            f"{slope:.3g} vs theory {theory:.3g} (misses by {abs(slope - theory) * math.log(span):.3g} "
                            f"taps over T = {T[mask].min():.3g}..{T[mask].max():.3g}; tolerance 10% or "
                            f"{resolution:.3g} taps)"
                        )
    return lines


def table(th: xr.Dataset) -> list[str]:
    """Per spectrum and learner: n_u, m, critical k (rank test, empirical per noise ratio,
    theory) and the growth exponent at the largest k beside its theory."""
    lines = [
        "spectrum | learner | n_u | m | critical k: rank test / empirical (per noise ratio) / theory | "
        "growth exponent at largest k: measured (per noise ratio) / theory"
    ]
    k_max = th["k"].values.max()
    k_min = th["k"].values.min()
    for s in th["spectrum"].values:
        n_u = int(th["n_unstable"].sel(spectrum=s))
        m = int(th["max_marginal_block"].sel(spectrum=s))
        for learner in th["learner"].values:
            unit = {"spectrum": s, "learner": learner}
            emp = ", ".join(_k(float(v)) for v in th["critical_k_empirical"].sel(unit).values)
            kk = k_min if learner == "truncated_kalman" else k_max
            g = ", ".join(f"{float(v):.3g}" for v in th["growth_exponent"].sel(unit | {"k": kk}).values)
            gt = float(th["growth_exponent_theory"].sel(unit | {"k": kk}))
            lines.append(
                f"{s} | {learner} | {n_u} | {m} | {_k(float(th['critical_k'].sel(unit)))} / {emp} / "
                f"{_k(float(th['critical_k_theory'].sel(unit)))} | k = {int(kk)}: {g} / {gt:g}"
            )
    return lines


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """One line per (spectrum, learner): how the risk grows and the critical filter length."""
    out = []
    for s in th["spectrum"].values:
        for learner in th["learner"].values:
            unit = {"spectrum": s, "learner": learner}
            ck = float(th["critical_k"].sel(unit))
            g = float(th["growth_exponent"].sel(unit).min("k").max("noise_ratio"))
            if math.isfinite(ck):
                what = f"bounded in T from k = {_k(ck)} taps (theory n_u = {int(th['n_unstable'].sel(spectrum=s))})"
            elif g > EXPONENTIAL_ABOVE:
                what = "grows exponentially in T at every k"
            else:
                theory = float(th["growth_exponent_theory"].sel(unit).min("k"))
                what = f"grows like T^{g:.2g} at every k (theory T^{theory:g})"
            out.append(f"spectrum {s}, {learner}: risk {what}")
    return out
