"""Experiment ``observed``: best-in-class risk of fully observed linear systems (MATH section 1).

Cube axes ``(spectrum, family, learner_family, d, T, draw)``. This module wires the
experiment's parts together: its grid (``axes``), static part (``static``), block kernel
(``kernel``), cost model (``cost``) and readers (``thresholds``, ``report``, ``figures``).
``learner_family = same`` (the default) is the cube of MATH section 1.3, bit for bit as
before the axis existed. Workers import this module only: the readers' parts import
their modules when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.types import AxisRule, SettingRule, Settings, VariableSpec
from pipeline.experiments.base import Experiment, PackageReaders
from pipeline.experiments.observed import cost
from pipeline.experiments.observed import kernel as block_kernel
from pipeline.experiments.observed import static as static_part
from pipeline.experiments.observed.axes import AXES, AXIS_RULES, EXTRA_SETTINGS, UNDEFINED, resolve_axes

if TYPE_CHECKING:  # imported where used: `emergence run` reads workflows before importing xarray
    import xarray as xr

    from pipeline.experiments.base import DrawnFigure

EXAMPLE = """\
experiment = "observed"
name = "example_observed"
method = "{method}"
mc_samples = 20

[grid]
spectrum = ["1.0^2, 0.5", "1.05@30"]
family = ["block", "similarity"]
learner_family = {learners}
d = "all"
T = {horizons}
draw = 2
"""


class ObservedExperiment(PackageReaders):
    name = "observed"
    package = "pipeline.experiments.observed"
    axes = AXES
    axis_rules: Mapping[str, AxisRule] = AXIS_RULES
    extra_settings: Mapping[str, SettingRule] = EXTRA_SETTINGS
    methods = ("exact", "montecarlo")
    horizon = "T"
    levels = None

    def example_workflow(self, method: str) -> str:
        """Monte Carlo takes only the adversary's own learner family (``same``)."""
        if method == "montecarlo":
            return EXAMPLE.format(method=method, learners='["same"]', horizons="[10, 100]")
        return EXAMPLE.format(method=method, learners='["same", "diagonal", "full"]', horizons="[10, 1000]")

    def resolve_axes(self, axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
        """Checked, resolved axes (see ``axes.resolve_axes``)."""
        return resolve_axes(axes, settings)

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        cube = AXES
        exact = settings.method != "montecarlo"
        how = "exact" if exact else "Monte Carlo estimate of the"
        out = {
            "risk": VariableSpec(
                cube,
                "best-in-class risk per unit squared perturbation",
                "process-noise variance",
                description=f"{how} r_T(d) = min_phi tr((H - sum phi_i B_i) Sigmabar_T (.)')",
                nan_means=UNDEFINED,
            ),
            "log10_risk": VariableSpec(
                cube,
                "log10 of the best-in-class risk",
                "log10(process-noise variance)",
                description="finite where the risk overflows float64; -inf where it is exactly 0",
                nan_means=UNDEFINED,
            ),
            "kl_rate": VariableSpec(
                cube,
                "KL risk rate (risk / 2)",
                "nats per step",
                nan_means=UNDEFINED,
            ),
            "bounded": VariableSpec(
                ("spectrum", "family", "learner_family", "d", "draw"),
                "best-in-class risk bounded in T",
                "1",
                dtype="bool",
                description="rank test: some phi makes H - sum phi_i B_i vanish on V_u",
            ),
        }
        if not exact:
            out["risk_stderr"] = VariableSpec(
                cube,
                "standard error of the Monte Carlo risk",
                "process-noise variance",
                nan_means=UNDEFINED,
            )
        return out

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        return static_part.static(coords, settings)

    def kernel(self, coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
        return block_kernel.kernel(coords, static, settings)

    def estimate_seconds(self, coords: Mapping[str, np.ndarray], settings: Settings) -> float:
        return cost.estimate_seconds(coords, settings)

    def adapt(self, ds: xr.Dataset) -> xr.Dataset:
        """Cubes of the first format stored the theory d* as ``critical_d``; cubes from
        before the ``learner_family`` axis read as ``learner_family = same``."""
        from pipeline.experiments.observed.thresholds import with_learner_axis

        if "critical_d" in ds and "critical_d_theory" not in ds:
            ds = ds.rename_vars({"critical_d": "critical_d_theory"})
        return with_learner_axis(ds)

    def figures(self, ds: xr.Dataset, th: xr.Dataset, tau: float | None) -> list[DrawnFigure]:
        """Every figure of the cube (no ``k*`` here: ``tau`` is not used)."""
        return list(self._module("figures").figures(ds, th))


OBSERVED: Experiment = ObservedExperiment()
