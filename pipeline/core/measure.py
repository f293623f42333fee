"""Measurements on cubes that every experiment's thresholds use (experiment-agnostic).

Growth exponents between the largest horizons (and the window before, to tell a settled
growth from a transient) with their Monte Carlo standard errors, first index reaching a
level, the first index from which a property holds for good, and the mark of values a
partial cube cannot know yet.
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


def growth_exponent(log10_risk: xr.DataArray, window: int = 1) -> xr.DataArray:
    """``d log R / d log T`` between neighbouring horizons (dims of ``log10_risk`` without
    ``T``): ``window = 1`` between the two largest, ``2`` between the second and third largest
    (the window before, which tells whether the growth has settled); NaN where a risk is 0 or
    undefined, and everywhere when the cube has too few horizons for that window."""
    T = np.sort(log10_risk["T"].values)
    if T.size < 2:
        raise UsageError("growth exponents need at least two horizons T in the cube")
    if T.size < window + 1:
        return _nan_like(log10_risk.isel(T=0, drop=True))
    t1, t2 = T[-window - 1], T[-window]
    r1 = log10_risk.sel(T=t1, drop=True).load()
    r2 = log10_risk.sel(T=t2, drop=True).load()
    with np.errstate(invalid="ignore"):
        g = (r2 - r1) / (np.log10(float(t2)) - np.log10(float(t1)))
    return g.where(np.isfinite(r1) & np.isfinite(r2))


def _nan_like(a: xr.DataArray) -> xr.DataArray:
    """``a`` filled with NaN (float64)."""
    return a.astype(np.float64).load() * np.nan


def growth_stderr(ds: xr.Dataset) -> xr.DataArray | None:
    """Standard error of the growth exponent between the two largest horizons of a Monte Carlo
    cube, from ``risk_stderr``: ``sqrt((s1/R1)^2 + (s2/R2)^2) / ln(T2/T1)`` (NaN where a risk is
    0); ``None`` for an exact cube (no sampling noise)."""
    if "risk_stderr" not in ds:
        return None
    t1, t2 = growth_horizons(ds["T"].values)
    r1, r2 = (ds["risk"].sel(T=t, drop=True).load() for t in (t1, t2))
    s1, s2 = (ds["risk_stderr"].sel(T=t, drop=True).load() for t in (t1, t2))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.sqrt((s1 / r1) ** 2 + (s2 / r2) ** 2)
    return (rel / np.log(t2 / t1)).where((r1 > 0) & (r2 > 0))


def growth_horizons(T: np.ndarray, window: int = 1) -> tuple[float, float]:
    """The horizons between which growth exponents of ``window`` are measured (1: the two
    largest; NaN for a window the horizons do not have)."""
    Ts = np.sort(np.asarray(T, dtype=np.float64))
    if Ts.size < window + 1:
        return math.nan, math.nan
    return float(Ts[-window - 1]), float(Ts[-window])


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
