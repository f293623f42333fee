"""Figures of a hidden-spectrum cube, each beside its theory (MATH §5.4).

* ``<wf>_kstar_<spectrum>``: ``k*(T; tau)`` of the truncated Kalman filter against ``T`` for
  every noise ratio, with a theory line of slope ``(2m - 1) / (2 ln(1/rho(F)))`` in ``ln T``
  through the mean of the fitted points (the theory gives the slope, not the offset);
  best FIR beside it;
* ``<wf>_risk_<learner>_r<noise ratio>``: log10 risk over (T, k), one panel per spectrum, one
  figure per learner and noise ratio, with the exact critical ``k`` (rank test) as a line;
* ``<wf>_summary``: measured against predicted critical filter length (best FIR: rank test and
  empirical against ``n_u``) and ``k*`` slope (truncated Kalman) across spectra, each measured
  value drawn by its verdict (filled: agrees; hollow with a grey band: unresolved; red edge:
  disagrees), the slopes with their agreement bands.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import plotting as pl
from pipeline.core import verdicts as vd
from pipeline.core.types import PARTIAL_ATTR
from pipeline.experiments.base import DrawnFigure
from pipeline.experiments.hidden.figures import kstar_panels

if TYPE_CHECKING:
    import xarray as xr


def figures(ds: xr.Dataset, th: xr.Dataset, tau: float) -> list[DrawnFigure]:
    """Every figure of a hidden-spectrum cube (``tau``: the level of ``k*``)."""
    ds = ds.sortby(["k", "T", "noise_ratio"])
    th = th.sortby(["T", "noise_ratio"])
    wf = pl.workflow_stem(str(th.attrs.get("workflow_name") or "cube"))
    partial = ds.attrs.get(PARTIAL_ATTR)
    names = pl.stems(ds["spectrum"].values)
    ratio_stems = pl.number_stems(ds["noise_ratio"].values)
    out = []
    with pl.style():
        for s in ds["spectrum"].values:
            out.append(_kstar(th, str(s), tau, pl.join_stem(wf, "kstar", names[str(s)]), partial))
        for learner in ds["learner"].values:
            for ratio in ds["noise_ratio"].values:
                stem = pl.join_stem(wf, "risk", str(learner), "r" + ratio_stems[pl.value_text(ratio)])
                out.append(
                    _risk_map(ds, str(th.attrs.get("workflow_name", "")), str(learner), float(ratio), stem, partial)
                )
        out.append(_summary(th, tau, pl.join_stem(wf, "summary"), partial))
    return out


def _theory_line(T: np.ndarray, ks: np.ndarray, mask: np.ndarray, slope: float) -> np.ndarray | None:
    if not (math.isfinite(slope) and mask.any()):
        return None
    lnT = np.log(T)
    offset = float(np.mean(ks[mask] - slope * lnT[mask]))
    return slope * lnT + offset


def _kstar(th: xr.Dataset, spectrum: str, tau: float, stem: str, partial: str | None) -> DrawnFigure:
    T = th["T"].values.astype(np.float64)
    kmax = float(th["k"].max())

    def theory_curve(ratio: Any, learner: str, ks: np.ndarray) -> np.ndarray | None:
        if learner != "truncated_kalman":
            return None
        sel = {"spectrum": spectrum, "noise_ratio": ratio, "learner": learner}
        mask = th["k_star_in_regime"].sel({**sel, "tau": tau}).values.astype(bool)
        line = _theory_line(T, ks, mask, float(th["k_star_slope_theory"].sel(sel)))
        return None if line is None else np.where((line >= 0) & (line <= kmax + 1), line, np.nan)

    fig, _ = kstar_panels(th, {"spectrum": spectrum}, tau, theory_curve, "theory slope (2m-1)/(2 ln(1/rho(F)))")
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: k* for R_T ≤ {tau:g}, spectrum {spectrum}", partial)
    fig.suptitle(text)
    caption = (
        f"k* (smallest filter length with R_T ≤ {tau:g}) against T for every noise ratio, spectrum {spectrum}; "
        "dashed: a line of the theory slope (2m-1)/(2 ln(1/rho(F))) in ln T through the mean of the "
        f"asymptotic-regime points (the theory fixes the slope only); gaps: no k ≤ {kmax:g} reaches the level."
    )
    return DrawnFigure(stem, text, caption, fig)


def _risk_map(ds: xr.Dataset, name: str, learner: str, ratio: float, stem: str, partial: str | None) -> DrawnFigure:
    spectra = [str(s) for s in ds["spectrum"].values]
    T = ds["T"].values.astype(np.float64)
    k = ds["k"].values.astype(np.float64)
    data = ds["log10_risk"].sel(noise_ratio=ratio, learner=learner).transpose("spectrum", "k", "T").values
    lo, hi = pl.colour_limits(data)
    rows, cols = pl.grid_shape(len(spectra))
    fig = pl.figure(max(4.0 * cols + 1.2, 6.5), 3.1 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    Te, ke = pl.edges(T, log=True), pl.edges(k, log=False)
    mesh = None
    for i, s in enumerate(spectra):
        ax = axes.flat[i]
        mesh = pl.risk_mesh(ax, Te, ke, data[i], lo, hi)
        ax.set_xscale("log")
        ck = float(ds["critical_k"].sel(spectrum=s, learner=learner))
        if math.isfinite(ck) and ck <= k.max():
            ax.axhline(ck - 0.5, color="white", ls="--", lw=1.4, label="critical k (rank test)")
        ax.set_title(f"{s}  (n_u = {int(ds['n_unstable'].sel(spectrum=s))})")
        ax.set_ylim(ke[0], ke[-1])
    pl.label_panel_grid(axes, len(spectra), cols, pl.HORIZON_LABEL, pl.K_LABEL)
    pl.legend_if_any(axes.flat[0], loc="upper left", framealpha=0.85, fontsize=pl.FONT - 2)
    pl.risk_colourbar(fig, mesh, axes, has_zeros=bool(np.isneginf(data).any()))
    text = pl.title(f"{name}: log10 risk of {learner} at r/q = {ratio:.3g}", partial)
    fig.suptitle(text)
    caption = (
        f"log10 R_T of {learner} over filter length k and horizon T (log axis), one panel per spectrum at "
        f"noise ratio {ratio:.3g} (one such figure per noise ratio of the cube); white dashed: the exact "
        "critical k (rank test, MATH §5.4) where bounded; black: R_T = 0 exactly (k ≥ T); grey: not computed."
    )
    return DrawnFigure(stem, text, caption, fig)


def _left_out(spectra: list[str], theory: np.ndarray, meas: np.ndarray) -> list[str]:
    """One line per spectrum the slope panel cannot draw, saying why."""
    out = []
    for i, s in enumerate(spectra):
        if np.isinf(theory[i]).all():
            out.append(f"not drawn: {s} (rho(A) > 1: k* linear in T, slope in ln T +inf)")
        elif not (np.isfinite(theory[i]) & np.isfinite(meas[i])).any():
            out.append(f"not drawn: {s} (no k* fit in the cube)")
    return out


def _critical_panel(ax: Any, th: xr.Dataset, spectra: list[str]) -> None:
    """Best FIR critical filter length per spectrum: theory n_u, rank test and empirical (by verdict;
    a value censored at the cube's smallest k drawn as a downward triangle: "at most")."""
    x = np.arange(len(spectra))
    sel = {"learner": "best_fir"}
    rank = th["critical_k"].sel(sel).values
    ax.plot(x, th["critical_k_theory"].sel(sel).values, "k_", ms=22, mew=2, label="theory n_u")
    ax.plot(x, rank, "o", color="C0", ms=8, label="rank test (exact)")
    emp = th["critical_k_empirical"].sel(sel).transpose("spectrum", "noise_ratio").values
    verdict = vd.as_text(th["critical_k_empirical_verdict"].sel(sel).transpose("spectrum", "noise_ratio").values)
    k_min = float(th["k"].min())
    censored = (emp == k_min) & (rank[:, None] < k_min)
    for j in range(emp.shape[1]):
        label = "empirical, per noise ratio" if j == 0 else None
        plain = np.where(censored[:, j], np.nan, emp[:, j])
        pl.measured_points(ax, x + 0.18, plain, None, verdict[:, j], "C1", marker="s", label=label, ms=6)
        cut = np.where(censored[:, j], emp[:, j], np.nan)
        cut_label = f"empirical ≤ {k_min:g} (censored at the cube's smallest k)" if j == 0 else None
        pl.measured_points(ax, x + 0.18, cut, None, verdict[:, j], "C1", marker="v", label=cut_label, ms=7)
    ax.set_xticks(x, spectra, rotation=35, ha="right")
    ax.set_ylabel("critical filter length (taps)")
    ax.set_title("best FIR: smallest bounded k against n_u")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=pl.FONT - 2)


