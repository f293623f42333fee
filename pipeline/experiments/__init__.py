"""Registry: experiment name -> Experiment (see ``base.py`` for the interface).

Adding an experiment: its model in ``pipeline/models/``, its package here, one line below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pipeline.core.errors import UsageError

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import Experiment

_REGISTRY = {
    "hidden": ("pipeline.experiments.hidden.adapter", "HIDDEN"),
    "hidden_spectrum": ("pipeline.experiments.hidden_spectrum.adapter", "HIDDEN_SPECTRUM"),
    "observed": ("pipeline.experiments.observed.adapter", "OBSERVED"),
}


# A workflow's ``experiment`` may name a family whose variant its grid picks: the hidden
# experiment with a ``spectrum`` axis (in place of ``lam``) is ``hidden_spectrum``.
_VARIANTS: dict[str, tuple[str, str]] = {"hidden": ("spectrum", "hidden_spectrum")}


def resolve_experiment(name: str, grid: object) -> str:
    """The registry key a workflow runs: ``name``, or its variant when ``grid`` (the
    workflow's ``[grid]`` table) has the variant's distinguishing axis."""
    variant = _VARIANTS.get(name)
    if variant is not None and isinstance(grid, dict) and variant[0] in grid:
        return variant[1]
    return name


def known_experiments() -> list[str]:
    return sorted(_REGISTRY)


def experiment_module(name: str) -> str:
    """The module that defines experiment ``name`` (what a worker should preload)."""
    return _REGISTRY[name][0]


def get_experiment(name: str) -> Experiment:
    module, attribute = _REGISTRY[name]
    experiment: Experiment = getattr(importlib.import_module(module), attribute)
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
