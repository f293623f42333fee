"""Figures of an observed cube, each beside its theory.

* ``<wf>_risk_<spectrum>``: log10 risk (median over draws) over (d, T), one panel per family,
  lines at the measured and theory critical counts;
* ``<wf>_bounded``: fraction of draws bounded over (spectrum, d), one panel per family,
  theory ``d*`` marked;

these two for the ``learner_family = same`` slice (the cube of MATH §1.3). With other
learner families (MATH §1.5):

* ``<wf>_learners_<spectrum>``: log10 risk (median over draws) at the largest ``T``
  against ``d``, one panel per adversary family, one line per learner family, the
  predicted critical ``d`` marked on each line (or "never" in its legend);
* ``<wf>_learnable``: a table of predicted and measured critical ``d`` ("never")
  across (spectrum, adversary, learner).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core import plotting as pl
from pipeline.core.types import PARTIAL_ATTR
from pipeline.experiments.base import DrawnFigure

if TYPE_CHECKING:
    import xarray as xr

D_LABEL = r"learner parameters $d$"
LINE_STYLES = (
    {"marker": "o", "ms": 7.5, "ls": "-"},
    {"marker": "s", "ms": 5.0, "ls": "--"},
    {"marker": "^", "ms": 4.0, "ls": ":"},
    {"marker": "D", "ms": 3.5, "ls": "-."},
)
RISK_LABEL = r"$\log_{10} r_T(d)$, median of draws"


def figures(ds: xr.Dataset, th: xr.Dataset) -> list[DrawnFigure]:
    """Every figure of an observed cube (see the module docstring)."""
    from pipeline.experiments.observed.thresholds import with_learner_axis

    ds = with_learner_axis(ds).sortby(["d", "T"])
    wf = pl.workflow_stem(str(th.attrs.get("workflow_name") or "cube"))
    partial = ds.attrs.get(PARTIAL_ATTR)
    spectrum_stems = pl.stems(ds["spectrum"].values)
    learners = [str(x) for x in ds["learner_family"].values]
    out = []
    with pl.style():
        if "same" in learners:
            same, th_same = ds.sel(learner_family="same", drop=True), th.sel(learner_family="same", drop=True)
            for spectrum in ds["spectrum"].values:
                stem = pl.join_stem(wf, "risk", spectrum_stems[str(spectrum)])
                out.append(_risk_map(same, th_same, str(spectrum), stem, partial))
            out.append(_bounded(same, th_same, pl.join_stem(wf, "bounded"), partial))
        if any(lf != "same" for lf in learners):
            for spectrum in ds["spectrum"].values:
                stem = pl.join_stem(wf, "learners", spectrum_stems[str(spectrum)])
                out.append(_learner_lines(ds, th, str(spectrum), stem, partial))
            out.append(_learnable_table(th, pl.join_stem(wf, "learnable"), partial))
    return out


def _count(value: float) -> str:
    return "never" if math.isinf(value) else ("?" if math.isnan(value) else f"{value:.0f}")


def _learner_lines(ds: xr.Dataset, th: xr.Dataset, spectrum: str, stem: str, partial: str | None) -> DrawnFigure:
    """Risk at the largest T against d per learner family, one panel per adversary family."""
    families = [str(f) for f in ds["family"].values]
    learners = [str(x) for x in ds["learner_family"].values]
    d = ds["d"].values.astype(np.float64)
    Tmax = int(ds["T"].values.max())
    values = ds["log10_risk"].sel(spectrum=spectrum, T=Tmax).transpose("family", "learner_family", "d", "draw").values
    med = _median_over_draws(values)
    colours = pl.sequential_colours(len(learners), "viridis")
    fig = pl.figure(max(4.3 * len(families) + 1.2, 6.5), 3.9)
    axes = fig.subplots(1, len(families), squeeze=False, sharey=True)[0]
    finite = med[np.isfinite(med)]
    floor = float(finite.min()) - 1.0 if finite.size else -1.0
    for i, (ax, family) in enumerate(zip(axes, families, strict=True)):
        for k, (lf, colour) in enumerate(zip(learners, colours, strict=True)):
            sel = {"spectrum": spectrum, "family": family, "learner_family": lf}
            predicted = float(th["critical_d_theory"].sel(sel))
            y = np.where(np.isneginf(med[i, k]), floor, med[i, k])  # r_T = 0 exactly drawn at the floor
            label = f"{lf} learner: predicted critical $d$ = {_count(predicted)}"
            # lines that coincide stay visible: the first drawn widest and lowest, each its own marker
            style = LINE_STYLES[k % len(LINE_STYLES)]
            ax.plot(
                d,
                y,
                color=colour,
                label=label,
                lw=3.2 - 2.2 * k / max(len(learners) - 1, 1),
                zorder=2 + k,
                **style,
            )
            if math.isfinite(predicted) and predicted in d:
                at = int(np.flatnonzero(d == predicted)[0])
                ax.plot([predicted], [y[at]], marker="*", ms=15, color=colour, mec="black", ls="none")
                ax.axvline(predicted, color=colour, ls=":", lw=1.0)
        ax.set_title(f"adversary: {family} family (dim {int(th['family_dim'].sel(spectrum=spectrum, family=family))})")
        ax.set_xlabel(D_LABEL)
        pl.legend_if_any(ax, loc="best", framealpha=0.85, fontsize=pl.FONT - 3)  # clear of the stars
    axes[0].set_ylabel(rf"$\log_{{10}} r_T(d)$ at $T = {pl.power_of_ten(Tmax)}$ (median over draws)")
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: learner families for spectrum {spectrum}", partial)
    fig.suptitle(text)
    caption = (
        f"log10 of the best-in-class risk r_T(d) at the largest horizon T = {Tmax:.3g} (median over "
        f"{ds.sizes['draw']} draws) against the learner's parameter count d for spectrum '{spectrum}', one "
        "panel per adversary family and one line per learner family; stars mark the predicted critical d "
        "of docs/theory.md §1.5, from which the risk drops to O(1); a learner marked never stays huge up "
        "to its whole dimension. Points at the bottom of a panel are r_T = 0 exactly."
    )
    return DrawnFigure(stem, text, caption, fig)


def _learnable_table(th: xr.Dataset, stem: str, partial: str | None) -> DrawnFigure:
    """Predicted (and measured) critical d across (spectrum, adversary, learner)."""
    from matplotlib.patches import Patch

    spectra = [str(s) for s in th["spectrum"].values]
    families = [str(f) for f in th["family"].values]
    learners = [str(x) for x in th["learner_family"].values]
    cols = [(f, lf) for f in families for lf in learners]
    fig = pl.figure(max(1.35 * len(cols) + 2.8, 6.0), max(2.6, 0.5 * len(spectra) + 1.9))
    ax = fig.subplots()
    colour = np.zeros((len(spectra), len(cols), 3))
    for r, s in enumerate(spectra):
        for c, (f, lf) in enumerate(cols):
            sel = {"spectrum": s, "family": f, "learner_family": lf}
            predicted = float(th["critical_d_theory"].sel(sel))
            got = float(th["critical_d"].sel(sel))
            agree = predicted == got
            colour[r, c] = (0.51, 0.88, 0.67) if math.isfinite(predicted) else (0.96, 0.60, 0.55)
            if not agree:
                colour[r, c] = (0.97, 0.86, 0.44)
            text = _count(predicted) if agree else f"{_count(predicted)}\n(measured {_count(got)})"
            ax.text(c, r, text, ha="center", va="center", fontsize=pl.FONT - 1)
    ax.imshow(colour, aspect="auto")
    key = [
        Patch(facecolor=(0.51, 0.88, 0.67), label="learnable from that d (measured = predicted)"),
        Patch(facecolor=(0.96, 0.60, 0.55), label="never: no d bounds the risk"),
        Patch(facecolor=(0.97, 0.86, 0.44), label="measured differs from predicted"),
    ]
    fig.legend(handles=key, loc="outside lower center", ncols=3, fontsize=pl.FONT - 2, frameon=False)
    ax.set_xticks(range(len(cols)), [f"{f}\nvs {lf}" for f, lf in cols], fontsize=pl.FONT - 2)
    ax.set_yticks(range(len(spectra)), spectra)
    ax.set_xlabel("adversary family vs learner family")
    ax.set_ylabel("spectrum")
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: critical d by parametrisation", partial)
    fig.suptitle(text)
    caption = (
        "Predicted critical parameter count (docs/theory.md §1.5) for every spectrum, adversary family and "
        "learner family: green, learnable from that d on (measured from the cube's exact bounded test, "
        "equal to the prediction); red, never: no number of the learner's parameters bounds the risk; "
        "yellow: measured and predicted differ (both shown)."
    )
    return DrawnFigure(stem, text, caption, fig)


def _median_over_draws(values: np.ndarray) -> np.ndarray:
    """Median over the last axis keeping exact zeros (-inf) and undefined cells (NaN)."""
    with warnings.catch_warnings():  # all-NaN slices are the undefined cells d > family_dim
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.where(np.isneginf(values), -1e300, values), axis=-1)
    return np.where(med <= -1e299, -np.inf, med)


def _risk_map(ds: xr.Dataset, th: xr.Dataset, spectrum: str, stem: str, partial: str | None) -> DrawnFigure:
    families = [str(f) for f in ds["family"].values]
    d = ds["d"].values.astype(np.float64)
    T = ds["T"].values.astype(np.float64)
    med = _median_over_draws(ds["log10_risk"].sel(spectrum=spectrum).transpose("family", "T", "d", "draw").values)
    lo, hi = pl.colour_limits(med)
    fig = pl.figure(max(4.3 * len(families) + 1.2, 6.5), 3.9)
    axes = fig.subplots(1, len(families), squeeze=False, sharey=True)[0]
    # the d axis ends at the largest family dimension of this spectrum (beyond it every cell is undefined)
    top = float(th["family_dim"].sel(spectrum=spectrum).max())
    d_shown = d[d <= top] if (d <= top).any() else d
    med = med[:, :, : d_shown.size]
    d = d_shown
    de, Te = pl.edges(d, log=False), pl.edges(T, log=True)
    mesh = None
    for i, (ax, family) in enumerate(zip(axes, families, strict=True)):
        mesh = pl.risk_mesh(ax, de, Te, med[i], lo, hi)
        ax.set_yscale("log")
        sel = {"spectrum": spectrum, "family": family}
        crit = float(th["critical_d"].sel(sel))
        predicted = float(th["critical_d_theory"].sel(sel))
        if math.isfinite(crit):
            ax.axvline(crit - 0.5, color="white", lw=2.0, label=f"measured critical $d$ = {crit:.0f}")
        if math.isfinite(predicted):
            ax.axvline(predicted - 0.5, color="#ff4d4d", ls="--", lw=1.6, label=f"theory $d^*$ = {predicted:.0f}")
        ax.set_title(f"{family} family (dim {int(th['family_dim'].sel(sel))})")
        ax.set_xlabel(D_LABEL)
        pl.legend_if_any(ax, loc="lower left", framealpha=0.85, fontsize=pl.FONT - 2)
        ax.set_xlim(de[0], de[-1])
    axes[0].set_ylabel(pl.HORIZON_LABEL)
    ndraw = ds.sizes["draw"]
    pl.risk_colourbar(fig, mesh, list(axes), has_zeros=bool(np.isneginf(med).any()), what=RISK_LABEL)
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: best-in-class risk for spectrum {spectrum}", partial)
    fig.suptitle(text)
    caption = (
        f"log10 of the best-in-class risk r_T(d) (per unit squared perturbation, median over {ndraw} "
        f"draws) over the parameter count d and horizon T for spectrum '{spectrum}', one panel per "
        "family; the risk stops growing with T right of the measured critical d (white), which "
        "should sit on the theory d* of docs/theory.md §1.4 (red dashed); grey: d beyond the family's "
        "dimension (or not computed); black: r_T = 0 exactly (d = family dimension). The risk is per unit "
        "squared perturbation, in units of the process-noise variance q; the d axis ends at the largest "
        "family dimension of the spectrum."
    )
    return DrawnFigure(stem, text, caption, fig)


def _bounded(ds: xr.Dataset, th: xr.Dataset, stem: str, partial: str | None) -> DrawnFigure:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    families = [str(f) for f in ds["family"].values]
    spectra = [str(s) for s in ds["spectrum"].values]
    d = ds["d"].values.astype(np.float64)
    frac = ds["bounded"].astype(np.float64).mean("draw").transpose("family", "spectrum", "d").values
    defined = (ds["d"] <= ds["family_dim"]).transpose("family", "spectrum", "d").values
    frac = np.where(defined, frac, np.nan)
    cmap = ListedColormap(["#c0392b", "#f5b041", "#f7dc6f", "#82e0aa", "#1e8449"]).with_extremes(
        bad=pl.UNDEFINED_COLOUR
    )
    fig = pl.figure(max(4.2 * len(families) + 2.6, 7.0), max(3.2, 0.42 * len(spectra) + 1.6))
    axes = fig.subplots(1, len(families), squeeze=False, sharey=True)[0]
    de = pl.edges(d, log=False)
    ye = np.arange(len(spectra) + 1) - 0.5
    ys = np.arange(len(spectra))
    mesh = None
    for i, (ax, family) in enumerate(zip(axes, families, strict=True)):
        mesh = ax.pcolormesh(de, ye, np.ma.masked_invalid(frac[i]), cmap=cmap, vmin=0, vmax=1, shading="flat")
        ax.plot(
            th["critical_d_theory"].sel(family=family).values - 0.5,
            ys,
            marker="|",
            ls="none",
            color="black",
            ms=16,
            mew=2.5,
            label="theory $d^*$",
        )
        ax.plot(
            th["critical_d"].sel(family=family).values - 0.5,
            ys,
            marker="o",
            ls="none",
            color="white",
            mec="black",
            ms=5,
            label="measured critical $d$",
        )
        ax.set_title(f"{family} family")
        ax.set_xlabel(D_LABEL)
        ax.set_yticks(ys, spectra)
        ax.set_ylim(ye[-1], ye[0])
    axes[0].set_ylabel("spectrum")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Patch(facecolor=pl.UNDEFINED_COLOUR, edgecolor="0.5"))
    labels.append("d > family dimension (no such learner)")
    axes[0].legend(handles, labels, loc="lower right", fontsize=pl.FONT - 2, framealpha=0.9)
    bar = fig.colorbar(mesh, ax=list(axes), shrink=0.9)
    bar.set_label("fraction of draws with bounded risk")
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: bounded (green) and unbounded (red) risk", partial)
    fig.suptitle(text)
    caption = (
        "Whether the best-in-class risk stays bounded in T (fraction of adversary draws, decided exactly "
        "from the rank criterion of docs/theory.md §1.4) over spectrum and parameter count d, one panel "
        "per family; black bars mark the theory d* (Theorem 3.1: d_u for the block family, d_u − m_u for "
        "the similarity family), circles the measured critical d; grey: beyond the family's dimension."
    )
    return DrawnFigure(stem, text, caption, fig)
