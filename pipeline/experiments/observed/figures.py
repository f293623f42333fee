"""Figures of an observed cube, each beside its theory.

* ``<wf>_risk_<spectrum>``: log10 risk (median over draws) over (d, T), one panel per family,
  lines at the measured and theory critical counts;
* ``<wf>_bounded``: fraction of draws bounded over (spectrum, d), one panel per family,
  theory ``d*`` marked.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from pipeline import plotting as pl
from pipeline.core import PARTIAL_ATTR
from pipeline.experiments.base import DrawnFigure

if TYPE_CHECKING:
    import xarray as xr

D_LABEL = r"learner parameters $d$"
RISK_LABEL = r"$\log_{10} r_T(d)$ (per unit squared perturbation, units of $q$)"


def figures(ds: xr.Dataset, th: xr.Dataset) -> list[DrawnFigure]:
    ds = ds.sortby(["d", "T"])
    wf = pl.workflow_stem(str(th.attrs.get("workflow_name") or "cube"))
    partial = ds.attrs.get(PARTIAL_ATTR)
    spectrum_stems = pl.stems(ds["spectrum"].values)
    out = []
    with pl.style():
        for spectrum in ds["spectrum"].values:
            stem = pl.join_stem(wf, "risk", spectrum_stems[str(spectrum)])
            out.append(_risk_map(ds, th, str(spectrum), stem, partial))
        out.append(_bounded(ds, th, pl.join_stem(wf, "bounded"), partial))
    return out


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
    de, Te = pl.edges(d, log=False), pl.edges(T, log=True)
    mesh = None
    for i, (ax, family) in enumerate(zip(axes, families, strict=True)):
        z = np.ma.masked_invalid(pl.zeros_below(med[i], lo))
        mesh = ax.pcolormesh(
            de, Te, z, norm=pl.risk_norm(lo, hi), cmap=pl.risk_colours(), shading="flat", rasterized=True
        )
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
    pl.risk_colourbar(
        fig,
        mesh,
        list(axes),
        has_zeros=bool(np.isneginf(med).any()),
        what=f"{RISK_LABEL}\nmedian of {ndraw} draw{'s' if ndraw != 1 else ''}",
    )
    text = pl.title(f"{th.attrs.get('workflow_name', '')}: best-in-class risk for spectrum {spectrum}", partial)
    fig.suptitle(text)
    caption = (
        f"log10 of the best-in-class risk r_T(d) (per unit squared perturbation, median over {ndraw} "
        f"draws) over the parameter count d and horizon T for spectrum '{spectrum}', one panel per "
        "family; the risk stops growing with T right of the measured critical d (white), which "
        "should sit on the theory d* of docs/theory.md §1.4 (red dashed); grey: d beyond the family's "
        "dimension (or not computed); black: r_T = 0 exactly (d = family dimension)."
    )
    return DrawnFigure(stem, text, caption, fig)


def _bounded(ds: xr.Dataset, th: xr.Dataset, stem: str, partial: str | None) -> DrawnFigure:
    from matplotlib.colors import ListedColormap

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
    axes[0].legend(loc="lower right", fontsize=pl.FONT - 2, framealpha=0.9)
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
