"""Figures of a hidden cube, each beside its theory.

* ``<wf>_risk_lam<lam>_<learner>``: log10 risk over (T, k), one panel per noise ratio, with
  the measured ``k*`` and (at ``|lam| = 1``) the theory curve ``k*(T)``;
* ``<wf>_kstar_lam<lam>``: ``k*`` against ``T`` for every noise ratio, truncated Kalman beside
  best FIR, with theory lines where the theory predicts ``k*``;
* ``<wf>_pole_slope``: the Kalman pole ``a`` and the slope of ``k*`` in ``ln T`` against the
  noise ratio, theory line and measured points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import plotting as pl
from pipeline.core.types import PARTIAL_ATTR
from pipeline.experiments.base import DrawnFigure
from pipeline.models import hidden as model

if TYPE_CHECKING:
    import xarray as xr


def figures(ds: xr.Dataset, th: xr.Dataset, tau: float) -> list[DrawnFigure]:
    ds = ds.sortby(["k", "T", "noise_ratio"])
    th = th.sortby(["T", "noise_ratio"])
    wf = pl.workflow_stem(str(th.attrs.get("workflow_name") or "cube"))
    partial = ds.attrs.get(PARTIAL_ATTR)
    lam_stems = pl.stems(ds["lam"].values)
    out = []
    with pl.style():
        for lam in ds["lam"].values:
            lam_stem = "lam" + lam_stems[pl.value_text(lam)]
            for learner in ds["learner"].values:
                out.append(
                    _risk_map(
                        ds, th, float(lam), str(learner), tau, pl.join_stem(wf, "risk", lam_stem, str(learner)), partial
                    )
                )
            out.append(_kstar(th, float(lam), tau, pl.join_stem(wf, "kstar", lam_stem), partial))
        out.append(_pole_slope(th, tau, pl.join_stem(wf, "pole_slope"), partial))
    return out


def _risk_map(
    ds: xr.Dataset, th: xr.Dataset, lam: float, learner: str, tau: float, stem: str, partial: str | None
) -> DrawnFigure:
    ratios = ds["noise_ratio"].values
    T = ds["T"].values.astype(np.float64)
    k = ds["k"].values.astype(np.float64)
    data = ds["log10_risk"].sel(lam=lam, learner=learner).transpose("noise_ratio", "k", "T").values
    lo, hi = pl.colour_limits(data)
    rows, cols = pl.grid_shape(len(ratios))
    fig = pl.figure(max(4.0 * cols + 1.2, 6.5), 3.1 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    Te, ke = pl.edges(T, log=True), pl.edges(k, log=False)
    mesh = None
    for i, ratio in enumerate(ratios):
        ax = axes.flat[i]
        mesh = pl.risk_mesh(ax, Te, ke, data[i], lo, hi)
        ax.set_xscale("log")
        measured = th["k_star"].sel(lam=lam, noise_ratio=ratio, learner=learner, tau=tau).values
        ax.step(T, measured, where="mid", color="white", lw=1.6, label=rf"measured $k^*$ ($R_T \leq {tau:g}$)")
        theory = th["k_star_theory"].sel(lam=lam, noise_ratio=ratio, tau=tau).values
        if learner == "truncated_kalman" and np.isfinite(theory).any():
            shown = np.where((theory >= k.min() - 0.5) & (theory <= k.max() + 0.5), theory, np.nan)
            ax.plot(T, shown, color="#ff4d4d", ls="--", lw=1.8, label=r"theory $k^*(T)$")
        a = float(th["a"].sel(lam=lam, noise_ratio=ratio))
        ax.set_title(rf"$r/q = {ratio:.3g}$  ($a = {a:.3f}$)")
        ax.set_ylim(ke[0], ke[-1])
        ax.set_xlim(Te[0], Te[-1])
    pl.label_panel_grid(axes, len(ratios), cols, pl.HORIZON_LABEL, pl.K_LABEL)
    pl.legend_if_any(axes.flat[0], loc="upper left", framealpha=0.85)
    pl.risk_colourbar(fig, mesh, axes, has_zeros=bool(np.isneginf(data).any()))
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: log10 risk of {learner}, lam = {lam:g}", partial)
    fig.suptitle(text)
    marginal = bool(model.is_marginal(lam))
    caption = (
        f"log10 R_T of the {learner} learner over filter length k and horizon T (log axis), one panel "
        f"per noise ratio at lam = {lam:g}; white steps: measured k* (smallest k with R_T ≤ {tau:g})"
        + (
            "; red dashed: theory k*(T) = ln(T/(2 tau)) / (2 ln(1/a)) (docs/theory.md §2.4)"
            if marginal and learner == "truncated_kalman"
            else ""
        )
        + "; black: R_T = 0 exactly (k ≥ T); grey: not computed."
    )
    return DrawnFigure(stem, text, caption, fig)


def kstar_panels(
    th: xr.Dataset,
    select: Mapping[str, Any],
    tau: float,
    theory_curve: Callable[[Any, str, np.ndarray], np.ndarray | None],
    theory_label: str,
) -> tuple[Any, bool]:
    """A figure of ``k*(T; tau)``, one panel per learner and one step line per noise ratio, of
    the thresholds at ``select`` (the system's coordinates); ``theory_curve(ratio, learner,
    k_star)`` gives a dashed theory line over ``T`` (NaN where not drawn) or ``None``.
    Returns the figure and whether any theory line was drawn."""
    from matplotlib.lines import Line2D

    learners = [str(v) for v in th["learner"].values]
    ratios = th["noise_ratio"].values
    T = th["T"].values.astype(np.float64)
    kmax = float(th["k"].max())
    fig = pl.figure(max(5.2 * len(learners) + 1.8, 7.0), 4.2)
    axes = fig.subplots(1, len(learners), squeeze=False, sharey=True)[0]
    colours = pl.sequential_colours(len(ratios))
    theory_drawn = False
    for ax, learner in zip(axes, learners, strict=True):
        for i, (ratio, colour) in enumerate(zip(ratios, colours, strict=True)):
            ks = th["k_star"].sel({**select, "noise_ratio": ratio, "learner": learner, "tau": tau}).values
            # steps that coincide stay visible: the first drawn is the widest, below the others
            width = 3.2 - 2.0 * i / max(len(ratios) - 1, 1)
            ax.step(T, ks, where="mid", color=colour, lw=width, label=f"{ratio:.3g}", zorder=2 + i)
            line = theory_curve(ratio, learner, ks)
            if line is not None:
                ax.plot(T, line, color=colour, ls="--", lw=1.0)
                theory_drawn = True
        ax.set_xscale("log")
        ax.set_xlabel(pl.HORIZON_LABEL)
        ax.set_title(learner.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.set_ylim(0, kmax + 1)
    axes[0].set_ylabel(rf"$k^*$ = smallest $k$ with $R_T \leq {tau:g}$ (taps)")
    handles, labels = axes[0].get_legend_handles_labels()
    if theory_drawn:
        handles.append(Line2D([], [], color="grey", ls="--"))
        labels.append(theory_label)
    fig.legend(handles, labels, title=pl.RATIO_LABEL, loc="outside right center")
    return fig, theory_drawn


def _kstar(th: xr.Dataset, lam: float, tau: float, stem: str, partial: str | None) -> DrawnFigure:
    def theory_curve(ratio: Any, learner: str, ks: np.ndarray) -> np.ndarray | None:
        theory = th["k_star_theory"].sel(lam=lam, noise_ratio=ratio, tau=tau).values
        if learner == "truncated_kalman" and np.isfinite(theory).any():
            return np.where(theory >= 0, theory, np.nan)
        return None

    fig, theory_drawn = kstar_panels(th, {"lam": lam}, tau, theory_curve, "theory (docs/theory.md §2.4)")
    kmax = float(th["k"].max())
    text = pl.title(
        f"{th.attrs.get('workflow_name', '')}: filter length needed for R_T ≤ {tau:g}, lam = {lam:g}", partial
    )
    fig.suptitle(text)
    caption = (
        f"k* (smallest filter length with R_T ≤ {tau:g}) against the horizon T for every noise ratio at "
        f"lam = {lam:g}, truncated Kalman beside best FIR"
        + (": truncation needs k* growing like ln T (dashed: theory), a free FIR does not" if theory_drawn else "")
        + f"; gaps mean no k ≤ {kmax:g} reaches the level."
    )
    return DrawnFigure(stem, text, caption, fig)


def _pole_slope(th: xr.Dataset, tau: float, stem: str, partial: str | None) -> DrawnFigure:
    ratios = th["noise_ratio"].values.astype(np.float64)
    fig = pl.figure(14.0, 4.4)
    ax_a, ax_s = fig.subplots(1, 2)
    colours = pl.sequential_colours(len(th["lam"]))
    for lam, colour in zip(th["lam"].values, colours, strict=True):
        ax_a.plot(ratios, th["a"].sel(lam=lam).values, "o-", color=colour, label=f"lam = {lam:g}")
    ax_a.set_xscale("log")
    ax_a.set_xlabel(pl.RATIO_LABEL)
    ax_a.set_ylabel(r"Kalman predictor pole $a = \lambda - K$")
    ax_a.set_title("pole of the Kalman predictor")
    ax_a.grid(alpha=0.3)
    ax_a.legend()
    fine = np.geomspace(ratios.min(), ratios.max(), 200)
    _, _, a_fine = model.kalman(1.0, fine)
    slope_fine = model.kstar_slope_theory(1.0, a_fine, "truncated_kalman")
    ax_s.plot(fine, slope_fine, "k-", lw=1.4, label=r"theory $1/(2\ln(1/a))$, $\lambda = 1$")
    shown = [float(v) for v in slope_fine]
    markers = {"truncated_kalman": "o", "best_fir": "s"}
    for lam, colour in zip(th["lam"].values, colours, strict=True):
        for learner in th["learner"].values:
            sel = {"lam": lam, "learner": learner, "tau": tau}
            slope = th["k_star_slope"].sel(sel).values
            band = th["k_star_slope_band"].sel(sel).values
            if np.isfinite(slope).any():
                pl.measured_points(
                    ax_s,
                    ratios,
                    slope,
                    band,
                    th["k_star_slope_verdict"].sel(sel).values,
                    colour,
                    marker=markers.get(str(learner), "^"),
                    label=f"measured, {learner}, lam = {lam:g}",
                    ms=6,
                )
                shown += [float(v) for v in slope + np.nan_to_num(band)]
    ax_s.set_xscale("log")
    ax_s.set_ylim(*pl.positive_range(shown))
    ax_s.set_xlabel(pl.RATIO_LABEL)
    ax_s.set_ylabel(r"slope of $k^*$ in $\ln T$ (taps per e-fold of $T$)")
    ax_s.set_title(rf"growth of $k^*$ with $\ln T$ ($\tau = {tau:g}$)")
    ax_s.grid(alpha=0.3)
    handles, labels = ax_s.get_legend_handles_labels()
    extra_h, extra_l = pl.verdict_handles()
    ax_s.legend(
        handles + extra_h, labels + extra_l, fontsize=pl.FONT - 2, loc="center left", bbox_to_anchor=(1.02, 0.5)
    )
    text = pl.title(
        f"{th.attrs.get('workflow_name', '')}: Kalman pole and the slope of k* against the noise ratio", partial
    )
    fig.suptitle(text)
    caption = (
        "Left: the Kalman predictor pole a against the noise ratio (a → 1 as observation noise grows); "
        f"right: the measured slope of k* in ln T (tau = {tau:g}, asymptotic-regime fit) with its agreement "
        "band beside the theory 1/(2 ln(1/a)), which diverges with the noise ratio; best-FIR slopes sit at 0. "
        "Filled: agrees with theory; hollow with a grey band: unresolved (band wider than 25% of the theory "
        "or window shorter than 3 decades); red edge: disagrees."
    )
    return DrawnFigure(stem, text, caption, fig)
