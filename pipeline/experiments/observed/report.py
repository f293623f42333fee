"""Text of an observed cube's thresholds: the table, the disagreements with theory, the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.measure import known
from pipeline.wording import fmt

if TYPE_CHECKING:
    import xarray as xr

MEASURED = ("critical_d", "critical_d_empirical")


def _pairs(th: xr.Dataset) -> list[tuple[str, str]]:
    return [(str(s), str(f)) for s in th["spectrum"].values for f in th["family"].values]


def disagreements(th: xr.Dataset) -> list[str]:
    """Every measured critical count that is not exactly the theory's ``d*``."""
    lines = []
    for s, f in _pairs(th):
        sel = {"spectrum": s, "family": f}
        predicted = float(th["critical_d_theory"].sel(sel))
        for name in MEASURED:
            value = float(th[name].sel(sel))
            if known(th, name, **sel) and value != predicted:
                lines.append(f"{name} spectrum={s} family={f}: {fmt(value)} vs theory {fmt(predicted)}")
    return lines


def table(th: xr.Dataset) -> list[str]:
    """Measured (two ways) beside theory, per (spectrum, family)."""
    lines = [
        f"critical parameter count: measured from bounded / empirical (growth exponent < "
        f"{th.attrs['growth_tol']:g}) / theory (docs/theory.md §1.4)",
        "",
    ]
    width = max([len(str(s)) for s in th["spectrum"].values] + [8])
    header = (
        f"{'spectrum':<{width}} {'family':<11}{'n':>3} {'n_u':>4} {'dim':>4} | "
        f"{'critical_d':>10} {'empirical':>10} {'theory':>7}"
    )
    lines += [header, "-" * len(header)]
    for s, f in _pairs(th):
        sel = {"spectrum": s, "family": f}
        n, nu = int(th["n"].sel(spectrum=s)), int(th["n_unstable"].sel(spectrum=s))
        lines.append(
            f"{s:<{width}} {f:<11}{n:>3} {nu:>4} {int(th['family_dim'].sel(sel)):>4} | "
            f"{fmt(float(th['critical_d'].sel(sel)), '.0f'):>10} "
            f"{fmt(float(th['critical_d_empirical'].sel(sel)), '.0f'):>10} "
            f"{fmt(float(th['critical_d_theory'].sel(sel)), '.0f'):>7}"
        )
    return lines


def summary(ds: xr.Dataset, th: xr.Dataset) -> list[str]:
    """The critical count per (spectrum, family): measured beside theory."""
    lines = ["critical parameter count d: measured from bounded (theory d* of docs/theory.md §1.4):"]
    for s in th["spectrum"].values:
        parts = []
        for f in th["family"].values:
            sel = {"spectrum": str(s), "family": str(f)}
            value = float(th["critical_d"].sel(sel))
            shown = fmt(value, ".0f") if known(th, "critical_d", **sel) else "?"
            parts.append(f"{f}={shown} ({fmt(float(th['critical_d_theory'].sel(sel)), '.0f')})")
        lines.append(f"  {s!s:24s} " + "  ".join(parts))
    return lines
