"""Plots produce valid, labelled images (PNG size and content, parseable SVG)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib import image

from pipeline import plots
from pipeline.errors import UsageError
from tests.test_thresholds import synthetic_hidden, synthetic_observed


def check_image(plot: plots.Plot, workflow: str) -> None:
    pixels = image.imread(plot.png)
    height, width = pixels.shape[:2]
    assert width >= 600 and height >= 300, (plot.png, pixels.shape)
    rgb = pixels[..., :3]
    assert rgb.std() > 0.05, f"{plot.png} looks blank"
    assert (rgb < 0.5).mean() > 0.01  # some ink: text, lines, dark colours
    root = ET.parse(plot.svg).getroot()
    assert root.tag.endswith("svg")
    assert plot.svg.stat().st_size > 5_000
    assert workflow in plot.title and plot.caption.endswith(".")


def test_hidden_plots(tmp_path):
    ds = synthetic_hidden()
    made = plots.plot_dataset(ds, tmp_path / "fig", tau=1.0)
    stems = sorted(p.png.stem for p in made)
    assert stems == ["synthetic_hidden_kstar_lam1", "synthetic_hidden_pole_slope",
                     "synthetic_hidden_risk_lam1_best_fir", "synthetic_hidden_risk_lam1_truncated_kalman"]
    for p in made:
        check_image(p, "synthetic_hidden")
    svg = (tmp_path / "fig" / "synthetic_hidden_risk_lam1_truncated_kalman.svg").read_text()
    for label in ("horizon T (steps)", "filter length k (taps)", "log10 R_T", "synthetic_hidden"):
        assert label in svg


def test_observed_plots(tmp_path):
    made = plots.plot_dataset(synthetic_observed().isel(spectrum=[0, 1]), tmp_path)
    assert len(made) == 3  # two spectra + the bounded map
    for p in made:
        check_image(p, "synthetic_observed")
    svg = (tmp_path / "synthetic_observed_bounded.svg").read_text()
    for label in ("learner parameters d", "fraction of draws with bounded risk", "theory d*", "1.0^[1,1]"):
        assert label in svg


def test_plot_rejects_unknown_tau(tmp_path):
    from pipeline import thresholds

    ds = synthetic_hidden()
    th = thresholds.compute_thresholds(ds, taus=[1.0])
    with pytest.raises(UsageError):
        plots.plot_dataset(ds, tmp_path, th=th, tau=0.5)


def test_edges_are_geometric_midpoints():
    np.testing.assert_allclose(plots._edges(np.array([10, 100, 1000]), log=True),
                               [10 ** 0.5, 10 ** 1.5, 10 ** 2.5, 10 ** 3.5])
