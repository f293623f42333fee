"""Experiments ``hidden_fitted`` (``lam`` axis) and ``hidden_spectrum_fitted`` (``spectrum`` axis):
least-squares FIR filters learned from noisy observations (MATH §6.2-§6.5).

Selected by ``experiment = "hidden"`` with ``fit = "least_squares"`` (``pipeline.experiments``
``_VARIANTS``: with a ``spectrum`` axis the spectrum variant, else the ``lam`` one). The learner
is implied (a fitted FIR filter): the grid has no ``learner``. Cube axes
``(<system>, noise_ratio, k, T, trajectories, fit)`` where ``<system>`` is ``lam`` or
``spectrum``, ``trajectories`` is ``m`` (trajectories in one training set) and ``fit`` the
index of a training set (the workflow gives their count, ``fits = 20``). The science is
``pipeline.models.fitted_fir`` (one simulation per (system, noise ratio, fit) serving every
``k``, ``T`` and ``m`` of a block); the static part (:mod:`.static`) is the Kalman solution and
the exact boundedness of ``best_fir`` the existing hidden cubes store.
Workers import this module only: the readers' parts import their modules when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.types import AxisRule, SettingRule, Settings, VariableSpec
from pipeline.experiments.base import Experiment, PackageReaders, at_least_one, positive, str_array
from pipeline.experiments.hidden_fitted import static as static_part
from pipeline.experiments.hidden_spectrum.adapter import HIDDEN_SPECTRUM
from pipeline.models import fitted_fir as model
from pipeline.models.fitted_fir.statistics import check_horizon
from pipeline.models.hidden_spectrum import ObservabilityError

if TYPE_CHECKING:  # imported where used: `emergence run` reads workflows before importing xarray
    import xarray as xr

FIT = "least_squares"

EXAMPLE_LAM = """\
experiment = "hidden"
fit = "least_squares"
name = "example_hidden_fitted"

[grid]
lam = [0.5, 1.0]
noise_ratio = [1.0, 10.0]
k = [1, 2, 4]
T = [3, 100, 1000]
trajectories = [1, 4]
fits = 3
"""

EXAMPLE_SPECTRUM = """\
experiment = "hidden"
fit = "least_squares"
name = "example_hidden_spectrum_fitted"
observation = "sum"

[grid]
spectrum = ["1.0^2", "1.0, 0.5"]
noise_ratio = [1.0, 10.0]
k = [1, 2, 3]
T = [3, 100, 1000]
trajectories = [1, 4]
fits = 3
"""


def _check_fit_setting(value: Any) -> str | None:
    if value != FIT:
        return f"must be {FIT!r} here (the fitted FIR learner); 'best' (the default) is experiment 'hidden'"
    return None


def _check_fits(value: Any) -> str | None:
    """The count of training sets (a bare integer, like ``draw``); becomes indices 0..fits-1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        return "must be an integer count >= 1"
    return None


def _check_lam(value: Any) -> str | None:
    return None if np.isfinite(value) else "must be finite"


