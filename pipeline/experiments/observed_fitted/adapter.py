"""Experiment ``observed_fitted``: least-squares learners of fully observed systems fitted to
simulated trajectories, evaluated exactly (MATH.md section 6.1).

Reached as ``experiment = "observed"`` with ``fit = "least_squares"``. Cube axes
``(spectrum, family, draw, learner_family, d, T, trajectories, fit)``; this module wires
the grid (``axes``), static part (``static``), block kernel (``kernel``), cost model
(``cost``) and readers (``thresholds``, ``report``, ``figures``). Workers import this
module only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.types import AxisRule, SettingRule, Settings, VariableSpec
from pipeline.experiments.base import Experiment, PackageReaders
from pipeline.experiments.observed_fitted import cost
from pipeline.experiments.observed_fitted import kernel as block_kernel
from pipeline.experiments.observed_fitted import static as static_part
from pipeline.experiments.observed_fitted.axes import AXES, AXIS_RULES, EXTRA_SETTINGS, UNDEFINED, resolve_axes

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import DrawnFigure

EXAMPLE = """\
experiment = "observed"
fit = "least_squares"
name = "example_observed_fitted"
method = "{method}"

[grid]
spectrum = ["1.0^2, 0.5", "0.5"]
learner_family = ["leading", "full"]
d = [1, 4, 9]
T = [4, 12]
trajectories = [1, 3]
fits = 3
"""

BIAS_DIMS = ("spectrum", "family", "draw", "learner_family", "d", "T")


class ObservedFittedExperiment(PackageReaders):
    name = "observed_fitted"
    package = "pipeline.experiments.observed_fitted"
    axes = AXES
    axis_rules: Mapping[str, AxisRule] = AXIS_RULES
    extra_settings: Mapping[str, SettingRule] = EXTRA_SETTINGS
    methods = ("exact",)
    horizon = "T"
    levels = None

    def example_workflow(self, method: str) -> str:
        return EXAMPLE.format(method=method)

    def resolve_axes(self, axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
        """Checked, resolved axes (see ``axes.resolve_axes``)."""
        return resolve_axes(axes, settings)

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        cube = AXES
        return {
            "risk": VariableSpec(
                cube,
                "risk of the fitted learner on a fresh trajectory",
                "process-noise variance",
                description="exact R_T(Ahat) = tr((A - Ahat) Sigmabar_T (A - Ahat)') given the fitted phi "
                "(inf where it overflows float64)",
                nan_means=UNDEFINED,
            ),
            "log10_risk": VariableSpec(
                cube,
                "log10 of the fitted learner's risk",
                "log10(process-noise variance)",
                description="finite where the risk overflows float64",
                nan_means=UNDEFINED,
            ),
            "underdetermined": VariableSpec(
                cube,
                "fit had fewer data than parameters (minimum-norm solution)",
                "1",
                dtype="bool",
            ),
            "phi": VariableSpec(
                (*cube, "param"),
                "fitted parameters phi_i of Ahat = A0 + sum phi_i B_i",
                "1",
                description="NaN beyond d (padded to the largest learner dimension)",
                nan_means="parameter index >= d, or d > learner_dim",
            ),
            "bias": VariableSpec(
                BIAS_DIMS,
                "best-in-class risk (the m -> infinity limit)",
                "process-noise variance",
                description="exact r_T(d) of the learner's first d directions with its nominal model",
                nan_means=UNDEFINED,
            ),
            "log10_bias": VariableSpec(
                BIAS_DIMS,
                "log10 of the best-in-class risk",
                "log10(process-noise variance)",
                description="-inf where the class holds A exactly",
                nan_means=UNDEFINED,
            ),
        }

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        return static_part.static(coords, settings)

    def kernel(self, coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
        return block_kernel.kernel(coords, static, settings)

    def estimate_seconds(self, coords: Mapping[str, np.ndarray], settings: Settings) -> float:
        return cost.estimate_seconds(coords, settings)

    def figures(self, ds: xr.Dataset, th: xr.Dataset, tau: float | None) -> list[DrawnFigure]:
        """Every figure of the cube (no levels: ``tau`` is not used)."""
        return list(self._module("figures").figures(ds, th))


OBSERVED_FITTED: Experiment = ObservedFittedExperiment()
