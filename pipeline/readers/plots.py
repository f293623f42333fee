"""``emergence plot``: the figures of a cube (drawn by its experiment), saved as PNG and SVG.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot state, no display needed).
The folder they are saved in carries a manifest (``guard.FIGURES_MANIFEST``) of the
files this tool wrote; saving again replaces those files, removes those no longer
drawn, and never touches anything else. Output is byte-stable: no timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import UsageError
from pipeline.core.plotting import DPI, style
from pipeline.storage.guard import FIGURES_MANIFEST, check_target, figures_manifest, manifest_text
from pipeline.storage.location import StoreLocation

if TYPE_CHECKING:  # xarray is imported where it is used: `emergence run` builds this parser too
    import xarray as xr

    from pipeline.experiments.base import DrawnFigure


@dataclass(frozen=True)
class SavedFigure:
    """One figure on disk: ``png`` and ``svg`` beside each other."""

    png: Path
    svg: Path
    title: str
    caption: str


def draw(ds: xr.Dataset, th: xr.Dataset | None = None, tau: float | None = None) -> list[DrawnFigure]:
    """Every figure of a cube opened with ``cubes.open_cube`` (thresholds computed when not given)."""
    from pipeline.experiments import experiment_of
    from pipeline.readers import thresholding as thr

    experiment = experiment_of(ds)
    if th is None:
        th = thr.compute_thresholds(ds, thr.options([tau] if tau is not None else None))
    drawn = experiment.figures(ds, th, _level(th, experiment.levels, tau))
    stems = [d.stem for d in drawn]
    if len(set(stems)) != len(stems):
        raise AssertionError(f"two figures share a file name: {sorted(s for s in stems if stems.count(s) > 1)}")
    return drawn


def _level(th: xr.Dataset, levels: str | None, tau: float | None) -> float | None:
    """The risk level the figures draw: ``tau`` (one of the thresholds' ``levels``), by
    default the first of them; None for an experiment without levels (``tau`` unused)."""
    if levels is None:
        return None
    if tau is None:
        return float(th[levels].values[0])
    if not any(math.isclose(float(t), tau) for t in th[levels].values):
        raise UsageError(f"--tau {tau:g} is not among the thresholds' levels {list(th[levels].values)}")
    return float(tau)


def save(drawn: Sequence[DrawnFigure], out_dir: str | Path, keep: Sequence[str] = ()) -> list[SavedFigure]:
    """Save figures into ``out_dir`` (new, or a figure folder of ours); ``keep`` names
    other files of ours written there (they stay in the manifest)."""
    folder = Path(out_dir)
    location = StoreLocation(str(folder))
    check_target(location, "figures")
    before = set(figures_manifest(location) or [])
    folder.mkdir(parents=True, exist_ok=True)
    saved, written = [], list(keep)
    with style():  # the SVG's ids are salted at save time: the same salt, the same bytes
        for d in drawn:
            png, svg = folder / f"{d.stem}.png", folder / f"{d.stem}.svg"
            d.figure.savefig(png, dpi=DPI, metadata={"Software": None})
            d.figure.set_layout_engine("none")  # keep the constrained layout of the PNG; do not solve it again
            d.figure.savefig(svg, metadata={"Date": None})
            saved.append(SavedFigure(png, svg, d.title, d.caption))
            written += [png.name, svg.name]
    for stale in sorted(before - set(written)):
        if (folder / stale).is_file():
            (folder / stale).unlink()
    (folder / FIGURES_MANIFEST).write_text(manifest_text(written))
    return saved


def default_out_dir(cube: str) -> str:
    return cube.rstrip("/").removesuffix(".zarr") + ".figures"


def plot_store(
    cube: str, out_dir: str | None = None, tau: float | None = None, partial: bool = False
) -> list[SavedFigure]:
    from pipeline.readers import thresholding as thr
    from pipeline.readers.cubes import open_cube

    folder = out_dir or default_out_dir(cube)
    check_target(StoreLocation(folder), "figures")
    ds = open_cube(cube, partial=partial)
    opts = thr.options([tau] if tau is not None else None)
    thr.require_levels(ds, opts)
    th = thr.compute_thresholds(ds, opts, source=cube)
    return save(draw(ds, th, tau), folder)


def _cmd_plot(args: Any) -> int:
    if args.tau is not None and (not math.isfinite(args.tau) or args.tau <= 0):
        raise UsageError(f"--tau {args.tau!r}: must be a finite number > 0")
    for plot in plot_store(args.store, args.out, args.tau, args.partial):
        print(f"{plot.png}  (+ .svg)  {plot.title}")
    return 0


def add_plot_parser(sub: Any) -> Any:
    p = sub.add_parser("plot", help="phase diagrams of a cube (PNG and SVG)")
    p.add_argument("store", help="cube written by `emergence run`")
    p.add_argument("--out", help="output folder (default: <store>.figures beside the store)")
    p.add_argument(
        "--tau", type=float, default=None, metavar="X", help="risk level for k* in the hidden figures (default 1)"
    )
    p.add_argument("--partial", action="store_true", help="draw an unfinished cube (titles say so)")
    p.set_defaults(func=_cmd_plot)
    return p
