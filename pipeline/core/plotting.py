"""Figure helpers every experiment's figures use: canvases, colour scales, cell edges,
file-name stems. Matplotlib is imported where it is drawn (``Figure`` objects, no pyplot
state, no display needed).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

DPI = 110
FONT = 10
ZERO_COLOUR = "black"
UNDEFINED_COLOUR = "#d9d9d9"

LOG10_RISK_LABEL = r"$\log_{10} R_T$  ($R_T$ in units of the process-noise variance $q$)"
HORIZON_LABEL = r"horizon $T$ (steps)"
K_LABEL = r"filter length $k$ (taps)"
RATIO_LABEL = r"noise ratio $r/q$"


def figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def style() -> AbstractContextManager[Any]:
    """The house style, applied while drawing (reproducible SVG ids)."""
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.size": FONT,
            "axes.titlesize": FONT + 1,
            "axes.labelsize": FONT,
            "legend.fontsize": FONT - 1,
            "svg.hashsalt": "emergence",
            "figure.facecolor": "white",
        }
    )


def title(text: str, partial: str | None) -> str:
    """A figure title, marked when drawn from a partial cube."""
    return f"{text} [{partial}]" if partial else text


def edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted centres (geometric midpoints on a log axis)."""
    v = np.asarray(values, dtype=np.float64)
    x = np.log10(v) if log else v
    if x.size == 1:
        e = np.array([x[0] - 0.5, x[0] + 0.5])
    else:
        mid = (x[1:] + x[:-1]) / 2
        e = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.asarray(10.0**e) if log else e


def colour_limits(values: np.ndarray) -> tuple[float, float]:
    """The data's whole finite range (nothing is clipped: the scale covers every value)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, lo + 1.0) if hi <= lo else (lo, hi)


LINEAR_DECADES = 60.0
"""Up to this many decades of risk a colour scale is linear in log10 R; beyond (explosive
systems reach 10^17000), symmetric-log, so both the O(1) and the huge risks stay legible."""


def risk_mesh(ax: Any, x_edges: np.ndarray, y_edges: np.ndarray, log10_risk: np.ndarray, lo: float, hi: float) -> Any:
    """``log10_risk`` (Y, X) drawn on ``ax`` in the risk colours over ``[lo, hi]``; cells below
    ``lo`` (exact zeros) in the "below range" colour, NaN cells left blank."""
    z = np.ma.masked_invalid(zeros_below(log10_risk, lo))
    return ax.pcolormesh(
        x_edges, y_edges, z, norm=risk_norm(lo, hi), cmap=risk_colours(), shading="flat", rasterized=True
    )


def risk_norm(lo: float, hi: float) -> Any:
    """The colour normalisation of log10 risk over ``[lo, hi]`` (nothing clipped)."""
    from matplotlib.colors import Normalize, SymLogNorm

    if hi - lo <= LINEAR_DECADES:
        return Normalize(lo, hi)
    return SymLogNorm(linthresh=10.0, linscale=1.0, vmin=lo, vmax=hi, base=10)


def risk_colours(name: str = "viridis") -> Any:
    """Colour map for log10 risk: exact zeros (drawn below the range) in ``ZERO_COLOUR``,
    undefined or uncomputed cells in ``UNDEFINED_COLOUR``."""
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=UNDEFINED_COLOUR, under=ZERO_COLOUR)


def zeros_below(values: np.ndarray, lo: float) -> np.ndarray:
    """``values`` with exact zeros of the risk (``log10 = -inf``) just below the scale."""
    return np.where(np.isneginf(values), lo - 1.0, values)


def risk_colourbar(fig: Any, mesh: Any, axes: Any, has_zeros: bool, what: str = LOG10_RISK_LABEL) -> Any:
    """A colour bar of log10 risk labelled in one line; its lower end, when shown, marks exact
    zeros (said below the bar). On a symmetric-log scale the ticks cover both signs."""
    from matplotlib.colors import SymLogNorm

    bar = fig.colorbar(mesh, ax=axes, extend="min" if has_zeros else "neither", shrink=0.9)
    if isinstance(mesh.norm, SymLogNorm):
        from matplotlib.ticker import FixedLocator, FuncFormatter

        lo, hi = mesh.get_clim()
        bar.ax.yaxis.set_major_locator(FixedLocator(symlog_ticks(float(lo), float(hi))))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v)))
        bar.ax.yaxis.set_minor_locator(FixedLocator([]))
        what += " (symlog beyond ±10)"
    bar.set_label(what, fontsize=FONT - 1)
    if has_zeros:
        bar.ax.text(
            0.5, -0.055, "black:\nrisk = 0", transform=bar.ax.transAxes, ha="center", va="top", fontsize=FONT - 2
        )
    return bar


def tick_text(value: float) -> str:
    """A colour bar tick: plain below 10^4 in magnitude, a signed power of ten beyond."""
    if abs(value) < 1e4:
        return format(value, "g")
    return f"${'-' if value < 0 else ''}{power_of_ten(abs(value))}$"


def symlog_ticks(lo: float, hi: float, linthresh: float = 10.0) -> list[float]:
    """Colour bar ticks for a symmetric-log scale over ``[lo, hi]``: 0, ``±linthresh`` and the
    powers of ten beyond it that fall in the range, and always one tick on each side of 0 the
    range reaches (a round value inside the linear part when no power of ten fits)."""
    ticks = [0.0] if lo <= 0 <= hi else []
    for sign, end in ((1.0, hi), (-1.0, lo)):
        if sign * end <= 0:
            continue
        top = math.floor(math.log10(abs(end) / linthresh)) if abs(end) >= linthresh else -1
        powers = [sign * linthresh * 10.0**j for j in range(0, top + 1)]
        if len(powers) > 6:
            keep = math.ceil(len(powers) / 6)
            powers = powers[::keep]
        if not powers:
            step = 10.0 ** math.floor(math.log10(abs(end)))
            powers = [sign * step * math.floor(abs(end) / step)]
        ticks += powers
    return sorted(ticks)


def grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def label_panel_grid(axes: Any, used: int, cols: int, xlabel: str, ylabel: str) -> None:
    """On a ``rows x cols`` grid of shared-axis panels of which the first ``used`` are drawn:
    hide the rest, label the x axis of the lowest drawn panel of each column and the y axis
    of the first column."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes.flat[:used]):
        if i + cols >= used:
            ax.tick_params(labelbottom=True)
            ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)


