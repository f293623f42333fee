"""Figures of a hidden-spectrum cube (not drawn yet: see the module's issue 12)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xarray as xr

    from pipeline.experiments.base import DrawnFigure


def figures(ds: xr.Dataset, th: xr.Dataset, tau: float) -> list[DrawnFigure]:
    """No figures yet (an empty list): the cube, its thresholds and their table are complete."""
    return []
