"""Measurements on cubes that every experiment's thresholds use (experiment-agnostic).

Growth exponents between the largest horizons, first index reaching a level, the
first index from which a property holds for good, and the mark of values a partial
cube cannot know yet.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core.errors import UsageError

if TYPE_CHECKING:
    import xarray as xr

MEASURED, THEORY, STATIC = "measured", "theory", "static"
"""``attrs["role"]`` of a thresholds variable: measured from result cells, a theory
prediction, or a static quantity of the cube."""


def growth_exponent(log10_risk: xr.DataArray) -> xr.DataArray:
    """``d log R / d log T`` between the two largest horizons (dims of ``log10_risk``
    without ``T``); NaN where a risk is 0 or undefined."""
    T = np.sort(log10_risk["T"].values)
    if T.size < 2:
        raise UsageError("growth exponents need at least two horizons T in the cube")
    t1, t2 = T[-2], T[-1]
    r1 = log10_risk.sel(T=t1, drop=True).load()
    r2 = log10_risk.sel(T=t2, drop=True).load()
    with np.errstate(invalid="ignore"):
        g = (r2 - r1) / (np.log10(float(t2)) - np.log10(float(t1)))
    return g.where(np.isfinite(r1) & np.isfinite(r2))


def growth_horizons(T: np.ndarray) -> tuple[float, float]:
    """The two largest horizons, between which growth exponents are measured."""
    Ts = np.sort(np.asarray(T, dtype=np.float64))
    return float(Ts[-2]), float(Ts[-1])


def first_k_below(risk: np.ndarray, k: np.ndarray, tau: float, axis: int) -> np.ndarray:
    """Smallest ``k`` (sorted ascending along ``axis``) with ``risk <= tau``; NaN if none."""
    ok = np.asarray(risk <= tau)
    idx = np.argmax(ok, axis=axis)
    found = np.any(ok, axis=axis)
    return np.where(found, np.asarray(k, dtype=np.float64)[idx], np.nan)


def first_from_which(ok: np.ndarray, defined: np.ndarray, values: np.ndarray) -> float:
    """Smallest of ``values`` (ascending) such that ``ok`` holds there and at every larger
    defined value; NaN if ``ok`` fails at the largest defined value."""
    best = math.nan
    for i in range(values.size - 1, -1, -1):
        if not defined[i]:
            continue
        if not ok[i]:
            break
        best = float(values[i])
    return best


def measured(data: Any, long_name: str, units: str, dims: tuple[str, ...], **attrs: Any) -> tuple[Any, ...]:
    """An xarray variable tuple for a measured thresholds variable."""
    return dims, data, {"long_name": long_name, "units": units, "role": MEASURED, **attrs}


def theory(data: Any, long_name: str, units: str, dims: tuple[str, ...], **attrs: Any) -> tuple[Any, ...]:
    """An xarray variable tuple for a theory prediction."""
    return dims, data, {"long_name": long_name, "units": units, "role": THEORY, **attrs}


def static(data: Any, long_name: str, units: str, dims: tuple[str, ...], **attrs: Any) -> tuple[Any, ...]:
    """An xarray variable tuple for a static quantity of the cube."""
    return dims, data, {"long_name": long_name, "units": units, "role": STATIC, **attrs}


def known(th: xr.Dataset, name: str, **sel: Any) -> bool:
    """Whether the measured value ``name`` at ``sel`` was drawn from computed cells only
    (always true for a complete cube; see ``thresholds.mask_unknown``)."""
    mask = th.get(f"{name}_known")
    if mask is None:
        return True
    return bool(mask.sel({k: v for k, v in sel.items() if k in mask.dims}).all())