def sequential_colours(n: int, name: str = "plasma") -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return [cmap(0.2)] if n == 1 else [cmap(0.85 * i / (n - 1)) for i in range(n)]


def categorical_colours(n: int) -> list[Any]:
    """``n`` distinct colours for categories, none of them grey (grey marks unresolved values)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    palette = [cmap(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]
    if n > len(palette):
        palette += [matplotlib.colormaps["tab20"](i) for i in range(1, 20, 2)]
    return [palette[i % len(palette)] for i in range(n)]


def value_text(value: Any) -> str:
    """An axis value as text that tells distinct values apart (``repr`` for floats)."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


_READABLE = str.maketrans({"^": "p", "@": "at", ",": "_", " ": "", "[": "", "]": "", "-": "m", "+": ""})


def stems(values: Iterable[Any]) -> dict[str, str]:
    """A file-name stem for every distinct axis value (keyed by ``value_text``): readable
    (``1.0^2, 0.5`` -> ``1.0p2_0.5``), and where two readable forms coincide, each of them
    followed by a short hash of the exact value, so no two values share a file."""
    texts = list(dict.fromkeys(value_text(v) for v in values))
    readable = {t: re.sub(r"[^A-Za-z0-9._]+", "_", t.translate(_READABLE)).strip("_") or "x" for t in texts}
    taken: dict[str, list[str]] = {}
    for t, r in readable.items():
        taken.setdefault(r, []).append(t)
    out = {}
    for t, r in readable.items():
        out[t] = r if len(taken[r]) == 1 else f"{r}-{hashlib.blake2b(t.encode(), digest_size=4).hexdigest()}"
    return out


