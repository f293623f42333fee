"""``emergence plot``: phase diagrams of a cube next to the theory (PNG and SVG).

Figures are drawn with ``matplotlib.figure.Figure`` (no pyplot state, no display
needed). Every plot function returns ``Plot`` records (files, title, one sentence on
what the figure shows) that ``pipeline.figures`` turns into an index page.

hidden cubes
    * ``<wf>_risk_lam<lam>_<learner>``: log10 risk over (T, k), one panel per noise ratio,
      with the measured ``k_star`` and the theory curve ``k*(T)`` overlaid;
    * ``<wf>_kstar_lam<lam>``: ``k_star`` against ``T`` for every noise ratio, one panel per
      learner side by side (truncation against best FIR);
    * ``<wf>_pole_slope``: the Kalman pole ``a`` and the slope of ``k*`` in ``ln T`` against
      the noise ratio, theory line and measured points.

observed cubes
    * ``<wf>_risk_<spectrum>``: log10 risk (median over draws) over (d, T), one panel per
      family, lines at the measured and theory ``critical_d``;
    * ``<wf>_bounded``: fraction of draws bounded over (spectrum, d), one panel per family,
      theory ``d*`` marked.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import UsageError

if TYPE_CHECKING:  # xarray is imported where it is used: `emergence run` builds this parser too
    import xarray as xr

DPI = 110
COLOR_CAP = 16.0  # log10 risk beyond +-16 shows as the colour bar's end colours
FONT = 10


@dataclass(frozen=True)
class Plot:
    """One figure on disk: ``stem`` + ``.png`` / ``.svg``."""

    png: Path
    svg: Path
    title: str
    caption: str
    workflow: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(text)).strip("_") or "x"


def _num(v: float) -> str:
    return f"{float(v):g}"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _rc() -> Any:
    import matplotlib

    return matplotlib.rc_context({"font.size": FONT, "axes.titlesize": FONT + 1, "axes.labelsize": FONT,
                                  "legend.fontsize": FONT - 1, "svg.hashsalt": "emergence",
                                  "figure.facecolor": "white"})


def _save(fig: Any, out_dir: Path, stem: str, title: str, caption: str, workflow: str) -> Plot:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.set_layout_engine("none")  # keep the constrained layout of the PNG; do not solve it again
    fig.savefig(svg, metadata={"Date": None})
    return Plot(png, svg, title, caption, workflow)


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted centres (geometric midpoints on a log axis)."""
    v = np.asarray(values, dtype=np.float64)
    x = np.log10(v) if log else v
    if x.size == 1:
        e = np.array([x[0] - 0.5, x[0] + 0.5])
    else:
        mid = (x[1:] + x[:-1]) / 2
        e = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return 10.0 ** e if log else e


def _color_limits(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(finite, [1, 99])
    lo, hi = max(lo, -COLOR_CAP), min(hi, COLOR_CAP)
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _cmap(name: str = "viridis") -> Any:
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="#d9d9d9", under="black")


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


# --------------------------------------------------------------------------- hidden


def hidden_plots(ds: xr.Dataset, th: xr.Dataset, out_dir: Path, workflow: str, tau: float) -> list[Plot]:
    ds = ds.sortby(["k", "T", "noise_ratio"])
    th = th.sortby(["T", "noise_ratio"])
    plots = []
    with _rc():
        for lam in ds["lam"].values:
            for learner in ds["learner"].values:
                plots.append(_hidden_risk_map(ds, th, out_dir, workflow, float(lam), str(learner), tau))
            plots.append(_hidden_kstar(th, out_dir, workflow, float(lam), tau))
        plots.append(_hidden_pole_slope(th, out_dir, workflow, tau))
    return plots


