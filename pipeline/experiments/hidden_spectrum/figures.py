"""Figures of a hidden-spectrum cube, each beside its theory (MATH §5.4).

* ``<wf>_kstar_<spectrum>``: ``k*(T; tau)`` of the truncated Kalman filter against ``T`` for
  every noise ratio, with a theory line of slope ``(2m - 1) / (2 ln(1/rho(F)))`` in ``ln T``
  through the mean of the fitted points (the theory gives the slope, not the offset);
  best FIR beside it;
* ``<wf>_risk_<learner>``: log10 risk over (T, k), one panel per spectrum at the noise ratio
  of the cube closest to 1, with the exact critical ``k`` (rank test) as a line;
* ``<wf>_summary``: measured against predicted critical filter length (best FIR: rank test and
  empirical against ``n_u``) and ``k*`` slope (truncated Kalman) across spectra.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import plotting as pl
from pipeline.core.types import PARTIAL_ATTR
from pipeline.experiments.base import DrawnFigure
from pipeline.experiments.hidden.figures import kstar_panels
from pipeline.experiments.hidden.report import STEP_TAPS, slope_band

if TYPE_CHECKING:
    import xarray as xr


def figures(ds: xr.Dataset, th: xr.Dataset, tau: float) -> list[DrawnFigure]:
    """Every figure of a hidden-spectrum cube (``tau``: the level of ``k*``)."""
    ds = ds.sortby(["k", "T", "noise_ratio"])
    th = th.sortby(["T", "noise_ratio"])
    wf = pl.workflow_stem(str(th.attrs.get("workflow_name") or "cube"))
    partial = ds.attrs.get(PARTIAL_ATTR)
    names = pl.stems(ds["spectrum"].values)
    out = []
    with pl.style():
        for s in ds["spectrum"].values:
            out.append(_kstar(th, str(s), tau, pl.join_stem(wf, "kstar", names[str(s)]), partial))
        for learner in ds["learner"].values:
            out.append(_risk_map(ds, th, str(learner), pl.join_stem(wf, "risk", str(learner)), partial))
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


def _risk_map(ds: xr.Dataset, th: xr.Dataset, learner: str, stem: str, partial: str | None) -> DrawnFigure:
    spectra = [str(s) for s in ds["spectrum"].values]
    ratios = ds["noise_ratio"].values.astype(np.float64)
    ratio = float(ratios[np.argmin(np.abs(np.log(ratios)))])
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
    pl.risk_colourbar(fig, mesh, axes, has_zeros=bool(np.isneginf(data).any()))
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: log10 risk of {learner} at r/q = {ratio:g}", partial)
    fig.suptitle(text)
    caption = (
        f"log10 R_T of {learner} over filter length k and horizon T (log axis), one panel per spectrum at "
        f"noise ratio {ratio:g}; white dashed: the exact critical k (rank test, MATH §5.4) where bounded; "
        "black: R_T = 0 exactly (k ≥ T)."
    )
    return DrawnFigure(stem, text, caption, fig)


def _agreement_band(th: xr.Dataset, tau: float, theory: np.ndarray) -> np.ndarray:
    """:func:`slope_band` per (spectrum, noise_ratio) with the thresholds' resolution
    ``1.5 + closed_loop_period`` over each fit's window (NaN where nothing was fitted)."""
    T = th["T"].values.astype(np.float64)
    mask = th["k_star_in_regime"].sel(learner="truncated_kalman", tau=tau).transpose("spectrum", "noise_ratio", "T")
    period = th["closed_loop_period"].transpose("spectrum", "noise_ratio").values
    band = np.full(theory.shape, np.nan)
    for i, j in np.ndindex(*band.shape):
        used = mask.values[i, j].astype(bool)
        if used.any():
            band[i, j] = slope_band(float(theory[i, j]), T[used].max() / T[used].min(), STEP_TAPS + float(period[i, j]))
    return band


