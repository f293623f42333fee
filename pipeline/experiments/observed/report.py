"""Text of an observed cube's thresholds: the table, the disagreements with theory, the summary.

Every line is per (spectrum, family, learner_family); a critical count of ``+inf`` is
spelled "never" (no ``d <= learner_dim`` bounds the risk, MATH §1.5). Every comparison carries
its verdict (``pipeline.core.verdicts``), computed with the thresholds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pipeline.core import verdicts as vd
from pipeline.core.measure import known
from pipeline.core.wording import fmt

if TYPE_CHECKING:
    import xarray as xr

MEASURED = ("critical_d", "critical_d_empirical", "growth_at_dim")
SHORT = {vd.AGREES: "agrees", vd.DISAGREES: "DISAGREES", vd.UNRESOLVED: "unresolved", vd.UNKNOWN: "?", "": ""}


def _triples(th: xr.Dataset) -> list[tuple[str, str, str]]:
    learners = [str(x) for x in th["learner_family"].values] if "learner_family" in th.dims else ["same"]
    return [(str(s), str(f), lf) for s in th["spectrum"].values for f in th["family"].values for lf in learners]


def _sel(s: str, f: str, lf: str, th: xr.Dataset) -> dict[str, str]:
    sel = {"spectrum": s, "family": f}
    if "learner_family" in th.dims:
        sel["learner_family"] = lf
    return sel


def count(value: float) -> str:
    """A critical count for a table: ``never`` for ``+inf``, ``-`` for unknown."""
    return "never" if math.isinf(value) and value > 0 else fmt(value, ".0f")


def _growth(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "exp" if math.isinf(value) else f"{value:.2f}"


def _verdict(th: xr.Dataset, name: str, sel: dict[str, str]) -> str:
    var = th.get(f"{name}_verdict")
    return "" if var is None else str(var.sel(sel).values)


def disagreements(th: xr.Dataset) -> list[str]:
    """Every measured critical count (``never`` included) or growth at ``d = dim`` whose verdict
    is ``disagrees``."""
    lines = []
    for s, f, lf in _triples(th):
        sel = _sel(s, f, lf, th)
        predicted = float(th["critical_d_theory"].sel(sel))
        where = f"spectrum={s} family={f}" + ("" if lf == "same" else f" learner_family={lf}")
        for name in MEASURED:
            if _verdict(th, name, sel) != vd.DISAGREES:
                continue
            if name == "growth_at_dim":
                g = ", ".join(_growth(float(v)) for v in th[name].sel(sel).values)
                lines.append(f"{name} {where}: {g} vs theory {_growth(float(th['growth_at_dim_theory'].sel(sel)))}")
            else:
                lines.append(f"{name} {where}: {count(float(th[name].sel(sel)))} vs theory {count(predicted)}")
    return lines


def _cell(th: xr.Dataset, name: str, sel: dict[str, str]) -> str:
    """A measured critical count and its verdict: ``6 agrees``; ``? `` when not known yet."""
    if not known(th, name, **sel):
        return "?"
    return f"{count(float(th[name].sel(sel)))} {SHORT[_verdict(th, name, sel)]}".strip()


def table(th: xr.Dataset) -> list[str]:
    """Measured (two ways) beside theory with their verdicts, per (spectrum, family,
    learner_family); for "never" cells the growth exponent at ``d = learner_dim`` (median over
    draws) beside the theory's and its verdict."""
    lines = [
        f"critical parameter count: measured from bounded / empirical (growth exponent < "
        f"{th.attrs['growth_tol']:g}) / theory (docs/theory.md §1.4, §1.5), each measured value with its "
        "verdict; never = no d <= dim bounds the risk; ? = not known yet",
        "g@dim: growth exponent at d = dim for never cells, measured (theory; exp = exponential) and verdict",
        "",
    ]
    width = max([len(str(s)) for s in th["spectrum"].values] + [8])
    header = (
        f"{'spectrum':<{width}} {'family':<11}{'learner':<11}{'n':>3} {'n_u':>4} {'dim':>4} | "
        f"{'critical_d':>17} {'empirical':>17} {'theory':>7} | {'g@dim':>24}"
    )
    lines += [header, "-" * len(header)]
    for s, f, lf in _triples(th):
        sel = _sel(s, f, lf, th)
        n, nu = int(th["n"].sel(spectrum=s)), int(th["n_unstable"].sel(spectrum=s))
        dim = int(th["learner_dim"].sel(sel)) if "learner_dim" in th else int(th["family_dim"].sel(sel))
        g = "-"
        if "growth_at_dim" in th:
            gm = th["growth_at_dim"].sel(sel)
            gt = float(th["growth_at_dim_theory"].sel(sel))
            if not math.isnan(gt):
                shown = _growth(float(gm.median())) if known(th, "growth_at_dim", **sel) else "?"
                g = f"{shown} ({_growth(gt)}) {SHORT[_verdict(th, 'growth_at_dim', sel)]}".strip()
        lines.append(
            f"{s:<{width}} {f:<11}{lf:<11}{n:>3} {nu:>4} {dim:>4} | "
            f"{_cell(th, 'critical_d', sel):>17} {_cell(th, 'critical_d_empirical', sel):>17} "
            f"{count(float(th['critical_d_theory'].sel(sel))):>7} | {g:>24}"
        )
    return lines


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """The critical count per (spectrum, family, learner_family): measured beside theory, and how
    the measured counts stand against it."""
    lines = ["critical parameter count d: measured from bounded (theory of docs/theory.md §1.4, §1.5):"]
    learners = [str(x) for x in th["learner_family"].values] if "learner_family" in th.dims else ["same"]
    for s in th["spectrum"].values:
        for lf in learners:
            parts = []
            for f in th["family"].values:
                sel = _sel(str(s), str(f), lf, th)
                value = float(th["critical_d"].sel(sel))
                shown = count(value) if known(th, "critical_d", **sel) else "?"
                parts.append(f"{f}={shown} ({count(float(th['critical_d_theory'].sel(sel)))})")
            who = "" if lf == "same" else f" learner {lf}:"
            lines.append(f"  {s!s:24s}{who} " + "  ".join(parts))
    for name, what in (
        ("critical_d", "measured from bounded"),
        ("critical_d_empirical", "empirical (growth exponents)"),
        ("growth_at_dim", "growth at d = dim of never cells"),
    ):
        if f"{name}_verdict" in th:
            lines.append(f"  {what} against theory: {vd.counts_text(vd.counts(th, [f'{name}_verdict']))}")
    return lines
