"""``emergence summary``: a few lines on what a cube shows (used by ``make demo``)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline import store
from pipeline.inspect import cube_info


def growth_exponent(log10_risk: xr.DataArray) -> xr.DataArray:
    """d log R / d log T between the two largest horizons (T must be the last-sorted axis)."""
    T = log10_risk["T"].values
    order = np.argsort(T)
    t1, t2 = T[order[-2]], T[order[-1]]
    r1, r2 = log10_risk.sel(T=t1), log10_risk.sel(T=t2)
    with np.errstate(invalid="ignore"):
        g = (r2 - r1) / (np.log10(t2) - np.log10(t1))
    return g.where(np.isfinite(r1) & np.isfinite(r2))


def summarize(location: store.StoreLocation) -> str:
    info = cube_info(location)
    ds = store.open_cube(location)
    axes = ds["risk"].dims
    shape = " x ".join(f"{ds.sizes[d]} {d}" for d in axes)
    head = [f"{location.url} ({info['provenance']['experiment']}): {shape}; "
            f"blocks {info['blocks_done']}/{info['blocks_total']} done"]
    if info["provenance"]["experiment"] == "hidden":
        return "\n".join(head + _hidden(ds))
    return "\n".join(head + _observed(ds))


def _hidden(ds: xr.Dataset) -> list[str]:
    if ds.sizes["T"] < 2:
        return ["(one horizon only: no growth exponents)"]
    g = growth_exponent(ds["log10_risk"]).load()
    Tmax = int(ds["T"].max())
    kmin, kmax = int(ds["k"].min()), int(ds["k"].max())
    lines = _hidden_findings(ds, g, Tmax, kmax)
    lines.append(f"growth exponent g = dlog R/dlog T at T = {Tmax:.3g} (g ~ 1: diverges linearly; g ~ 0: bounded)")
    lines.append(f"{'lam':>6} {'noise':>8} {'a':>7} | {'trunc k=' + str(kmin):>12} {'trunc k=' + str(kmax):>12}"
                 f" | {'bestfir k=' + str(kmin):>13} {'bestfir k=' + str(kmax):>13}")
    for lam in ds["lam"].values:
        for ratio in ds["noise_ratio"].values:
            cells = []
            for learner in ("truncated_kalman", "best_fir"):
                if learner not in ds["learner"].values:
                    cells += ["-", "-"]
                    continue
                for k in (kmin, kmax):
                    v = float(g.sel(lam=lam, noise_ratio=ratio, learner=learner, k=k))
                    cells.append("0 risk" if np.isnan(v) else f"{v:.2f}")
            a = float(ds["a"].sel(lam=lam, noise_ratio=ratio))
            lines.append(f"{lam:6.3g} {ratio:8.3g} {a:7.3f} | {cells[0]:>12} {cells[1]:>12} | "
                         f"{cells[2]:>13} {cells[3]:>13}")
    return lines


def _regime(values: np.ndarray) -> str:
    """Describe growth exponents over k (NaN where the risk is 0)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "zero risk"
    top = float(np.max(finite))
    if top < 0.1:
        return "bounded in T"
    if top > 5:
        return "grows exponentially in T"
    return f"grows like T^{top:.2f}"


def _hidden_findings(ds: xr.Dataset, g: xr.DataArray, Tmax: int, kmax: int) -> list[str]:
    """One sentence per (lam, learner), plus k* at the largest horizon for lam = 1."""
    lines = ["findings:"]
    for lam in ds["lam"].values:
        for learner in ds["learner"].values:
            regime = _regime(g.sel(lam=lam, learner=learner).values)
            lines.append(f"  lam = {lam:g}, {learner}: risk {regime} (every noise ratio, k <= {kmax})")
    if 1.0 in ds["lam"].values and "truncated_kalman" in ds["learner"].values:
        risk = ds["risk"].sel(lam=1.0, learner="truncated_kalman", T=Tmax).load()
        a = ds["a"].sel(lam=1.0).values
        parts = []
        for ratio, a_value in zip(ds["noise_ratio"].values, a, strict=True):
            ok = risk.sel(noise_ratio=ratio).values <= 1.0
            k_star = f"{int(ds['k'].values[np.argmax(ok)])}" if ok.any() else f">{kmax}"
            theory = np.log(Tmax / 2.0) / (2.0 * np.log(1.0 / a_value))
            parts.append(f"r={ratio:.3g}: {k_star} (theory ~{theory:.0f})")
        lines.append(f"  lam = 1, truncated_kalman: taps needed for R_T <= 1 at T = {Tmax:.0e}: " + ", ".join(parts))
    return lines


def _observed(ds: xr.Dataset) -> list[str]:
    lines = ["critical parameter count d* (closed forms of MATH §1.4; `emergence thresholds` measures it):"]
    crit = ds["critical_d"].load()
    for spectrum in ds["spectrum"].values:
        parts = [f"{f}={int(crit.sel(spectrum=spectrum, family=f))}" for f in ds["family"].values]
        lines.append(f"  {str(spectrum):24s} " + "  ".join(parts))
    return lines