class HiddenFittedExperiment(PackageReaders):
    """One class, two registered experiments: the system axis is ``lam`` or ``spectrum``."""

    package = "pipeline.experiments.hidden_fitted"
    methods = ("exact",)
    horizon = "T"
    levels = "tau"

    def __init__(self, system_axis: str) -> None:
        self.system_axis = system_axis
        self.name = "hidden_fitted" if system_axis == "lam" else "hidden_spectrum_fitted"
        self.axes = (system_axis, "noise_ratio", "k", "T", "trajectories", "fit")
        system_rule = (
            AxisRule("lam", "float", "state coefficient lam of x_{t+1} = lam x_t + w_t", "1", check=_check_lam)
            if system_axis == "lam"
            else HIDDEN_SPECTRUM.axis_rules["spectrum"]
        )
        self.axis_rules: Mapping[str, AxisRule] = {
            system_axis: system_rule,
            "noise_ratio": AxisRule("noise_ratio", "float", "observation-noise ratio r/q", "1", check=positive),
            "k": AxisRule("k", "int", "filter length k", "taps", check=at_least_one),
            "T": AxisRule("T", "int", "horizon T (steps of each training trajectory)", "steps", check=at_least_one),
            "trajectories": AxisRule(
                "trajectories", "int", "trajectories m in one training set", "1", check=at_least_one
            ),
            "fit": AxisRule("fit", "int", "index of the training set", "1", check=_check_fits, key="fits"),
        }
        settings: dict[str, SettingRule] = {"fit": SettingRule(FIT, _check_fit_setting)}
        if system_axis == "spectrum":
            settings["observation"] = HIDDEN_SPECTRUM.extra_settings["observation"]
        self.extra_settings: Mapping[str, SettingRule] = settings

    def example_workflow(self, method: str) -> str:
        """Selected through ``experiment = "hidden"`` and ``fit = "least_squares"``, as users write it."""
        return EXAMPLE_LAM if self.system_axis == "lam" else EXAMPLE_SPECTRUM

    # -- the grid and the cube ------------------------------------------------

    def _observation(self, settings: Settings) -> str:
        return str(settings.extra.get("observation", "sum"))

    def resolve_axes(self, axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
        """``fits`` (a count) -> indices ``0..fits-1``; ``k``, ``T``, ``trajectories`` sorted; every
        system checked for the fit (observable, supported, and for an explosive one ``T`` short
        enough: MATH §6.4) at every noise ratio."""
        out: dict[str, np.ndarray] = {}
        for axis, values in axes.items():
            key = self.axis_rules[axis].grid_key
            if axis == "fit":
                count = values.item() if values.ndim == 0 else None
                if count is None or _check_fits(count) or count < 1:
                    raise ConfigError("grid.fits", values.tolist(), "must be an integer count >= 1 (e.g. fits = 20)")
                out[axis] = np.arange(int(count), dtype=np.int64)
            elif values.ndim == 0:
                raise ConfigError(f"grid.{key}", values.item(), "must be a list, or a geom/linspace/range table")
            elif axis in ("k", "T", "trajectories"):
                out[axis] = np.sort(values)
            else:
                out[axis] = values
        observation = self._observation(settings)
        systems = out[self.system_axis]
        if self.system_axis == "spectrum":
            out["spectrum"] = systems = str_array(systems)
        T_max = int(out["T"].max())
        ratio = float(out["noise_ratio"][0])  # the supported range does not depend on the noise ratio
        for s in systems.tolist():
            try:
                fs = model.fitted_system(s, ratio, observation)
            except (ObservabilityError, model.UnsupportedSystem, ValueError) as exc:
                raise ConfigError(f"grid.{self.system_axis}", s, str(exc)) from None
            try:
                check_horizon(fs, T_max)
            except model.UnsupportedSystem as exc:
                raise ConfigError("grid.T", T_max, str(exc)) from None
        return out

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        dims = self.axes
        no_fit = dims[:4]
        return {
            "risk": VariableSpec(
                dims,
                "excess prediction risk R_T of the fitted filter",
                "process-noise variance (q)",
                description="exact given the fitted filter (MATH §6.2); +inf where R_T overflows float64",
            ),
            "log10_risk": VariableSpec(dims, "log10 of R_T of the fitted filter", "log10(q)"),
            "bias": VariableSpec(
                no_fit,
                "exact best_fir risk at T (the m -> infinity limit of the mean risk)",
                "process-noise variance (q)",
                description="0 for k >= T",
            ),
            "log10_bias": VariableSpec(no_fit, "log10 of the exact best_fir risk at T", "log10(q)"),
            "theta": VariableSpec(
                (*dims, "tap"),
                "fitted filter taps theta_j (float64 rounding)",
                "1",
                nan_means="tap > k (NaN-padded to the largest k)",
            ),
            "theta_low": VariableSpec(
                (*dims, "tap"),
                "remainder of theta: theta + theta_low is the fitted filter to ~1e-32 relative",
                "1",
                nan_means="tap > k (NaN-padded to the largest k)",
            ),
            "underdetermined": VariableSpec(dims, "fewer data than taps (k > T): minimum-norm fit", "1", dtype="bool"),
        }

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        return static_part.static(self.system_axis, coords, self._observation(settings))

    def kernel(self, coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
        observation = self._observation(settings)
        taps = static.sizes["tap"]
        parts = []
        for system in coords[self.system_axis].tolist():
            got = model.fitted_fir_block(
                system if self.system_axis == "spectrum" else float(system),
                coords["noise_ratio"],
                coords["k"],
                coords["T"],
                coords["trajectories"],
                coords["fit"],
                seed=settings.seed,
                observation=observation,
            )
            parts.append(got)
        out = {name: np.stack([p[name] for p in parts]) for name in ("risk", "log10_risk", "theta", "theta_lo")}
        out["underdetermined"] = np.stack([p["underdetermined"] for p in parts]).astype(bool)
        out["bias"] = np.stack([p["bias"] for p in parts])
        out["log10_bias"] = np.stack([p["bias_log10"] for p in parts])
        pad = taps - out["theta"].shape[-1]
        for name in ("theta", "theta_lo"):
            out[name] = np.pad(out[name], [(0, 0)] * (out[name].ndim - 1) + [(0, pad)], constant_values=np.nan)
        out["theta_low"] = out.pop("theta_lo")
        return out

    def estimate_seconds(self, coords: Mapping[str, np.ndarray], settings: Settings) -> float:
        """See :mod:`.cost` (measured)."""
        from pipeline.experiments.hidden_fitted.cost import estimate_seconds

        return estimate_seconds(self.system_axis, coords)


HIDDEN_FITTED: Experiment = HiddenFittedExperiment("lam")
HIDDEN_SPECTRUM_FITTED: Experiment = HiddenFittedExperiment("spectrum")
