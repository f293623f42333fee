"""Figures of a fitted-filter cube, each beside its theory (MATH §5.4, §6.5). Per system:

* ``<wf>_kopt_<system>``: the bias-variance optimum ``k_opt(T)`` (argmin over the cube's ``k`` of
  the mean learned risk) for every ``m``, beside the truncated Kalman ``k*(T; tau)`` and the line
  ``k_c = n_u``; one panel per noise ratio;
* ``<wf>_risk_<system>``: log10 of the mean learned risk over (``k``, ``T``) at the smallest
  ``m`` of the cube, one panel per noise ratio, with the line ``k_c = n_u``;
* ``<wf>_learning_<system>``: learning curves: the excess over ``best_fir`` against ``m T``
  at the smallest ``k >= n_u`` of the cube, one line per ``m``, beside the theory slope ``-1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import plotting as pl
from pipeline.core.types import PARTIAL_ATTR
from pipeline.experiments.base import DrawnFigure
from pipeline.experiments.hidden_fitted.thresholds import system_axis

if TYPE_CHECKING:
    import xarray as xr


def figures(ds: xr.Dataset, th: xr.Dataset, tau: float | None) -> list[DrawnFigure]:
    """Every figure of a fitted-filter cube (``tau``: the level of the truncated Kalman ``k*``)."""
    sa = system_axis(ds)
    th = th.sortby(["k", "T", "trajectories"])
    tau = float(th["tau"].values[0]) if tau is None else float(tau)
    wf = pl.workflow_stem(str(th.attrs.get("workflow_name") or "cube"))
    name = str(th.attrs.get("workflow_name", ""))
    partial = ds.attrs.get(PARTIAL_ATTR)
    names = pl.stems(th[sa].values) if sa == "spectrum" else pl.number_stems(th[sa].values)
    out = []
    with pl.style():
        for s in th[sa].values:
            stem = names[pl.value_text(s)]
            label = f"spectrum {s}" if sa == "spectrum" else f"lam = {float(s):g}"
            unit = {sa: s}
            out.append(_kopt(th, unit, label, tau, name, pl.join_stem(wf, "kopt", stem), partial))
            out.append(_risk(th, unit, label, name, pl.join_stem(wf, "risk", stem), partial))
            out.append(_learning(th, unit, label, name, pl.join_stem(wf, "learning", stem), partial))
    return out


def _panels(n: int) -> tuple[Any, Any, int]:
    rows, cols = pl.grid_shape(n)
    fig = pl.figure(max(4.0 * cols + 1.2, 6.5), 3.1 * rows + 0.8)
    return fig, fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True), cols


def _kopt(
    th: xr.Dataset, unit: dict[str, Any], label: str, tau: float, name: str, stem: str, partial: str | None
) -> DrawnFigure:
    T = th["T"].values.astype(np.float64)
    ms = th["trajectories"].values
    ratios = th["noise_ratio"].values
    n_u = int(th["n_unstable"].sel(unit))
    fig, axes, cols = _panels(len(ratios))
    colours = pl.sequential_colours(len(ms))
    for i, r in enumerate(ratios):
        ax = axes.flat[i]
        for c, mv in zip(colours, ms, strict=True):
            y = th["k_opt"].sel(unit | {"noise_ratio": r, "trajectories": mv}).values
            ax.plot(T, y, "o-", color=c, ms=3.5, lw=1.2, label=f"k_opt, m = {int(mv)}")
        ks = th["k_star_kalman"].sel(unit | {"noise_ratio": r, "tau": tau}).values
        ax.plot(T, ks, "k--", lw=1.4, label=f"truncated Kalman k*(T; {tau:g})")
        ax.axhline(n_u, color="grey", ls=":", lw=1.4, label=f"k_c = n_u = {n_u}")
        ax.set_xscale("log")
        ax.set_title(f"r/q = {float(r):.3g}")
    pl.label_panel_grid(axes, len(ratios), cols, pl.HORIZON_LABEL, pl.K_LABEL)
    pl.legend_if_any(axes.flat[0], fontsize=pl.FONT - 2)
    text = pl.title(f"{name}: learned optimum k_opt(T), {label}", partial)
    fig.suptitle(text)
    caption = (
        f"The bias-variance optimum k_opt(m, T) = argmin_k of the mean learned risk over the cube's k (one line "
        f"per m, trajectories per training set) against T, {label}, one panel per noise ratio; dashed: the "
        f"truncated Kalman k*(T) for R_T ≤ {tau:g} (exact); dotted: the critical length k_c = n_u below which "
        "the learned risk diverges in T however many trajectories there are."
    )
    return DrawnFigure(stem, text, caption, fig)


def _risk(th: xr.Dataset, unit: dict[str, Any], label: str, name: str, stem: str, partial: str | None) -> DrawnFigure:
    T = th["T"].values.astype(np.float64)
    k = th["k"].values.astype(np.float64)
    ratios = th["noise_ratio"].values
    m0 = th["trajectories"].values.min()
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.log10(th["mean_risk"].sel(unit | {"trajectories": m0}).transpose("noise_ratio", "k", "T").values)
    lo, hi = pl.colour_limits(data)
    fig, axes, cols = _panels(len(ratios))
    Te, ke = pl.edges(T, log=True), pl.edges(k, log=False)
    n_u = int(th["n_unstable"].sel(unit))
    mesh = None
    for i, r in enumerate(ratios):
        ax = axes.flat[i]
        mesh = pl.risk_mesh(ax, Te, ke, data[i], lo, hi)
        ax.set_xscale("log")
        if n_u >= k.min():
            ax.axhline(n_u - 0.5, color="white", ls="--", lw=1.4, label="k_c = n_u")
        ax.set_title(f"r/q = {float(r):.3g}")
        ax.set_ylim(ke[0], ke[-1])
    pl.label_panel_grid(axes, len(ratios), cols, pl.HORIZON_LABEL, pl.K_LABEL)
    pl.legend_if_any(axes.flat[0], loc="upper left", framealpha=0.85, fontsize=pl.FONT - 2)
    pl.risk_colourbar(fig, mesh, axes, has_zeros=bool(np.isneginf(data).any()))
    text = pl.title(f"{name}: log10 mean learned risk at m = {int(m0)}, {label}", partial)
    fig.suptitle(text)
    caption = (
        f"log10 of the mean over fits of the risk R_T of the least-squares FIR filter learned from m = {int(m0)} "
        f"trajectories of length T, over filter length k and T (log axis), {label}, one panel per noise ratio; "
        "white dashed: k_c = n_u; black: R_T = 0 exactly; grey: not computed."
    )
    return DrawnFigure(stem, text, caption, fig)


def _learning(
    th: xr.Dataset, unit: dict[str, Any], label: str, name: str, stem: str, partial: str | None
) -> DrawnFigure:
    T = th["T"].values.astype(np.float64)
    ms = th["trajectories"].values
    ratios = th["noise_ratio"].values
    k = th["k"].values
    n_u = int(th["n_unstable"].sel(unit))
    kk = int(k[k >= max(n_u, 1)].min()) if (k >= max(n_u, 1)).any() else int(k.max())
    rows, cols = pl.grid_shape(len(ratios))
    fig = pl.figure(max(4.0 * cols + 1.2, 6.5), 3.1 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False)  # axes not shared: a panel may have nothing to draw
    colours = pl.sequential_colours(len(ms))
    for i, r in enumerate(ratios):
        ax = axes.flat[i]
        xs, ys = [], []
        for c, mv in zip(colours, ms, strict=True):
            e = th["excess"].sel(unit | {"noise_ratio": r, "trajectories": mv, "k": kk}).values
            x = float(mv) * T
            ok = np.isfinite(e) & (e > 0)
            ax.plot(x[ok], e[ok], "o-", color=c, ms=3.5, lw=1.2, label=f"m = {int(mv)}")
            xs.append(x[ok])
            ys.append(e[ok])
        x_all, y_all = np.concatenate(xs), np.concatenate(ys)
        if x_all.size:
            c0 = float(np.exp(np.median(np.log(y_all * x_all))))
            xl = np.array([x_all.min(), x_all.max()])
            ax.plot(xl, c0 / xl, "k--", lw=1.2, label="slope -1 (theory)")
        if x_all.size:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no computed excess > 0", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"r/q = {float(r):.3g}, k = {kk}")
    pl.label_panel_grid(axes, len(ratios), cols, r"$m T$ (observations)", r"excess $E R_T - R_T^{best}$")
    pl.legend_if_any(axes.flat[0], fontsize=pl.FONT - 2)
    text = pl.title(f"{name}: learning curves in mT, {label}", partial)
    fig.suptitle(text)
    caption = (
        f"The excess of the mean learned risk over the exact best_fir risk at the same T against the number of "
        f"observations m T, at k = {kk} (the smallest k of the cube ≥ n_u = {n_u}), one line per m (along T), "
        f"{label}, one panel per noise ratio; dashed: slope -1 (MATH §6.5) through the median of the points; "
        "points with a non-positive excess (within the sampling noise) are left out."
    )
    return DrawnFigure(stem, text, caption, fig)