def _left_out(spectra: list[str], theory: np.ndarray, meas: np.ndarray) -> list[str]:
    """One line per spectrum the slope panel cannot draw, saying why."""
    out = []
    for i, s in enumerate(spectra):
        if np.isinf(theory[i]).all():
            out.append(f"not drawn: {s} (rho(A) > 1: k* linear in T, slope in ln T +inf)")
        elif not (np.isfinite(theory[i]) & np.isfinite(meas[i])).any():
            out.append(f"not drawn: {s} (no k* fit in the cube)")
    return out


def _summary(th: xr.Dataset, tau: float, stem: str, partial: str | None) -> DrawnFigure:
    spectra = [str(s) for s in th["spectrum"].values]
    x = np.arange(len(spectra))
    fig = pl.figure(12.0, 4.6)
    ax_c, ax_s = fig.subplots(1, 2)
    if "best_fir" in th["learner"].values:
        sel = {"learner": "best_fir"}
        ax_c.plot(x, th["critical_k_theory"].sel(sel).values, "k_", ms=22, mew=2, label="theory n_u")
        ax_c.plot(x, th["critical_k"].sel(sel).values, "o", color="C0", ms=8, label="rank test")
        emp = th["critical_k_empirical"].sel(sel).transpose("spectrum", "noise_ratio").values
        for j in range(emp.shape[1]):
            ax_c.plot(x + 0.15, emp[:, j], "s", mfc="none", color="C1", ms=6, label="empirical" if j == 0 else None)
    ax_c.set_xticks(x, spectra, rotation=35, ha="right")
    ax_c.set_ylabel("critical filter length (taps)")
    ax_c.set_title("best FIR: smallest bounded k against n_u")
    ax_c.grid(alpha=0.3)
    ax_c.legend()
    shown: list[float] = []
    if "truncated_kalman" in th["learner"].values:
        sel2 = {"learner": "truncated_kalman", "tau": tau}
        theory = th["k_star_slope_theory"].sel(learner="truncated_kalman").transpose("spectrum", "noise_ratio").values
        meas = th["k_star_slope"].sel(sel2).transpose("spectrum", "noise_ratio").values
        band = _agreement_band(th, tau, theory)
        colours = pl.sequential_colours(len(spectra), "tab10")
        for i, s in enumerate(spectra):
            ok = np.isfinite(theory[i]) & np.isfinite(meas[i])
            if ok.any():
                ax_s.errorbar(
                    theory[i][ok], meas[i][ok], yerr=band[i][ok], fmt="o", color=colours[i], capsize=3, label=s
                )
                shown += [float(v) for v in theory[i][ok]] + [float(v) for v in meas[i][ok]]
        top = max(shown, default=1.0) * 1.08
        ax_s.plot([0, top], [0, top], "k--", lw=1, label="measured = theory")
        left_out = _left_out(spectra, theory, meas)
        if left_out:
            ax_s.text(
                0.98, 0.02, "\n".join(left_out), transform=ax_s.transAxes, ha="right", va="bottom", fontsize=pl.FONT - 2
            )
    ax_s.set_xlabel(r"theory slope $(2m-1)/(2\ln(1/\rho(F)))$")
    ax_s.set_ylabel(rf"measured slope of $k^*$ in $\ln T$ ($\tau = {tau:g}$)")
    ax_s.set_title("truncated Kalman: k* slope, one point per noise ratio")
    ax_s.grid(alpha=0.3)
    ax_s.legend(fontsize=pl.FONT - 2)
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: measured against theory across spectra", partial)
    fig.suptitle(text)
    caption = (
        "Left: critical filter length of the best FIR per spectrum: theory n_u (bars), the exact rank test "
        "(dots) and the empirical value (smallest k from which the growth exponent at the largest horizons "
        "is near 0, censored at the cube's smallest k; squares, one per noise ratio). Right: measured "
        "slope of k* in ln T of the truncated "
        f"Kalman filter (tau = {tau:g}) against the theory (2m-1)/(2 ln(1/rho(F))), with bars of the "
        "agreement band (10% of the theory or 1.5 + P taps over the fitted window, P the closed-loop "
        "period; docs/theory.md §5); spectra with rho(A) > 1 (slope +inf) or no fit are left out."
    )
    return DrawnFigure(stem, text, caption, fig)