def _slope_panel(ax: Any, th: xr.Dataset, spectra: list[str], tau: float) -> None:
    """Truncated Kalman k* slope against theory, every noise ratio, with agreement bands."""
    sel = {"learner": "truncated_kalman", "tau": tau}
    dims = ("spectrum", "noise_ratio")
    theory = th["k_star_slope_theory"].sel(learner="truncated_kalman").transpose(*dims).values
    meas = th["k_star_slope"].sel(sel).transpose(*dims).values
    band = th["k_star_slope_band"].sel(sel).transpose(*dims).values
    verdict = vd.as_text(th["k_star_slope_verdict"].sel(sel).transpose(*dims).values)
    colours = pl.categorical_colours(len(spectra))
    shown: list[float] = []
    for i, s in enumerate(spectra):
        ok = np.isfinite(theory[i]) & np.isfinite(meas[i])
        if ok.any():
            pl.measured_points(ax, theory[i][ok], meas[i][ok], band[i][ok], verdict[i][ok], colours[i], label=s)
            shown += [float(v) for v in theory[i][ok]] + [float(v) for v in meas[i][ok]]
    top = max(shown, default=1.0) * 1.08
    ax.plot([0, top], [0, top], "k--", lw=1, label="measured = theory")
    left_out = _left_out(spectra, theory, meas)
    if left_out:
        ax.text(0.98, 0.02, "\n".join(left_out), transform=ax.transAxes, ha="right", va="bottom", fontsize=pl.FONT - 2)
    counted = vd.counts_text(vd.counts_of(verdict[np.isfinite(theory)]))
    ax.set_xlabel(r"theory slope $(2m-1)/(2\ln(1/\rho(F)))$")
    ax.set_ylabel(rf"measured slope of $k^*$ in $\ln T$ ($\tau = {tau:g}$)")
    ax.set_title(f"truncated Kalman: k* slope per noise ratio ({counted})", fontsize=pl.FONT)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    extra_h, extra_l = pl.verdict_handles()
    ax.legend(handles + extra_h, labels + extra_l, fontsize=pl.FONT - 2, loc="upper left")


