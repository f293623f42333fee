"""Figures a paper can print: valid labelled images, collision-free names, legends with their
artists, colour scales that cover the data, byte-stable files."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import xarray as xr
from matplotlib import image

from pipeline.core import plotting
from pipeline.core.errors import UsageError
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from tests.helpers import synthetic_hidden, synthetic_observed


def check_image(saved: plots.SavedFigure, workflow: str) -> None:
    pixels = image.imread(saved.png)
    height, width = pixels.shape[:2]
    assert width >= 600 and height >= 300, (saved.png, pixels.shape)
    rgb = pixels[..., :3]
    assert rgb.std() > 0.05, f"{saved.png} looks blank"
    assert (rgb < 0.5).mean() > 0.01  # some ink: text, lines, dark colours
    assert ET.parse(saved.svg).getroot().tag.endswith("svg")
    assert saved.svg.stat().st_size > 5_000
    assert workflow in saved.title and saved.caption.endswith(".")


@pytest.mark.slow
def test_hidden_figures(tmp_path):
    ds = synthetic_hidden()
    saved = plots.save(plots.draw(ds, tau=1.0), tmp_path / "fig")
    assert sorted(p.png.stem for p in saved) == [
        "synthetic_hidden_kstar_lam1.0",
        "synthetic_hidden_pole_slope",
        "synthetic_hidden_risk_lam1.0_best_fir",
        "synthetic_hidden_risk_lam1.0_truncated_kalman",
    ]
    for p in saved:
        check_image(p, "synthetic_hidden")


@pytest.mark.slow
def test_observed_figures(tmp_path):
    saved = plots.save(plots.draw(synthetic_observed().isel(spectrum=[0, 1])), tmp_path)
    assert len(saved) == 3  # two spectra + the bounded map
    for p in saved:
        check_image(p, "synthetic_observed")


def test_every_legend_entry_has_its_artist():
    """A legend names only what is drawn: a theory entry needs a drawn theory line (dashed)."""
    ds = xr.concat([synthetic_hidden().assign_coords(lam=[v]) for v in (0.9, 1.0)], dim="lam")
    for drawn in plots.draw(ds, tau=1.0) + plots.draw(synthetic_observed()):
        lines = [line for ax in drawn.figure.axes for line in ax.get_lines()]
        dashed = [
            line
            for line in lines
            if line.get_linestyle() == "--" and np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any()
        ]
        labelled = {line.get_label() for line in lines}
        labelled |= {c.get_label() for ax in drawn.figure.axes for c in ax.containers}  # error bars
        meshes = [m for ax in drawn.figure.axes for m in ax.collections if hasattr(m, "get_array")]
        masked = any(np.ma.is_masked(m.get_array()) for m in meshes)
        verdict_labels = set(plotting.verdict_handles()[1]) if any(ax.containers for ax in drawn.figure.axes) else set()
        legends = [*drawn.figure.legends, *(ax.get_legend() for ax in drawn.figure.axes if ax.get_legend())]
        for legend in legends:
            for text in legend.get_texts():
                label = text.get_text()
                proxy = label.startswith("theory") and bool(dashed)  # a legend proxy for dashed theory lines
                proxy |= label in verdict_labels  # how measured values are drawn by verdict
                proxy |= label.startswith("d > family dimension") and masked  # the grey (undefined) cells
                assert label in labelled or proxy, (drawn.stem, label)


def test_labels_are_mathtext_with_units():
    drawn = {d.stem: d.figure for d in plots.draw(synthetic_hidden(), tau=1.0)}
    fig = drawn["synthetic_hidden_risk_lam1.0_truncated_kalman"]
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert r"horizon $T$ (steps)" in labels and r"filter length $k$ (taps)" in labels
    assert any(label.startswith(r"$\log_{10} R_T$") and "$q$" in label for label in labels)


def test_colour_scale_covers_the_data_and_marks_exact_zeros():
    ds = synthetic_hidden()
    ds["log10_risk"] = ds["log10_risk"] * 1000.0  # an explosive range
    ds["log10_risk"][0, 0, 1, 0, 0] = -np.inf  # an exact zero
    drawn = {d.stem: d.figure for d in plots.draw(ds, thr.compute_thresholds(ds), 1.0)}
    fig = drawn["synthetic_hidden_risk_lam1.0_best_fir"]
    mesh = fig.axes[0].collections[0]
    finite = ds["log10_risk"].sel(learner="best_fir").values
    finite = finite[np.isfinite(finite)]
    assert mesh.norm.vmin == finite.min() and mesh.norm.vmax == finite.max()
    bar = fig.axes[-1]
    assert "symlog" in bar.get_ylabel() and "\n" not in bar.get_ylabel()  # one line
    assert any("risk = 0" in t.get_text() for t in bar.texts)  # said below the bar, beside the zero colour


def test_symlog_colour_bar_has_ticks_on_both_sides_of_zero():
    ds = synthetic_hidden()
    ds["log10_risk"] = ds["log10_risk"] * 30.0 - 220.0  # from about -400 up to +5: no power of ten above 0
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = {d.stem: d.figure for d in plots.draw(ds, thr.compute_thresholds(ds), 1.0)}[
        "synthetic_hidden_risk_lam1.0_truncated_kalman"
    ]
    FigureCanvasAgg(fig).draw()
    bar = fig.axes[-1]
    labels = {float(t.get_position()[1]): t.get_text() for t in bar.get_yticklabels()}
    assert any(v > 0 for v in labels) and any(v < 0 for v in labels) and 0.0 in labels
    assert all(labels.values())  # every tick labelled
    assert plotting.symlog_ticks(-300.0, 7.6) == [-100.0, -10.0, 0.0, 7.0]


def test_slope_axis_fits_the_slopes():
    fig = {d.stem: d.figure for d in plots.draw(synthetic_hidden(), tau=1.0)}["synthetic_hidden_pole_slope"]
    ax = fig.axes[1]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0.0


def test_plot_rejects_unknown_tau():
    ds = synthetic_hidden()
    with pytest.raises(UsageError, match=r"--tau 0\.5"):
        plots.draw(ds, thr.compute_thresholds(ds, thr.options([1.0])), tau=0.5)


def test_stems_tell_every_value_apart():
    stems = plotting.stems(["1.0^2", "1.0, 2", "0.5@45", "0.5, 45", "1.0^[2,1]", "1.0^2, 1"])
    assert len(set(stems.values())) == 6
    assert stems["1.0^2"] == "1.0p2" and stems["0.5@45"] == "0.5at45"
    assert stems["1.0^[2,1]"].startswith("1.0p2_1-") and stems["1.0^2, 1"].startswith("1.0p2_1-")
    assert plotting.stems([1.0, 1.0000001]) == {"1.0": "1.0", "1.0000001": "1.0000001"}


def test_edges_are_geometric_midpoints():
    np.testing.assert_allclose(
        plotting.edges(np.array([10, 100, 1000]), log=True), [10**0.5, 10**1.5, 10**2.5, 10**3.5]
    )
