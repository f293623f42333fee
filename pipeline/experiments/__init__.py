"""Registry: experiment name -> Experiment (see ``base.py`` for the interface)."""

from __future__ import annotations

import importlib

from pipeline.experiments.base import Experiment

_REGISTRY = {
    "hidden": ("pipeline.experiments.hidden", "HIDDEN"),
    "observed": ("pipeline.experiments.observed", "OBSERVED"),
}


def known_experiments() -> list[str]:
    return sorted(_REGISTRY)


def experiment_module(name: str) -> str:
    """The module that defines experiment ``name`` (what a worker should preload)."""
    return _REGISTRY[name][0]


def get_experiment(name: str) -> Experiment:
    module, attribute = _REGISTRY[name]
    return getattr(importlib.import_module(module), attribute)