def _summary(th: xr.Dataset, tau: float, stem: str, partial: str | None) -> DrawnFigure:
    spectra = [str(s) for s in th["spectrum"].values]
    learners = [str(v) for v in th["learner"].values]
    panels = [p for p, lr in (("critical", "best_fir"), ("slope", "truncated_kalman")) if lr in learners]
    fig = pl.figure(6.2 * len(panels) + 0.6, 5.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "critical":
            _critical_panel(ax, th, spectra)
        else:
            _slope_panel(ax, th, spectra, tau)
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: measured against theory across spectra", partial)
    fig.suptitle(text)
    parts = []
    if "critical" in panels:
        parts.append(
            "critical filter length of the best FIR per spectrum: theory n_u (bars), the exact rank test "
            "(dots) and the empirical value (smallest k from which the growth exponent at the largest "
            "horizons is near 0; squares, one per noise ratio; a downward triangle where it is censored at "
            "the cube's smallest k, which cannot tell a critical length below it)"
        )
    if "slope" in panels:
        parts.append(
            f"measured slope of k* in ln T of the truncated Kalman filter (tau = {tau:g}) against the theory "
            "(2m-1)/(2 ln(1/rho(F))), one point per spectrum and noise ratio, with bars of the agreement band "
            "(10% of the theory, or the resolution of the k* staircase over the fitted window: "
            "docs/theory.md §4, §5); spectra with rho(A) > 1 (slope +inf) or no fit are left out"
        )
    caption = (
        "; ".join(p[0].upper() + p[1:] for p in parts)
        + ". Filled: agrees with theory; hollow with a grey bar: unresolved (band wider than 25% of the "
        "theory, window shorter than 3 decades, or censored); red edge: disagrees."
    )
    return DrawnFigure(stem, text, caption, fig)
