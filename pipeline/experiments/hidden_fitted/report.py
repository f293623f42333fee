"""Text of a fitted-filter cube's thresholds: the table, the disagreements with theory, the summary.

A value drawn from uncomputed cells of a partial cube is printed as ``not known yet`` (the
readers mask it, ``pipeline.readers.thresholding.mask_unknown``): no finding comes from them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import verdicts as vd
from pipeline.core.measure import known
from pipeline.core.wording import fmt
from pipeline.experiments.hidden_fitted.thresholds import DECAY_TOL, system_axis

if TYPE_CHECKING:
    import xarray as xr


def _k(v: float, k_max: float) -> str:
    return f">{k_max:g}" if math.isnan(v) else str(int(v))


def _system(th: xr.Dataset, value: Any) -> str:
    sa = system_axis(th)
    return f"spectrum {str(value)!r}" if sa == "spectrum" else f"lam {fmt(float(value))}"


def _disagreeing(th: xr.Dataset, name: str) -> list[dict[str, Any]]:
    verdict = th[f"{name}_verdict"]
    hits = np.argwhere(vd.as_text(verdict.values) == vd.DISAGREES)
    return [{str(d): th[d].values[i] for d, i in zip(verdict.dims, at, strict=True)} for at in hits]


def disagreements(th: xr.Dataset) -> list[str]:
    """One line per learned critical length or excess decay whose verdict is ``disagrees``."""
    sa = system_axis(th)
    k_max = float(th["k"].max())
    lines = []
    for sel in _disagreeing(th, "critical_k_learned"):
        lines.append(
            f"{_system(th, sel[sa])}, noise ratio {fmt(float(sel['noise_ratio']))}, m = {int(sel['trajectories'])}: "
            f"learned critical k {_k(float(th['critical_k_learned'].sel(sel)), k_max)} vs k_c = n_u = "
            f"{int(th['critical_k_theory'].sel({sa: sel[sa]}))} (growth_tol {float(th.attrs['growth_tol']):g})"
        )
    for sel in _disagreeing(th, "excess_decay"):
        lines.append(
            f"{_system(th, sel[sa])}, noise ratio {fmt(float(sel['noise_ratio']))}, k = {int(sel['k'])}, "
            f"m = {int(sel['trajectories'])}: excess decays like (mT)^{float(th['excess_decay'].sel(sel)):.3g} "
            f"vs theory -1 (tolerance {DECAY_TOL:g})"
        )
    return lines


def _cells(th: xr.Dataset, name: str, sel: dict[str, Any], k_max: float) -> str:
    values = th[name].sel(sel)
    out = []
    for ratio in th["noise_ratio"].values:
        if not known(th, name, **sel, noise_ratio=ratio):
            out.append("?")
        else:
            out.append(_k(float(values.sel(noise_ratio=ratio)), k_max))
    return ",".join(out)


def table(th: xr.Dataset) -> list[str]:
    """Per system and m: the learned critical k per noise ratio beside n_u and its verdicts;
    k_opt at the largest T per noise ratio; the median excess decay exponent beside -1."""
    sa = system_axis(th)
    k_max = float(th["k"].max())
    T_max = th["T"].values.max()
    ratios = ", ".join(fmt(float(r)) for r in th["noise_ratio"].values)
    lines = [
        f"per system and m (trajectories), values per noise ratio {ratios} "
        f"(?: not known yet; >{k_max:g}: no k of the cube); {th.attrs.get('fits', '?')} fits",
        f"system | n_u | m | learned critical k / theory | verdicts | k_opt at T = {fmt(float(T_max))} | "
        "excess decay in mT (k >= n_u, median) / theory | verdicts",
    ]
    for s in th[sa].values:
        n_u = int(th["n_unstable"].sel({sa: s}))
        for mv in th["trajectories"].values:
            sel = {sa: s, "trajectories": mv}
            crit = _cells(th, "critical_k_learned", sel, k_max)
            kopt = _cells(th, "k_opt", sel | {"T": T_max}, k_max)
            decay = th["excess_decay"].sel(sel).values
            finite = decay[np.isfinite(decay)]
            dshown = fmt(float(np.median(finite)), ".3g") if finite.size else "-"
            lines.append(
                f"{_system(th, s)} | {n_u} | {int(mv)} | {crit} / {n_u} | "
                f"{vd.counts_text(vd.counts_of(th['critical_k_learned_verdict'].sel(sel).values))} | {kopt} | "
                f"{dshown} / -1 | {vd.counts_text(vd.counts_of(th['excess_decay_verdict'].sel(sel).values))}"
            )
    return lines


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """One line per system: the learned critical length at the largest m against n_u, and how k_opt
    moves with m at the largest T; a system with no computed cell says "not known yet"."""
    sa = system_axis(th)
    k_max = float(th["k"].max())
    m_max = th["trajectories"].values.max()
    T_max = th["T"].values.max()
    out = []
    for s in th[sa].values:
        head = f"{_system(th, s)} (n_u = {int(th['n_unstable'].sel({sa: s}))}): "
        sel = {sa: s, "trajectories": m_max}
        if not known(th, "critical_k_learned", **sel):
            out.append(head + f"learned critical k at m = {int(m_max)} {vd.UNKNOWN_TEXT} (unfinished blocks)")
            continue
        crit = _cells(th, "critical_k_learned", sel, k_max)
        verdict = vd.counts_text(vd.counts_of(th["critical_k_learned_verdict"].sel(sel).values))
        kopt = "; ".join(
            f"m = {int(mv)}: {_cells(th, 'k_opt', {sa: s, 'trajectories': mv, 'T': T_max}, k_max)}"
            for mv in th["trajectories"].values
        )
        out.append(
            head + f"learned critical k {crit} at m = {int(m_max)} per noise ratio ({verdict}); "
            f"k_opt at T = {fmt(float(T_max))} per noise ratio, {kopt}"
        )
    return out