def number_stems(values: Iterable[Any]) -> dict[str, str]:
    """File-name stems for numbers (keyed by ``value_text``): three significant digits
    (``0.316``), or :func:`stems` of the exact values where two would coincide."""
    exact = {value_text(v): format(float(v), ".3g") for v in values}
    if len(set(exact.values())) < len(exact):
        return stems(values)
    short = stems(exact.values())
    return {key: short[text] for key, text in exact.items()}


def join_stem(*parts: str) -> str:
    return "_".join(p for p in parts if p)


def workflow_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "cube"


def legend_if_any(ax: Any, **kwargs: Any) -> None:
    """A legend only when something labelled was drawn."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, **kwargs)


def power_of_ten(value: float) -> str:
    """A number for mathtext: ``10^{8}`` for a power of ten, else ``3 \times 10^{4}``-style or plain
    (never matplotlib's ``1e+08``, which mathtext renders as "1e + 08")."""
    if value > 0:
        exponent = math.floor(math.log10(value) + 1e-12)
        mantissa = value / 10.0**exponent
        if abs(exponent) >= 4:
            if abs(mantissa - round(mantissa)) < 1e-9 and round(mantissa) == 1:
                return f"10^{{{exponent}}}"
            return f"{mantissa:.3g} \\times 10^{{{exponent}}}"
    return format(value, "g")


def positive_range(values: Sequence[float]) -> tuple[float, float]:
    """Linear limits from 0 to a little above the largest finite value."""
    finite = [v for v in values if math.isfinite(v)]
    top = max(finite, default=1.0)
    return 0.0, max(top * 1.08, 1e-3)


UNRESOLVED_COLOUR = "#9a9a9a"
DISAGREES_COLOUR = "#d62728"


def measured_points(
    ax: Any,
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    err: Sequence[float] | np.ndarray | None,
    verdicts: Sequence[str] | np.ndarray,
    colour: Any,
    marker: str = "o",
    label: str | None = None,
    ms: float = 6.5,
) -> None:
    """Measured values beside their theory, drawn by verdict (``pipeline.core.verdicts``): an
    agreeing value as a filled marker with its agreement band (``err``, half-widths) as a bar
    in its colour; an unresolved one hollow with a grey bar; a disagreeing one filled with a
    thick red edge; unknown (not computed) and non-finite values are not drawn. ``label``
    names the series once."""
    from pipeline.core.verdicts import AGREES, DISAGREES, UNRESOLVED, as_text

    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    es = np.full(xs.shape, np.nan) if err is None else np.asarray(err, dtype=np.float64)
    vs = as_text(verdicts)
    styles = {
        AGREES: {"mfc": colour, "mec": colour, "ecolor": colour, "mew": 1.2},
        UNRESOLVED: {"mfc": "white", "mec": colour, "ecolor": UNRESOLVED_COLOUR, "mew": 1.6},
        DISAGREES: {"mfc": colour, "mec": DISAGREES_COLOUR, "ecolor": DISAGREES_COLOUR, "mew": 2.4},
    }
    for verdict, style in styles.items():
        keep = (vs == verdict) & np.isfinite(xs) & np.isfinite(ys)
        if not keep.any():
            continue
        yerr = np.where(np.isfinite(es[keep]), es[keep], 0.0)
        ax.errorbar(xs[keep], ys[keep], yerr=yerr, fmt=marker, ms=ms, color=colour, capsize=3, label=label, **style)
        label = None


def verdict_handles() -> tuple[list[Any], list[str]]:
    """Legend entries that explain how :func:`measured_points` draws each verdict."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", ls="-", color="0.25", mfc="0.25", ms=6),
        Line2D([], [], marker="o", ls="-", color=UNRESOLVED_COLOUR, mfc="white", mec="0.25", ms=6),
        Line2D([], [], marker="o", ls="none", color="0.25", mec=DISAGREES_COLOUR, mew=2.4, ms=6),
    ]
    return handles, ["agrees (bar: agreement band)", "unresolved (hollow, grey band)", "disagrees (red edge)"]