def _hidden_risk_map(ds: xr.Dataset, th: xr.Dataset, out_dir: Path, workflow: str, lam: float,
                     learner: str, tau: float) -> Plot:
    from matplotlib.colors import Normalize

    ratios = ds["noise_ratio"].values
    T = ds["T"].values.astype(np.float64)
    k = ds["k"].values.astype(np.float64)
    data = ds["log10_risk"].sel(lam=lam, learner=learner).transpose("noise_ratio", "k", "T").values
    lo, hi = _color_limits(data)
    norm = Normalize(lo, hi)
    cmap = _cmap("viridis")
    rows, cols = _grid(len(ratios))
    fig = _figure(max(4.0 * cols + 1.2, 6.5), 3.1 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    Te, ke = _edges(T, log=True), _edges(k, log=False)
    mesh = None
    for i, ratio in enumerate(ratios):
        ax = axes.flat[i]
        z = np.where(np.isneginf(data[i]), lo - 1e6, data[i])
        mesh = ax.pcolormesh(Te, ke, z, norm=norm, cmap=cmap, shading="flat", rasterized=True)
        ax.set_xscale("log")
        measured = th["k_star"].sel(lam=lam, noise_ratio=ratio, learner=learner, tau=tau).values
        ax.step(T, measured, where="mid", color="white", lw=1.6, label=f"measured k* (R_T ≤ {tau:g})")
        theory = th["k_star_theory"].sel(lam=lam, noise_ratio=ratio, tau=tau).values
        if np.isfinite(theory).any():
            shown = np.where((theory >= k.min() - 0.5) & (theory <= k.max() + 0.5), theory, np.nan)
            ax.plot(T, shown, color="#ff4d4d", ls="--", lw=1.8, label="theory k*(T), truncated Kalman")
        a = float(th["a"].sel(lam=lam, noise_ratio=ratio))
        ax.set_title(f"noise ratio r/q = {ratio:.3g}  (a = {a:.3f})")
        ax.set_ylim(ke[0], ke[-1])
        ax.set_xlim(Te[0], Te[-1])
    for ax in axes.flat[len(ratios):]:
        ax.set_visible(False)
    for i, ax in enumerate(axes.flat[:len(ratios)]):
        if i + cols >= len(ratios):  # lowest visible panel of its column
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("horizon T (steps)")
    for ax in axes[:, 0]:
        ax.set_ylabel("filter length k (taps)")
    axes.flat[0].legend(loc="upper left", framealpha=0.85)
    cb = fig.colorbar(mesh, ax=axes, extend="both", shrink=0.9)
    cb.set_label("log10 R_T  (R_T in units of q)")
    title = f"{workflow}: log10 risk of {learner}, lam = {lam:g}"
    fig.suptitle(title)
    caption = (f"log10 R_T of the {learner} learner over filter length k and horizon T (log axis), one panel "
               f"per noise ratio at lam = {lam:g}; white steps: measured k* (smallest k with R_T ≤ {tau:g})"
               + ("; red dashed: theory k*(T) = ln(T/(2 tau)) / (2 ln(1/a)) of MATH 2.4"
                  if abs(abs(lam) - 1) < 1e-12 else "")
               + f"; black: R_T below 1e-{COLOR_CAP:g} or exactly 0 (k >= T).")
    return _save(fig, out_dir, f"{_slug(workflow)}_risk_lam{_num(lam)}_{learner}", title, caption, workflow)


def _ratio_colors(ratios: np.ndarray) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["plasma"]
    if len(ratios) == 1:
        return [cmap(0.2)]
    return [cmap(0.85 * i / (len(ratios) - 1)) for i in range(len(ratios))]


def _hidden_kstar(th: xr.Dataset, out_dir: Path, workflow: str, lam: float, tau: float) -> Plot:
    learners = [str(v) for v in th["learner"].values]
    ratios = th["noise_ratio"].values
    T = th["T"].values.astype(np.float64)
    fig = _figure(max(5.2 * len(learners) + 1.8, 7.0), 4.2)
    axes = fig.subplots(1, len(learners), squeeze=False, sharey=True)[0]
    colors = _ratio_colors(ratios)
    for ax, learner in zip(axes, learners, strict=True):
        for ratio, color in zip(ratios, colors, strict=True):
            ks = th["k_star"].sel(lam=lam, noise_ratio=ratio, learner=learner, tau=tau).values
            ax.step(T, ks, where="mid", color=color, lw=1.6, label=f"{ratio:.3g}")
            theory = th["k_star_theory"].sel(lam=lam, noise_ratio=ratio, tau=tau).values
            if learner == "truncated_kalman" and np.isfinite(theory).any():
                ax.plot(T, np.where(theory >= 0, theory, np.nan), color=color, ls="--", lw=1.0)
        ax.set_xscale("log")
        ax.set_xlabel("horizon T (steps)")
        ax.set_title(learner.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"k* = smallest k with R_T ≤ {tau:g} (taps)")
    handles, labels = axes[0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles.append(Line2D([], [], color="grey", ls="--"))
    labels.append("theory (MATH 2.4)")
    fig.legend(handles, labels, title="noise ratio r/q", loc="outside right center")
    kmax = float(th["k"].max())
    for ax in axes:
        ax.set_ylim(0, kmax + 1)
    title = f"{workflow}: filter length needed for R_T ≤ {tau:g}, lam = {lam:g}"
    fig.suptitle(title)
    caption = (f"k* (smallest filter length with R_T ≤ {tau:g}) against the horizon T for every noise ratio at "
               f"lam = {lam:g}, truncated Kalman beside best FIR: truncation needs k* growing like ln T "
               f"(dashed: theory), a free FIR does not; gaps mean no k ≤ {kmax:g} reaches the level.")
    return _save(fig, out_dir, f"{_slug(workflow)}_kstar_lam{_num(lam)}", title, caption, workflow)


def _hidden_pole_slope(th: xr.Dataset, out_dir: Path, workflow: str, tau: float) -> Plot:
    ratios = th["noise_ratio"].values.astype(np.float64)
    fig = _figure(11.0, 4.2)
    ax_a, ax_s = fig.subplots(1, 2)
    colors = _ratio_colors(th["lam"].values)
    fine = np.geomspace(ratios.min(), ratios.max(), 200)
    for lam, color in zip(th["lam"].values, colors, strict=True):
        ax_a.plot(ratios, th["a"].sel(lam=lam).values, "o-", color=color, label=f"lam = {lam:g}")
    ax_a.set_xscale("log")
    ax_a.set_xlabel("noise ratio r/q")
    ax_a.set_ylabel("Kalman predictor pole a = lam − K")
    ax_a.set_title("pole of the Kalman predictor")
    ax_a.grid(alpha=0.3)
    ax_a.legend()
    # theory slope for lam = 1: closed form of MATH 2.1 on a fine grid
    s = 1.0 / fine
    a_fine = 2.0 / (2.0 + s + np.sqrt(s * s + 4.0 * s))
    ax_s.plot(fine, 1.0 / (2.0 * np.log(1.0 / a_fine)), "k-", lw=1.4, label="theory 1/(2 ln(1/a)), lam = 1")
    markers = {"truncated_kalman": "o", "best_fir": "s"}
    for lam, color in zip(th["lam"].values, colors, strict=True):
        for learner in th["learner"].values:
            slope = th["k_star_slope"].sel(lam=lam, learner=learner, tau=tau).values
            if np.isfinite(slope).any():
                ax_s.plot(ratios, slope, markers.get(str(learner), "^"), color=color, ms=6,
                          mfc="none" if learner == "best_fir" else color,
                          label=f"measured, {learner}, lam = {lam:g}")
    ax_s.set_xscale("log")
    ax_s.set_yscale("symlog", linthresh=0.1)
    ax_s.set_xlabel("noise ratio r/q")
    ax_s.set_ylabel("slope of k* in ln T (taps per e-fold)")
    ax_s.set_title(f"growth of k* with ln T (tau = {tau:g})")
    ax_s.grid(alpha=0.3)
    ax_s.legend(fontsize=FONT - 2)
    title = f"{workflow}: Kalman pole and the slope of k* against the noise ratio"
    fig.suptitle(title)
    caption = ("Left: the Kalman predictor pole a against the noise ratio (a → 1 as observation noise grows); "
               f"right: the measured slope of k* in ln T (tau = {tau:g}, asymptotic-regime fit) beside the theory "
               "1/(2 ln(1/a)), which diverges with the noise ratio; best-FIR slopes sit at 0.")
    return _save(fig, out_dir, f"{_slug(workflow)}_pole_slope", title, caption, workflow)


# --------------------------------------------------------------------------- observed


def observed_plots(ds: xr.Dataset, th: xr.Dataset, out_dir: Path, workflow: str) -> list[Plot]:
    ds = ds.sortby(["d", "T"])
    plots = []
    with _rc():
        for spectrum in ds["spectrum"].values:
            plots.append(_observed_risk_map(ds, th, out_dir, workflow, str(spectrum)))
        plots.append(_observed_bounded(ds, th, out_dir, workflow))
    return plots


def _observed_risk_map(ds: xr.Dataset, th: xr.Dataset, out_dir: Path, workflow: str, spectrum: str) -> Plot:
    from matplotlib.colors import Normalize

    families = [str(f) for f in ds["family"].values]
    d = ds["d"].values.astype(np.float64)
    T = ds["T"].values.astype(np.float64)
    sub = ds["log10_risk"].sel(spectrum=spectrum).transpose("family", "T", "d", "draw").values
    import warnings

    with warnings.catch_warnings():  # all-NaN slices are the undefined cells d > family_dim
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.where(np.isneginf(sub), -1e300, sub), axis=-1)
    med = np.where(med <= -1e299, -np.inf, med)
    lo, hi = _color_limits(med)
    cmap = _cmap("viridis")
    fig = _figure(max(4.3 * len(families) + 1.2, 6.5), 3.9)
    axes = fig.subplots(1, len(families), squeeze=False, sharey=True)[0]
    de, Te = _edges(d, log=False), _edges(T, log=True)
    mesh = None
    ndraw = ds.sizes["draw"]
    for i, (ax, family) in enumerate(zip(axes, families, strict=True)):
        z = np.where(np.isneginf(med[i]), lo - 1e6, med[i])
        z = np.ma.masked_invalid(z)
        mesh = ax.pcolormesh(de, Te, z, norm=Normalize(lo, hi), cmap=cmap, shading="flat", rasterized=True)
        ax.set_yscale("log")
        sel = dict(spectrum=spectrum, family=family)
        crit = float(th["critical_d"].sel(sel))
        theory = float(th["critical_d_theory"].sel(sel))
        dim = int(th["family_dim"].sel(sel))
        if math.isfinite(crit):
            ax.axvline(crit - 0.5, color="white", lw=2.0, label=f"measured critical_d = {crit:.0f}")
        if math.isfinite(theory):
            ax.axvline(theory - 0.5, color="#ff4d4d", ls="--", lw=1.6, label=f"theory d* = {theory:.0f}")
        ax.set_title(f"{family} family (dim {dim})")
        ax.set_xlabel("learner parameters d")
        ax.legend(loc="lower left", framealpha=0.85, fontsize=FONT - 2)
        ax.set_xlim(de[0], de[-1])
    axes[0].set_ylabel("horizon T (steps)")
    cb = fig.colorbar(mesh, ax=list(axes), extend="both", shrink=0.9)
    cb.set_label(f"log10 r_T(d), median of {ndraw} draw(s)")
    title = f"{workflow}: best-in-class risk for spectrum {spectrum}"
    fig.suptitle(title)
    caption = (f"log10 of the best-in-class risk r_T(d) (per unit squared perturbation, median over {ndraw} "
               f"draws) over the parameter count d and horizon T for spectrum '{spectrum}', one panel per "
               "family; the risk stops growing with T right of the measured critical_d (white), which "
               "should sit on the theory d* of MATH 1.4 (red dashed); grey: d beyond the family's dimension; "
               "black: below the colour range (r_T = 0 exactly at d = family dimension).")
    return _save(fig, out_dir, f"{_slug(workflow)}_risk_{_slug(spectrum)}", title, caption, workflow)


def _observed_bounded(ds: xr.Dataset, th: xr.Dataset, out_dir: Path, workflow: str) -> Plot:
    from matplotlib.colors import ListedColormap

    families = [str(f) for f in ds["family"].values]
    spectra = [str(s) for s in ds["spectrum"].values]
    d = ds["d"].values.astype(np.float64)
    frac = ds["bounded"].astype(np.float64).mean("draw").transpose("family", "spectrum", "d").values
    defined = (ds["d"] <= ds["family_dim"]).transpose("family", "spectrum", "d").values
    frac = np.where(defined, frac, np.nan)
    cmap = ListedColormap(["#c0392b", "#f5b041", "#f7dc6f", "#82e0aa", "#1e8449"]).with_extremes(bad="#e6e6e6")
    height = max(3.2, 0.42 * len(spectra) + 1.6)
    fig = _figure(max(4.2 * len(families) + 2.6, 7.0), height)
    axes = fig.subplots(1, len(families), squeeze=False, sharey=True)[0]
    de = _edges(d, log=False)
    ye = np.arange(len(spectra) + 1) - 0.5
    mesh = None
    for i, (ax, family) in enumerate(zip(axes, families, strict=True)):
        mesh = ax.pcolormesh(de, ye, np.ma.masked_invalid(frac[i]), cmap=cmap, vmin=0, vmax=1, shading="flat")
        theory = th["critical_d_theory"].sel(family=family).values
        measured = th["critical_d"].sel(family=family).values
        ys = np.arange(len(spectra))
        ax.plot(theory - 0.5, ys, marker="|", ls="none", color="black", ms=16, mew=2.5, label="theory d*")
        ax.plot(measured - 0.5, ys, marker="o", ls="none", color="white", mec="black", ms=5,
                label="measured critical_d")
        ax.set_title(f"{family} family")
        ax.set_xlabel("learner parameters d")
        ax.set_yticks(ys, spectra)
        ax.set_ylim(ye[-1], ye[0])
    axes[0].set_ylabel("spectrum")
    axes[0].legend(loc="lower right", fontsize=FONT - 2, framealpha=0.9)
    cb = fig.colorbar(mesh, ax=list(axes), shrink=0.9)
    cb.set_label("fraction of draws with bounded risk")
    title = f"{workflow}: bounded (green) and unbounded (red) risk"
    fig.suptitle(title)
    caption = ("Whether the best-in-class risk stays bounded in T (fraction of adversary draws, decided exactly "
               "from the rank criterion of MATH 1.4) over spectrum and parameter count d, one panel per family; "
               "black bars mark the theory d* (Theorem 3.1: d_u for the block family, d_u − m_u for the "
               "similarity family), circles the measured critical_d.")
    return _save(fig, out_dir, f"{_slug(workflow)}_bounded", title, caption, workflow)


# --------------------------------------------------------------------------- entry points


def plot_dataset(ds: xr.Dataset, out_dir: Path | str, th: xr.Dataset | None = None, tau: float | None = None,
                 workflow: str | None = None) -> list[Plot]:
    """Every figure for one cube (thresholds are computed when not given)."""
    from pipeline import thresholds as thr

    out_dir = Path(out_dir)
    if th is None:
        th = thr.compute_thresholds(ds, taus=[tau] if tau is not None else thr.DEFAULT_TAUS)
    workflow = workflow or th.attrs.get("workflow_name") or thr.workflow_name(ds, "cube")
    if tau is None:
        tau = float(th["tau"].values[0]) if "tau" in th.coords else 1.0
    elif "tau" in th.coords and not np.isclose(th["tau"].values, tau).any():
        raise UsageError(f"--tau {tau:g} is not among the thresholds' levels {list(th['tau'].values)}")
    if thr.experiment_of(ds) == "hidden":
        return hidden_plots(ds, th, out_dir, workflow, float(tau))
    return observed_plots(ds, th, out_dir, workflow)


def default_out_dir(store: str) -> str:
    base = store.rstrip("/")
    if base.endswith(".zarr"):
        base = base[: -len(".zarr")]
    return base + ".figures"


def plot_store(store: str, out_dir: str | None = None, tau: float | None = None) -> list[Plot]:
    from pipeline import thresholds as thr
    from pipeline.store import StoreLocation, open_cube

    ds = open_cube(StoreLocation(store))
    taus = [tau] if tau is not None else list(thr.DEFAULT_TAUS)
    th = thr.compute_thresholds(ds, taus=taus, source=store)
    return plot_dataset(ds, out_dir or default_out_dir(store), th=th, tau=taus[0])


def _cmd_plot(args: Any) -> int:
    if args.tau is not None and (not math.isfinite(args.tau) or args.tau <= 0):
        raise UsageError(f"--tau {args.tau!r}: must be a finite number > 0")
    for plot in plot_store(args.store, args.out, args.tau):
        print(f"{plot.png}  (+ .svg)  {plot.title}")
    return 0


def add_plot_parser(sub: Any) -> Any:
    p = sub.add_parser("plot", help="phase diagrams of a cube (PNG and SVG)")
    p.add_argument("store", help="cube written by `emergence run`")
    p.add_argument("--out", help="output folder (default: <store>.figures beside the store)")
    p.add_argument("--tau", type=float, default=None, metavar="X",
                   help="risk level for k* in the hidden figures (default 1)")
    p.set_defaults(func=_cmd_plot)
    return p
