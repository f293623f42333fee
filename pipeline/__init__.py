"""emergence: exact maps of the parameter phase transition in learning linear systems.

The public API (``pipeline.api``): ``run``, ``open_cube``, ``thresholds``, ``plot``, ``load``,
plus ``Where``, ``RunReport`` and the errors. ``import pipeline`` stays light: the heavy
libraries load when a function needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.api import load, open_cube, plot, run, thresholds
from pipeline.core.errors import RunError, UsageError
from pipeline.driver.where import Where

if TYPE_CHECKING:
    from pipeline.driver.engine import RunReport

__all__ = ["RunError", "RunReport", "UsageError", "Where", "load", "open_cube", "plot", "run", "thresholds"]


def __getattr__(name: str) -> Any:
    if name == "RunReport":  # with the engine, which imports Dask
        from pipeline.driver.engine import RunReport

        return RunReport
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
