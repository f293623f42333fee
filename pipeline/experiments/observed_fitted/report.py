"""Text of a fitted observed cube's thresholds: the table, the disagreements, the summary.

Per learner (spectrum, family, draw, learner_family): the learned critical ``d`` per ``m``
beside theory, the mean risk against the bias at the largest ``T`` per ``d`` (and ``m``),
the normalised excess where its theory applies, and the Dickey-Fuller quantiles of a scalar
random walk. A value that needs unfinished cells prints ``?`` (its verdict "not known yet").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core import verdicts as vd
from pipeline.core.measure import known
from pipeline.core.wording import fmt
from pipeline.experiments.observed_fitted.thresholds import FPE_TOL

if TYPE_CHECKING:
    import xarray as xr

LEARNER = ("spectrum", "family", "draw", "learner_family")
SHORT = {vd.AGREES: "agrees", vd.DISAGREES: "DISAGREES", vd.UNRESOLVED: "unresolved", vd.UNKNOWN: "?", "": ""}


def count(value: float) -> str:
    """A critical count: ``never`` for ``+inf``, ``-`` for NaN."""
    return "never" if math.isinf(value) and value > 0 else fmt(value, ".0f")


def _learners(th: xr.Dataset) -> list[dict[str, Any]]:
    return [
        {"spectrum": s, "family": f, "draw": int(q), "learner_family": lf}
        for s in th["spectrum"].values
        for f in th["family"].values
        for q in th["draw"].values
        for lf in th["learner_family"].values
    ]


def _label(sel: dict[str, Any], th: xr.Dataset) -> str:
    out = f"{sel['spectrum']} learner={sel['learner_family']}"
    if sel["family"] != "none":
        out += f" family={sel['family']}"
    if th.sizes["draw"] > 1:
        out += f" draw={sel['draw']}"
    return out


def _value(th: xr.Dataset, name: str, sel: dict[str, Any], spec: str = ".3g") -> str:
    if not known(th, name, **sel):
        return "?"
    return fmt(float(th[name].sel(sel)), spec)


def _verdict(th: xr.Dataset, name: str, sel: dict[str, Any]) -> str:
    return SHORT[str(th[f"{name}_verdict"].sel(sel).values)]


def _largest_mT(th: xr.Dataset) -> tuple[int, int]:
    """The (T, m) of the largest m T on the grid (where the normalised excess is judged)."""
    T = th["T"].values.astype(float)
    m = th["trajectories"].values.astype(float)
    t, i = np.unravel_index(int(np.argmax(T[:, None] * m[None, :])), (T.size, m.size))
    return int(th["T"].values[t]), int(th["trajectories"].values[i])


def disagreements(th: xr.Dataset) -> list[str]:
    """One line per comparison whose verdict is ``disagrees``, with its tolerance."""
    lines = []
    for sel in _learners(th):
        where = _label(sel, th)
        for m in th["trajectories"].values:
            at = sel | {"trajectories": int(m)}
            if str(th["critical_d_learned_verdict"].sel(at).values) == vd.DISAGREES:
                lines.append(
                    f"critical_d_learned {where} m={int(m)}: {count(float(th['critical_d_learned'].sel(at)))} "
                    f"vs theory {count(float(th['critical_d_theory'].sel(sel)))} "
                    f"(growth_tol {th.attrs['growth_tol']:g})"
                )
        for d in th["d"].values:
            at = sel | {"d": int(d)}
            if str(th["normalised_excess_verdict"].sel(at).values) == vd.DISAGREES:
                T, m = _largest_mT(th)
                x = float(th["normalised_excess"].sel(at | {"T": T, "trajectories": m}))
                lines.append(
                    f"normalised_excess {where} d={int(d)} T={T} m={m}: {x:.3g} vs 1 "
                    f"(tolerance: {FPE_TOL:g} + {vd.NOISE_SIGMAS:g} standard errors)"
                )
        if "dickey_fuller_quantile_verdict" in th:
            for p in th["df_probability"].values:
                at = sel | {"df_probability": p}
                if str(th["dickey_fuller_quantile_verdict"].sel(at).values) == vd.DISAGREES:
                    lines.append(
                        f"dickey_fuller_quantile {where} p={p:g}: {float(th['dickey_fuller_quantile'].sel(at)):.3g} "
                        f"vs Fuller {float(th['dickey_fuller_quantile_theory'].sel(at)):.3g}"
                    )
            if str(th["random_walk_constant_verdict"].sel(sel).values) == vd.DISAGREES:
                lines.append(
                    f"random_walk_constant {where}: {float(th['random_walk_constant'].sel(sel)):.3g} vs E[Z^2]/2 "
                    f"{float(th['random_walk_constant_theory'].sel(sel)):.4g} (tolerance in its rule)"
                )
    return lines


def table(th: xr.Dataset) -> list[str]:
    """Per learner: critical d per m, mean risk vs bias at the largest T, normalised excess."""
    T = int(th["T"].values.max())
    lines = [
        f"fitted least-squares learners over {th.attrs.get('fits', '?')} fits; mean risk +- standard error at "
        f"T = {T} beside the bias (best in class, m -> infinity); critical d: smallest d whose mean risk stays "
        "bounded in T (growth exponent < growth_tol), beside theory (docs/theory.md §6); ? = not known yet",
        "",
    ]
    for sel in _learners(th):
        lines.append(f"{_label(sel, th)}: critical d theory {count(float(th['critical_d_theory'].sel(sel)))}")
        for m in th["trajectories"].values:
            at = sel | {"trajectories": int(m)}
            learned = count(float(th["critical_d_learned"].sel(at))) if known(th, "critical_d_learned", **at) else "?"
            lines.append(f"  m={int(m):<6d} critical_d_learned {learned:>6} {_verdict(th, 'critical_d_learned', at)}")
            for d in th["d"].values:
                c = at | {"d": int(d), "T": T}
                bias = float(th["bias"].sel({k: v for k, v in c.items() if k != "trajectories"}))
                if math.isnan(bias):
                    continue
                ne = ""
                theory = th["normalised_excess_theory"].sel(at | {"d": int(d)})
                if not math.isnan(float(theory)):
                    ne = f"  (mT/d) excess {_value(th, 'normalised_excess', c)} (theory {float(theory):g})"
                lines.append(
                    f"    d={int(d):<4d} mean {_value(th, 'mean_risk', c):>10} +- {_value(th, 'risk_stderr', c):<9} "
                    f"bias {fmt(bias):>10}{ne}"
                )
        if "dickey_fuller_quantile" in th and not np.isnan(th["dickey_fuller_quantile_theory"].sel(sel).values).all():
            qs = []
            for p in th["df_probability"].values:
                at = sel | {"df_probability": p}
                if str(th["dickey_fuller_quantile_verdict"].sel(at).values) == vd.NOT_COMPARED:
                    continue
                qs.append(
                    f"p={p:g}: {_value(th, 'dickey_fuller_quantile', at)} "
                    f"(Fuller {float(th['dickey_fuller_quantile_theory'].sel(at)):g}) "
                    f"{_verdict(th, 'dickey_fuller_quantile', at)}"
                )
            if qs:
                lines.append("  T (ahat - 1), m = 1: " + "; ".join(qs))
                lines.append(
                    f"  T E[R_T], m = 1: {_value(th, 'random_walk_constant', sel)} "
                    f"(E[Z^2]/2 = {float(th['random_walk_constant_theory'].sel(sel)):.4g}) "
                    f"{_verdict(th, 'random_walk_constant', sel)}"
                )
    return lines


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """The learned critical d per m beside theory, and the verdict counts per comparison."""
    lines = ["learned critical d per m (theory of docs/theory.md §6):"]
    for sel in _learners(th):
        parts = []
        for m in th["trajectories"].values:
            at = sel | {"trajectories": int(m)}
            shown = count(float(th["critical_d_learned"].sel(at))) if known(th, "critical_d_learned", **at) else "?"
            parts.append(f"m={int(m)}: {shown}")
        lines.append(f"  {_label(sel, th)} ({count(float(th['critical_d_theory'].sel(sel)))}): " + ", ".join(parts))
    for name, what in (
        ("critical_d_learned", "learned critical d"),
        ("normalised_excess", "normalised excess"),
        ("dickey_fuller_quantile", "Dickey-Fuller quantiles"),
        ("random_walk_constant", "random walk T E[R_T]"),
    ):
        made = vd.counts(th, [f"{name}_verdict"]) if f"{name}_verdict" in th else None
        if made and sum(made.values()):  # no line for a comparison the cube never makes
            lines.append(f"  {what} against theory: {vd.counts_text(made)}")
    return lines
