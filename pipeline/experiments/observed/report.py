"""Text of an observed cube's thresholds: the table, the disagreements with theory, the summary.

Every line is per (spectrum, family, learner_family); a critical count of ``+inf`` is
spelled "never" (no ``d <= learner_dim`` bounds the risk, MATH §1.5).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pipeline.core.measure import known
from pipeline.core.wording import fmt

if TYPE_CHECKING:
    import xarray as xr

MEASURED = ("critical_d", "critical_d_empirical")


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


def disagreements(th: xr.Dataset) -> list[str]:
    """Every measured critical count that is not exactly the theory's (``never`` included)."""
    lines = []
    for s, f, lf in _triples(th):
        sel = _sel(s, f, lf, th)
        predicted = float(th["critical_d_theory"].sel(sel))
        where = f"spectrum={s} family={f}" + ("" if lf == "same" else f" learner_family={lf}")
        for name in MEASURED:
            value = float(th[name].sel(sel))
            if known(th, name, **sel) and value != predicted:
                lines.append(f"{name} {where}: {count(value)} vs theory {count(predicted)}")
    return lines


def table(th: xr.Dataset) -> list[str]:
    """Measured (two ways) beside theory, per (spectrum, family, learner_family); for
    "never" cells the growth exponent at ``d = learner_dim`` (median over draws) beside
    the theory's."""
    lines = [
        f"critical parameter count: measured from bounded / empirical (growth exponent < "
        f"{th.attrs['growth_tol']:g}) / theory (docs/theory.md §1.4, §1.5); never = no d <= dim bounds the risk",
        "g@dim: growth exponent at d = dim for never cells, measured (theory; exp = exponential)",
        "",
    ]
    width = max([len(str(s)) for s in th["spectrum"].values] + [8])
    header = (
        f"{'spectrum':<{width}} {'family':<11}{'learner':<11}{'n':>3} {'n_u':>4} {'dim':>4} | "
        f"{'critical_d':>10} {'empirical':>10} {'theory':>7} | {'g@dim':>13}"
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
                g = f"{_growth(float(gm.median()))} ({_growth(gt)})"
        lines.append(
            f"{s:<{width}} {f:<11}{lf:<11}{n:>3} {nu:>4} {dim:>4} | "
            f"{count(float(th['critical_d'].sel(sel))):>10} "
            f"{count(float(th['critical_d_empirical'].sel(sel))):>10} "
            f"{count(float(th['critical_d_theory'].sel(sel))):>7} | {g:>13}"
        )
    return lines


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """The critical count per (spectrum, family, learner_family): measured beside theory."""
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
    return lines
