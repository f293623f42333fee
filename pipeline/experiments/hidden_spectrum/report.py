"""Text of a hidden-spectrum cube's thresholds: the table, the disagreements with theory, the summary.

Every comparison carries its verdict (``pipeline.core.verdicts``), computed with the thresholds:
a growth exponent agrees with a finite theory within ``growth_tol`` and with ``+inf``
(exponential growth) above ``EXPONENTIAL_ABOVE``, once settled; the empirical critical ``k``
with the rank test when the growth readings that decide it are settled; the rank test with
``n_u`` when equal; the ``k*`` slope within its band (``SLOPE_BAND_RULE`` of the scalar
experiment, widened by the closed-loop period ``P``: where the dominant closed-loop modes
oscillate, ``k*(T)`` is a staircase that strays from its ``ln T`` asymptote, docs/theory.md §5).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import verdicts as vd
from pipeline.core.measure import known
from pipeline.core.wording import fmt
from pipeline.experiments.hidden.report import UNKNOWN_CELL, _growth_cell
from pipeline.experiments.hidden.thresholds import EXPONENTIAL_ABOVE

if TYPE_CHECKING:
    import xarray as xr


def _k(v: float, k_max: float | None = None) -> str:
    """A critical filter length: ``never`` for ``+inf``; NaN (none in the cube) as ``>k_max``."""
    if math.isinf(v):
        return "never"
    if math.isnan(v):
        return f">{k_max:g}" if k_max is not None else "none"
    return str(int(v))


def _verdict(th: xr.Dataset, name: str, **sel: object) -> str:
    return str(th[f"{name}_verdict"].sel(sel).values)


def _summarised(values: np.ndarray) -> str:
    """Verdicts over some elements in a few words (``agrees``; ``60 agree, 4 unresolved``)."""
    return _growth_cell(values)


def _disagreeing(th: xr.Dataset, name: str) -> list[dict[str, Any]]:
    """The coordinates of every element of the verdict variable ``name`` that disagrees."""
    verdict = th[f"{name}_verdict"]
    hits = np.argwhere(vd.as_text(verdict.values) == vd.DISAGREES)
    return [{str(d): th[d].values[i] for d, i in zip(verdict.dims, at, strict=True)} for at in hits]


def disagreements(th: xr.Dataset) -> list[str]:
    """One line per growth exponent, critical k or k* slope whose verdict is ``disagrees``."""
    lines = []
    T = th["T"].values.astype(np.float64)

    def where(sel: dict[str, Any]) -> str:
        ratio = f", noise ratio {fmt(float(sel['noise_ratio']))}" if "noise_ratio" in sel else ""
        return f"spectrum {str(sel['spectrum'])!r}{ratio}, {sel['learner']}"

    for sel in _disagreeing(th, "critical_k"):
        lines.append(
            f"{where(sel)}: critical k (rank test) {_k(float(th['critical_k'].sel(sel)))} "
            f"vs theory {_k(float(th['critical_k_theory'].sel(sel)))}"
        )
    for sel in _disagreeing(th, "critical_k_empirical"):
        rank = float(th["critical_k"].sel(spectrum=sel["spectrum"], learner=sel["learner"]))
        lines.append(
            f"{where(sel)}: empirical critical k {_k(float(th['critical_k_empirical'].sel(sel)))} "
            f"vs rank test {_k(rank)}"
        )
    for sel in _disagreeing(th, "growth_exponent"):
        gt = float(th["growth_exponent_theory"].sel({d: sel[d] for d in ("spectrum", "learner", "k")}))
        lines.append(
            f"{where(sel)}, k = {int(sel['k'])}: growth exponent {float(th['growth_exponent'].sel(sel)):.3g} "
            f"vs theory {gt:g} (tolerance {float(th.attrs['growth_tol']):g})"
        )
    for sel in _disagreeing(th, "k_star_slope"):
        theory = float(th["k_star_slope_theory"].sel({d: sel[d] for d in ("spectrum", "noise_ratio", "learner")}))
        mask = th["k_star_in_regime"].sel(sel).values.astype(bool)
        lines.append(
            f"{where(sel)}, tau = {fmt(float(sel['tau']))}: k* slope {float(th['k_star_slope'].sel(sel)):.3g} "
            f"vs theory {theory:.3g} (band ±{float(th['k_star_slope_band'].sel(sel)):.3g} over "
            f"T = {T[mask].min():.3g}..{T[mask].max():.3g})"
        )
    return lines


def _critical_cells(th: xr.Dataset, unit: dict[str, object]) -> tuple[str, str]:
    """The empirical critical k per noise ratio (``≤k`` where censored at the cube's smallest k,
    ``?`` where unknown) and their verdicts."""
    k_min, k_max = float(th["k"].min()), float(th["k"].max())
    rank = float(th["critical_k"].sel(unit))
    shown = []
    for ratio in th["noise_ratio"].values:
        sel = unit | {"noise_ratio": ratio}
        value = float(th["critical_k_empirical"].sel(sel))
        if not known(th, "critical_k_empirical", **sel):
            shown.append(UNKNOWN_CELL)
        elif value == k_min and rank < k_min:
            shown.append(f"≤{value:g}")
        else:
            shown.append(_k(value, k_max))
    verdict = _summarised(th["critical_k_empirical_verdict"].sel(unit).values)
    return ", ".join(shown), verdict


def table(th: xr.Dataset) -> list[str]:
    """Per spectrum and learner: n_u, m, critical k (rank test, empirical per noise ratio,
    theory) and the growth exponent at the largest k beside its theory, each with its verdict;
    then the truncated Kalman k* slopes per spectrum and noise ratio."""
    lines = [
        "critical k: rank test / empirical per noise ratio (≤: censored at the cube's smallest k; >: no k of "
        "the cube) / theory; growth exponent at the smallest (truncated_kalman) or largest (best_fir) k per "
        "noise ratio / theory; verdicts: rank test vs theory, empirical vs rank test, growth over every k",
        "spectrum | learner | n_u | m | critical k | verdicts | growth exponent | verdict",
    ]
    k_max = th["k"].values.max()
    k_min = th["k"].values.min()
    for s in th["spectrum"].values:
        n_u = int(th["n_unstable"].sel(spectrum=s))
        m = int(th["max_marginal_block"].sel(spectrum=s))
        for learner in th["learner"].values:
            unit = {"spectrum": s, "learner": learner}
            emp, emp_verdict = _critical_cells(th, unit)
            if learner != "best_fir":
                emp_verdict = "n/a"
            kk = k_min if learner == "truncated_kalman" else k_max
            g_known = known(th, "growth_exponent", **unit, k=kk)
            g = ", ".join(
                f"{float(v):.3g}" if g_known else UNKNOWN_CELL
                for v in th["growth_exponent"].sel(unit | {"k": kk}).values
            )
            gt = float(th["growth_exponent_theory"].sel(unit | {"k": kk}))
            lines.append(
                f"{s} | {learner} | {n_u} | {m} | {_k(float(th['critical_k'].sel(unit)))} / {emp} / "
                f"{_k(float(th['critical_k_theory'].sel(unit)))} | {_verdict(th, 'critical_k', **unit)}, "
                f"{emp_verdict} | k = {int(kk)}: {g} / {gt:g} | "
                f"{_summarised(th['growth_exponent_verdict'].sel(unit).values)}"
            )
    if "truncated_kalman" in th["learner"].values:
        lines += ["", *_slope_table(th)]
    return lines


def _slope_table(th: xr.Dataset) -> list[str]:
    """The truncated Kalman k* slopes: measured ± band, verdict, per tau, beside the theory."""
    taus = [float(t) for t in th["tau"].values]
    lines = [
        "truncated Kalman k* slope in ln T per tau: measured ± agreement band and verdict, beside the theory "
        "(2m - 1)/(2 ln(1/rho(F))) and the closed-loop period P (band rule: dataset attribute slope_band_rule)",
        f"{'spectrum':<14}{'noise':>8} {'P':>5} {'theory':>7} | "
        + " | ".join(f"{'tau=' + format(t, 'g'):<24}" for t in taus),
    ]
    for s in th["spectrum"].values:
        for ratio in th["noise_ratio"].values:
            cell = {"spectrum": s, "noise_ratio": ratio, "learner": "truncated_kalman"}
            theory = float(th["k_star_slope_theory"].sel(cell))
            period = float(th["closed_loop_period"].sel(spectrum=s, noise_ratio=ratio))
            cells = []
            for tau in taus:
                sel = cell | {"tau": tau}
                verdict = _verdict(th, "k_star_slope", **sel)
                if verdict == vd.UNKNOWN:
                    cells.append(vd.UNKNOWN_TEXT)
                    continue
                slope, band = float(th["k_star_slope"].sel(sel)), float(th["k_star_slope_band"].sel(sel))
                shown = fmt(slope, ".3g") + (f"±{band:.2g}" if math.isfinite(band) else "")
                cells.append(f"{shown} {verdict or 'n/a'}")
            lines.append(
                f"{s!s:<14}{fmt(float(ratio)):>8} {period:5.1f} {fmt(theory, '.3g'):>7} | "
                + " | ".join(f"{c:<24}" for c in cells)
            )
    return lines


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """One line per (spectrum, learner): how the risk grows, the critical filter length and how
    they stand against theory; a spectrum with no computed cell says "not known yet"."""
    out = []
    for s in th["spectrum"].values:
        for learner in th["learner"].values:
            unit = {"spectrum": s, "learner": learner}
            head = f"spectrum {s}, {learner}: "
            if not known(th, "growth_exponent", **unit):
                out.append(head + f"{vd.UNKNOWN_TEXT} (unfinished blocks)")
                continue
            ck = float(th["critical_k"].sel(unit))
            g = float(th["growth_exponent"].sel(unit).min("k").max("noise_ratio"))
            growth = _summarised(th["growth_exponent_verdict"].sel(unit).values)
            if math.isfinite(ck):
                emp = _summarised(th["critical_k_empirical_verdict"].sel(unit).values) if learner == "best_fir" else ""
                what = (
                    f"bounded in T from k = {_k(ck)} taps (rank test; theory n_u = "
                    f"{int(th['n_unstable'].sel(spectrum=s))}: {_verdict(th, 'critical_k', **unit)}"
                    + (f"; growth readings: {emp}" if emp else "")
                    + ")"
                )
            elif g > EXPONENTIAL_ABOVE:
                what = f"grows exponentially in T at every k (theory: {growth})"
            else:
                theory = float(th["growth_exponent_theory"].sel(unit).min("k"))
                what = f"grows like T^{g:.2g} at every k (theory T^{theory:g}: {growth})"
            line = head + f"risk {what}"
            if learner == "truncated_kalman":
                slopes = vd.counts(th.sel(unit), ["k_star_slope_verdict"])
                if sum(slopes.values()):
                    line += f"; k* slope against theory: {vd.counts_text(slopes)}"
            out.append(line)
    return out
