"""Registry: experiment name -> Experiment (see ``base.py`` for the interface).

Adding an experiment: its model in ``pipeline/models/``, its package here (an adapter module
whose instance is annotated ``Experiment``, and its readers), one line in ``_REGISTRY``; if a
workflow selects it through another experiment's name (by a grid axis or a top-level
setting), one line in ``_VARIANTS`` too. ``tests/experiments/test_every_experiment.py``
then holds it to the bar every experiment meets.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import UsageError

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import Experiment

_REGISTRY = {
    "hidden": ("pipeline.experiments.hidden.adapter", "HIDDEN"),
    "hidden_fitted": ("pipeline.experiments.hidden_fitted.adapter", "HIDDEN_FITTED"),
    "hidden_spectrum": ("pipeline.experiments.hidden_spectrum.adapter", "HIDDEN_SPECTRUM"),
    "hidden_spectrum_fitted": ("pipeline.experiments.hidden_fitted.adapter", "HIDDEN_SPECTRUM_FITTED"),
    "observed": ("pipeline.experiments.observed.adapter", "OBSERVED"),
    "observed_fitted": ("pipeline.experiments.observed_fitted.adapter", "OBSERVED_FITTED"),
}


@dataclass(frozen=True)
class Variant:
    """A registered experiment a workflow reaches through another's name: ``experiment =
    family`` runs ``key`` when its ``[grid]`` has the axis ``axis`` and (or) its top-level
    ``setting`` has the value ``value``."""

    family: str
    key: str
    axis: str | None = None
    setting: str | None = None
    value: object = None

    def selected_by(self, raw: Mapping[str, Any]) -> bool:
        """Whether the workflow ``raw`` (its parsed TOML) selects this variant."""
        grid = raw.get("grid")
        if self.axis is not None and not (isinstance(grid, dict) and self.axis in grid):
            return False
        return self.setting is None or (self.setting in raw and raw[self.setting] == self.value)


# First match wins: a variant that needs more goes before one that needs less.
_VARIANTS: tuple[Variant, ...] = (
    Variant("hidden", "hidden_spectrum_fitted", axis="spectrum", setting="fit", value="least_squares"),
    Variant("hidden", "hidden_fitted", setting="fit", value="least_squares"),
    Variant("observed", "observed_fitted", setting="fit", value="least_squares"),
    Variant("hidden", "hidden_spectrum", axis="spectrum"),
)


def resolve_experiment(name: str, raw: Mapping[str, Any]) -> str:
    """The registry key a workflow runs: ``name``, or the first of its variants that the
    workflow ``raw`` (its parsed TOML) selects."""
    for variant in _VARIANTS:
        if variant.family == name and variant.selected_by(raw):
            return variant.key
    return name


def known_experiments() -> list[str]:
    return sorted(_REGISTRY)


def experiment_module(name: str) -> str:
    """The module that defines experiment ``name`` (what a worker should preload)."""
    return _REGISTRY[name][0]


_LOADED: dict[str, Experiment] = {}


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name``; TypeError if its object lacks a member of the
    ``Experiment`` protocol (mypy checks the types, this the presence)."""
    found = _LOADED.get(name)
    if found is not None:
        return found
    from pipeline.experiments.base import Experiment

    module, attribute = _REGISTRY[name]
    experiment = getattr(importlib.import_module(module), attribute)
    if not isinstance(experiment, Experiment):
        raise TypeError(f"{module}.{attribute} does not implement the Experiment protocol")
    if experiment.name != name:
        raise TypeError(f"{module}.{attribute} is named {experiment.name!r}, registered as {name!r}")
    _LOADED[name] = experiment
    return experiment


def experiment_of(ds: xr.Dataset) -> Experiment:
    """The experiment a cube or thresholds dataset was made by (its ``experiment`` attribute)."""
    name = ds.attrs.get("experiment")
    if name not in _REGISTRY:
        raise UsageError(
            f"cannot tell which experiment made this dataset (experiment attribute {name!r}; "
            f"known: {known_experiments()})"
        )
    return get_experiment(str(name))
