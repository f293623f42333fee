"""Figures of a fitted observed cube, each beside its theory (docs/theory.md §6).

* ``<wf>_risk_<learner>_m<m>`` (the paper's Figure 1 for ``leading`` on ``d = k^2``):
  ``log(1 + risk)`` against ``k = sqrt(d)`` (or ``d``), one line per ``T``: the learned mean
  over fits with standard-error bars and the exact best-in-class line ``log(1 + bias)``,
  one panel per spectrum (and adversary family);
* ``<wf>_learning_<learner>``: learning curves, the mean risk against ``m T`` at the
  learner's largest ``d`` on the grid, one panel per spectrum, the bias floor per ``T`` and
  the line ``bias + d / (m T)``;
* ``<wf>_excess_<learner>``: the normalised excess ``(m T / d) (mean risk - bias)`` against
  ``m`` at the largest ``T``, one line per spectrum, beside the stable-system limit 1.

The first adversary draw is drawn (``nominal = "perturbed"``: one panel per family).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import plotting as pl
from pipeline.core.types import PARTIAL_ATTR
from pipeline.experiments.base import DrawnFigure

if TYPE_CHECKING:
    import xarray as xr

RISK_1P = r"$\log(1 + R_T)$"


def _panels(ds: xr.Dataset) -> list[dict[str, Any]]:
    return [
        {"spectrum": str(s), "family": str(f), "draw": int(ds["draw"].values[0])}
        for s in ds["spectrum"].values
        for f in ds["family"].values
    ]


def _panel_title(sel: dict[str, Any]) -> str:
    return sel["spectrum"] if sel["family"] == "none" else f"{sel['spectrum']}, adversary {sel['family']}"


def _k_axis(d: np.ndarray) -> tuple[np.ndarray, str, bool]:
    """``k = sqrt(d)`` when every ``d`` is a square ``k^2`` (``d > 0``), else ``d``."""
    k = np.rint(np.sqrt(d.astype(float)))
    if d.size and np.all(d > 0) and np.array_equal(k * k, d.astype(float)):
        return k, r"block size $k$ (learner $d = k^2$)", True
    return d.astype(float), r"learner parameters $d$", False


def figures(ds: xr.Dataset, th: xr.Dataset) -> list[DrawnFigure]:
    """Every figure of a fitted observed cube (see the module docstring)."""
    ds = ds.sortby(["d", "T", "trajectories"])
    wf = pl.workflow_stem(str(th.attrs.get("workflow_name") or "cube"))
    partial = ds.attrs.get(PARTIAL_ATTR)
    learner_stems = pl.stems(ds["learner_family"].values)
    out = []
    with pl.style():
        for lf in ds["learner_family"].values:
            lstem = learner_stems[str(lf)]
            for m in ds["trajectories"].values:
                stem = pl.join_stem(wf, "risk", lstem, f"m{int(m)}")
                out.append(_figure1(ds, str(lf), int(m), stem, partial))
            out.append(_learning(ds, th, str(lf), pl.join_stem(wf, "learning", lstem), partial))
            out.append(_excess(ds, th, str(lf), pl.join_stem(wf, "excess", lstem), partial))
    return out


def _figure1(ds: xr.Dataset, learner: str, m: int, stem: str, partial: str | None) -> DrawnFigure:
    panels = _panels(ds)
    rows, cols = pl.grid_shape(len(panels), max_cols=2)
    fig = pl.figure(4.6 * cols + 0.8, 3.8 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=False)).ravel()
    Ts = ds["T"].values
    colours = pl.sequential_colours(len(Ts), "viridis")
    x, xlabel, _ = _k_axis(ds["d"].values)
    for ax, sel in zip(axes, panels, strict=False):
        cell = ds.sel(sel | {"learner_family": learner})
        risk = cell["risk"].sel(trajectories=m).transpose("d", "T", "fit").values
        with np.errstate(invalid="ignore", over="ignore"):
            lr = np.log1p(risk)
        n = risk.shape[-1]
        mean = lr.mean(axis=-1)  # NaN where d > learner_dim or not computed yet
        se = lr.std(axis=-1, ddof=1) / math.sqrt(n) if n > 1 else np.zeros_like(mean)
        exact = np.log1p(cell["bias"].transpose("d", "T").values)
        for t, (T, colour) in enumerate(zip(Ts, colours, strict=True)):
            ax.errorbar(x, mean[:, t], yerr=se[:, t], color=colour, marker="o", ms=4, ls="none", capsize=2)
            ax.plot(x, exact[:, t], color=colour, lw=1.2, label=f"T = {int(T)}")
        ax.set_title(_panel_title(sel))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(RISK_1P)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].errorbar([], [], yerr=[], color="black", marker="o", ms=4, ls="none", label="learned: mean +- s.e.")
    axes[0].plot([], [], color="black", lw=1.2, label="exact best in class")
    pl.legend_if_any(axes[0], loc="best", fontsize=pl.FONT - 3)
    text = pl.title(f"least squares, {learner} learner, m = {m} trajectories per fit", partial)
    fig.suptitle(text)
    caption = (
        f"log(1 + R_T) of the least-squares {learner} learner fitted to m = {m} trajectories of length T "
        f"(points: mean over {ds.sizes['fit']} independent fits, bars one standard error) against the learner's "
        "size, one colour per horizon T; lines: the exact best-in-class risk (the m -> infinity limit, "
        "docs/theory.md §6). Below the critical size the risk grows with T however much data there is; "
        "from it on the risk is small and flat."
    )
    return DrawnFigure(stem, text, caption, fig)


def _largest_d(ds: xr.Dataset, learner: str, spectrum: str) -> int | None:
    D = int(ds["learner_dim"].sel(spectrum=spectrum, learner_family=learner))
    ds_ = [int(d) for d in ds["d"].values if 0 < int(d) <= D]
    return max(ds_) if ds_ else None


def _learning(ds: xr.Dataset, th: xr.Dataset, learner: str, stem: str, partial: str | None) -> DrawnFigure:
    panels = _panels(ds)
    rows, cols = pl.grid_shape(len(panels), max_cols=3)
    fig = pl.figure(4.3 * cols + 0.8, 3.7 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    Ts = ds["T"].values
    ms = ds["trajectories"].values.astype(float)
    colours = pl.sequential_colours(len(Ts), "viridis")
    for ax, sel in zip(axes, panels, strict=False):
        d = _largest_d(ds, learner, sel["spectrum"])
        ax.set_title(_panel_title(sel) + ("" if d is None else f", d = {d}"))
        ax.set_xlabel(r"data $m T$ (steps)")
        ax.set_ylabel(r"mean risk $R_T$")
        if d is None:
            continue
        at = sel | {"learner_family": learner, "d": d}
        mean = th["mean_risk"].sel(at).transpose("T", "trajectories").values
        se = th["risk_stderr"].sel(at).transpose("T", "trajectories").values
        bias = ds["bias"].sel(at).values
        drawn = False
        for t, (T, colour) in enumerate(zip(Ts, colours, strict=True)):
            mT = ms * float(T)
            y = mean[t]
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():
                continue
            drawn = True
            yerr = np.where(np.isfinite(se[t]), se[t], 0.0)
            ax.errorbar(mT[ok], y[ok], yerr=yerr[ok], color=colour, marker="o", ms=3.5, lw=1.0, label=f"T = {int(T)}")
            if np.isfinite(bias[t]):
                if bias[t] > 0:
                    ax.axhline(bias[t], color=colour, ls=":", lw=0.9)
                ax.plot(mT, bias[t] + d / mT, color=colour, ls="--", lw=0.8)
        if drawn:
            ax.set_xscale("log")
            ax.set_yscale("log")
        pl.legend_if_any(ax, loc="best", fontsize=pl.FONT - 3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    text = pl.title(f"learning curves, least-squares {learner} learner", partial)
    fig.suptitle(text)
    caption = (
        f"Mean risk over {ds.sizes['fit']} fits (bars: one standard error) of the least-squares {learner} learner "
        "at its largest d on the grid against the amount of data m T, one colour per horizon T; dotted: the "
        "bias (best in class, the m -> infinity floor); dashed: bias + d / (m T), the variance of stable "
        "systems (docs/theory.md §6)."
    )
    return DrawnFigure(stem, text, caption, fig)


def _excess(ds: xr.Dataset, th: xr.Dataset, learner: str, stem: str, partial: str | None) -> DrawnFigure:
    fig = pl.figure(6.4, 4.0)
    ax = fig.subplots()
    panels = _panels(ds)
    colours = pl.categorical_colours(len(panels))
    Tmax = int(ds["T"].values.max())
    ms = ds["trajectories"].values.astype(float)
    shown: list[float] = [1.0]
    for sel, colour in zip(panels, colours, strict=True):
        d = _largest_d(ds, learner, sel["spectrum"])
        if d is None:
            continue
        at = sel | {"learner_family": learner, "d": d, "T": Tmax}
        y = th["normalised_excess"].sel(at).values
        se = th["risk_stderr"].sel(at).values * ms * Tmax / d
        if not np.isfinite(y).any():
            continue
        yerr = np.where(np.isfinite(se), se, 0.0)
        shown += [float(v) for v in y[np.isfinite(y)]]
        ax.errorbar(ms, y, yerr=yerr, color=colour, marker="o", ms=4, capsize=2, label=f"{_panel_title(sel)}, d = {d}")
    ax.axhline(1.0, color="black", ls="--", lw=1.0, label="limit 1 (d = n^2: stable; marginal as m grows)")
    ax.set_xscale("log")
    # heavy tails (one explosive trajectory) beside the limit 1: a log axis (symlog if any is <= 0)
    ax.set_yscale(
        "log" if all(v > 0 for v in shown) else "symlog", **({} if all(v > 0 for v in shown) else {"linthresh": 1.0})
    )
    ax.set_xlabel(r"trajectories $m$")
    ax.set_ylabel(r"$(m T / d)\,(\bar R_T - r_T)$" + f" at T = {Tmax}")
    pl.legend_if_any(ax, loc="best", fontsize=pl.FONT - 3)
    text = pl.title(f"normalised excess risk, least-squares {learner} learner", partial)
    fig.suptitle(text)
    caption = (
        f"The excess of the mean risk over the bias, times m T / d, at the largest horizon T = {Tmax}, against the "
        "number of trajectories m, one line per spectrum (bars: one standard error). For stable systems with the "
        "whole class (d = n^2) it tends to 1 as m T grows (Akaike's final prediction error, docs/theory.md §6); "
        "a marginal system sits higher from few trajectories (6.6 for the random walk from one) and tends to 1 as m "
        "grows; an explosive one from few trajectories is heavy-tailed."
    )
    return DrawnFigure(stem, text, caption, fig)
