"""``emergence thresholds``: where the phase transition sits, measured and predicted.

Reads a cube and returns a small dataset in which every extracted value sits beside
its theory prediction (MATH §1.4, §2.4, §4):

hidden cubes
    ``k_star`` (lam, noise_ratio, learner, T, tau)
        smallest ``k`` of the cube with ``risk <= tau``; NaN where no ``k`` reaches ``tau``.
    ``k_star_theory`` (lam, noise_ratio, T, tau)
        ``ln(q T / (2 tau)) / (2 ln(1/a))`` (MATH §2.4; q = 1), for ``lam = 1`` only (NaN otherwise).
    ``k_star_slope`` (lam, noise_ratio, learner, tau)
        least-squares slope of ``k_star`` against ``ln T`` over the horizons of the
        asymptotic regime (rule: ``ASYMPTOTIC_REGIME_RULE``, also in the dataset attributes).
    ``k_star_slope_theory`` (lam, noise_ratio)
        truncated Kalman: ``1 / (2 ln(1/a))`` at ``lam = 1``, ``0`` for ``|lam| < 1`` (bounded),
        ``+inf`` for ``|lam| > 1`` (``k*`` grows linearly in ``T``); ``best_fir``: 0 (bounded).
    ``growth_exponent`` (lam, noise_ratio, learner, k) and ``growth_exponent_theory`` (lam, learner)
        ``d log R / d log T`` between the two largest horizons.

observed cubes
    ``critical_d`` (spectrum, family): smallest ``d`` from which every draw is ``bounded``.
    ``critical_d_theory``: the closed forms of MATH §1.4 evaluated from the spectrum string.
    ``critical_d_empirical``: smallest ``d`` from which the growth exponent stays below the
    growth tolerance for every draw. ``growth_exponent`` (spectrum, family, d, draw).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import UsageError

if TYPE_CHECKING:  # xarray is imported where it is used: `emergence run` builds this parser too
    import xarray as xr

DEFAULT_TAUS = (1.0, 0.1, 0.01)
DEFAULT_GROWTH_TOL = 0.5
REGIME_FACTOR = 10.0
MIN_POINTS = 3
MIN_SPAN = 10.0
SLOPE_RTOL = 0.10
STEP_TAPS = 1.5

ASYMPTOTIC_REGIME_RULE = (
    f"A horizon T enters the least-squares fit of k_star against ln T when (1) k_star(T) is "
    f"defined (some k of the cube reaches tau); (2) T >= {REGIME_FACTOR:g} * max(k_star(T), "
    f"1/(1 - |a|), 1/(1 - |lam|) if |lam| < 1), i.e. the horizon is long against the filter length, "
    f"the memory 1/(1-|a|) of the Kalman predictor and the correlation time of a stable state, "
    f"so that at lam = 1 R_T = a^(2k) (T/2 + O(k + 1/(1-a))) is dominated by its leading term "
    f"and a bounded risk has settled; (3) k_star(T) is above the smallest k of the cube (a value at the "
    f"grid's lower edge is censored), unless k_star sits at that edge at every horizon passing "
    f"(1)-(2), in which case k_star is constant and the slope is 0. The fit needs at least "
    f"{MIN_POINTS} horizons spanning a factor of at least {MIN_SPAN:g} in T; otherwise NaN."
)


# --------------------------------------------------------------------------- hidden


def _is_one(lam: np.ndarray) -> np.ndarray:
    return np.abs(np.abs(lam) - 1.0) <= 1e-12


def first_k_below(risk: np.ndarray, k: np.ndarray, tau: float, axis: int) -> np.ndarray:
    """Smallest ``k`` (sorted ascending along ``axis``) with ``risk <= tau``; NaN if none."""
    ok = np.asarray(risk <= tau)
    idx = np.argmax(ok, axis=axis)
    found = np.any(ok, axis=axis)
    return np.where(found, np.asarray(k, dtype=np.float64)[idx], np.nan)


def slope_in_regime(k_star: np.ndarray, T: np.ndarray, a: float, k_min: float,
                    lam: float = 1.0) -> tuple[float, np.ndarray]:
    """Slope of ``k_star`` (one value per horizon ``T``) against ``ln T`` and the regime mask.

    Implements ``ASYMPTOTIC_REGIME_RULE``.
    """
    T = np.asarray(T, dtype=np.float64)
    k_star = np.asarray(k_star, dtype=np.float64)
    memory = 1.0 / (1.0 - abs(a)) if abs(a) < 1 else np.inf
    if abs(lam) < 1:
        memory = max(memory, 1.0 / (1.0 - abs(lam)))
    with np.errstate(invalid="ignore"):
        base = np.isfinite(k_star) & (T >= REGIME_FACTOR * np.maximum(k_star, memory))
    censored = k_star <= k_min
    if base.any() and np.all(censored[base]):
        mask = base
    else:
        mask = base & ~censored
    if mask.sum() < MIN_POINTS or T[mask].max() < MIN_SPAN * T[mask].min():
        return math.nan, mask
    x = np.log(T[mask])
    y = k_star[mask]
    if np.all(y == y[0]):
        return 0.0, mask
    slope = np.polyfit(x, y, 1)[0]
    return float(slope), mask


def growth_exponent(log10_risk: xr.DataArray) -> xr.DataArray:
    """``d log R / d log T`` between the two largest horizons; NaN where a risk is 0 or undefined."""
    T = np.sort(log10_risk["T"].values)
    if T.size < 2:
        raise UsageError("growth exponents need at least two horizons T in the cube")
    t1, t2 = T[-2], T[-1]
    r1 = log10_risk.sel(T=t1, drop=True).load()  # eager, so errstate below applies
    r2 = log10_risk.sel(T=t2, drop=True).load()
    with np.errstate(invalid="ignore"):
        g = (r2 - r1) / (np.log10(float(t2)) - np.log10(float(t1)))
    return g.where(np.isfinite(r1) & np.isfinite(r2))


def hidden_thresholds(ds: xr.Dataset, taus: Sequence[float] = DEFAULT_TAUS,
                      growth_tol: float = DEFAULT_GROWTH_TOL) -> xr.Dataset:
    """Thresholds of a hidden cube (see the module docstring)."""
    taus = _check_taus(taus)
    ds = ds.sortby(["k", "T"])
    risk = ds["risk"].transpose("lam", "noise_ratio", "learner", "k", "T").values
    lam = ds["lam"].values.astype(np.float64)
    ratio = ds["noise_ratio"].values.astype(np.float64)
    learners = [str(v) for v in ds["learner"].values]
    k = ds["k"].values
    T = ds["T"].values
    a = ds["a"].transpose("lam", "noise_ratio").values.astype(np.float64)

    k_star = np.stack([first_k_below(risk, k, tau, axis=3) for tau in taus], axis=-1)  # lam nr L T tau
    slope = np.full(k_star.shape[:3] + (len(taus),), np.nan)
    regime = np.zeros(k_star.shape, dtype=bool)
    for idx in np.ndindex(*slope.shape):
        i, j, li, ti = idx
        slope[idx], regime[i, j, li, :, ti] = slope_in_regime(k_star[i, j, li, :, ti], T, a[i, j],
                                                               float(k.min()), float(lam[i]))
    npoints = regime.sum(axis=3)

    with np.errstate(divide="ignore", invalid="ignore"):
        log_inv_a = np.log(1.0 / np.abs(a))
        slope_theory = np.where(_is_one(lam)[:, None], 1.0 / (2.0 * log_inv_a),
                                np.where(np.abs(lam)[:, None] < 1, 0.0, np.inf))
        tau_arr = np.asarray(taus)
        kt = np.log(T[None, None, :, None] / (2.0 * tau_arr[None, None, None, :])) / (
            2.0 * log_inv_a[:, :, None, None])
        k_theory = np.where(_is_one(lam)[:, None, None, None], kt, np.nan)

    g = growth_exponent(ds["log10_risk"]).transpose("lam", "noise_ratio", "learner", "k")
    Ts = np.sort(T)
    t1, t2 = float(Ts[-2]), float(Ts[-1])
    g_theory = np.zeros((lam.size, len(learners)))
    for li, learner in enumerate(learners):
        if learner != "truncated_kalman":
            continue
        with np.errstate(divide="ignore"):
            explosive = 2.0 * (t2 - t1) * np.log10(np.abs(lam)) / np.log10(t2 / t1)
        g_theory[:, li] = np.where(_is_one(lam), 1.0, np.where(np.abs(lam) < 1, 0.0, explosive))

    coords = {"lam": lam, "noise_ratio": ratio, "learner": np.array(learners, dtype=object),
              "T": T, "tau": np.asarray(taus, dtype=np.float64), "k": k}
    d5 = ("lam", "noise_ratio", "learner", "T", "tau")
    import xarray as xr

    out = xr.Dataset(
        {
            "k_star": (d5, k_star, {
                "long_name": "smallest filter length k of the cube with R_T <= tau (NaN: none)",
                "units": "taps"}),
            "k_star_theory": (("lam", "noise_ratio", "T", "tau"), k_theory, {
                "long_name": "theory k*(T) = ln(q T / (2 tau)) / (2 ln(1/a)) (MATH 2.4; lam = 1 only)",
                "units": "taps"}),
            "k_star_in_regime": (d5, regime, {
                "long_name": "horizon used in the k_star_slope fit (asymptotic regime)", "units": "1",
                "rule": ASYMPTOTIC_REGIME_RULE}),
            "k_star_slope": (("lam", "noise_ratio", "learner", "tau"), slope, {
                "long_name": "least-squares slope of k_star against ln T in the asymptotic regime",
                "units": "taps per e-fold of T", "rule": ASYMPTOTIC_REGIME_RULE}),
            "k_star_slope_points": (("lam", "noise_ratio", "learner", "tau"), npoints.astype(np.int64), {
                "long_name": "number of horizons in the k_star_slope fit", "units": "1"}),
            "k_star_slope_theory": (("lam", "noise_ratio"), slope_theory, {
                "long_name": "theory slope of k* in ln T for truncated_kalman: 1/(2 ln(1/a)) at lam = 1, "
                             "0 for |lam| < 1, +inf for |lam| > 1 (linear growth in T); best_fir: 0",
                "units": "taps per e-fold of T"}),
            "a": (("lam", "noise_ratio"), a, {"long_name": "Kalman predictor pole a = lam - K", "units": "1"}),
            "growth_exponent": (("lam", "noise_ratio", "learner", "k"), g.values, {
                "long_name": f"growth exponent d log R / d log T between T = {t1:.6g} and {t2:.6g}",
                "units": "1"}),
            "growth_exponent_theory": (("lam", "learner"), g_theory, {
                "long_name": "theory growth exponent: 0 where bounded (|lam| < 1, best_fir), 1 for "
                             "truncated_kalman at lam = 1, 2 (T2 - T1) log10|lam| / log10(T2/T1) for |lam| > 1",
                "units": "1"}),
        },
        coords=coords,
    )
    out.attrs.update({
        "asymptotic_regime_rule": ASYMPTOTIC_REGIME_RULE,
        "taus": list(map(float, taus)),
        "growth_tol": float(growth_tol),
        "growth_horizons": [t1, t2],
        "slope_rtol": SLOPE_RTOL,
    })
    return out


# --------------------------------------------------------------------------- observed

@dataclass(frozen=True)
class SpectrumTheory:
    n: int
    n_unstable: int
    critical_d: dict[str, int]


def spectrum_theory(text: str) -> SpectrumTheory:
    """``n``, ``n_u`` and the critical count ``d*`` per family from the closed forms of MATH §1.4."""
    from pipeline.models.spectra import FAMILIES, SpectrumError, critical_d_theory, parse_spectrum

    try:
        spectrum = parse_spectrum(text)
    except SpectrumError as exc:
        raise UsageError(str(exc)) from None
    return SpectrumTheory(spectrum.n, spectrum.n_unstable,
                          {family: critical_d_theory(spectrum, family) for family in FAMILIES})


def _first_d_from_which(ok: np.ndarray, defined: np.ndarray, d: np.ndarray) -> float:
    """Smallest ``d`` such that ``ok`` holds at it and at every larger defined ``d``."""
    best = math.nan
    for i in range(d.size - 1, -1, -1):
        if not defined[i]:
            continue
        if not ok[i]:
            break
        best = float(d[i])
    return best


def observed_thresholds(ds: xr.Dataset, growth_tol: float = DEFAULT_GROWTH_TOL) -> xr.Dataset:
    """Thresholds of an observed cube (see the module docstring)."""
    _check_growth_tol(growth_tol)
    ds = ds.sortby(["d", "T"])
    spectra = [str(s) for s in ds["spectrum"].values]
    families = [str(f) for f in ds["family"].values]
    d = ds["d"].values
    family_dim = ds["family_dim"].transpose("spectrum", "family").values
    bounded = ds["bounded"].transpose("spectrum", "family", "d", "draw").values.astype(bool)
    g = growth_exponent(ds["log10_risk"]).transpose("spectrum", "family", "d", "draw")
    gv = g.values
    defined = d[None, None, :] <= family_dim[:, :, None]

    crit = np.full((len(spectra), len(families)), np.nan)
    crit_emp = np.full_like(crit, np.nan)
    crit_theory = np.full_like(crit, np.nan)
    for si, spectrum in enumerate(spectra):
        theory = spectrum_theory(spectrum)
        for fi, family in enumerate(families):
            crit[si, fi] = _first_d_from_which(bounded[si, fi].all(axis=-1), defined[si, fi], d)
            # NaN growth exponent = risk exactly 0 at a defined cell: bounded
            below = np.where(np.isnan(gv[si, fi]), True, gv[si, fi] < growth_tol).all(axis=-1)
            crit_emp[si, fi] = _first_d_from_which(below, defined[si, fi], d)
            crit_theory[si, fi] = theory.critical_d.get(family, math.nan)
    bounded_theory = (d[None, None, :] >= crit_theory[:, :, None]) & defined

    dims2 = ("spectrum", "family")
    coords: dict[str, Any] = {"spectrum": np.array(spectra, dtype=object),
                              "family": np.array(families, dtype=object), "d": d,
                              "draw": ds["draw"].values}
    for extra in ("n", "n_unstable", "spectral_radius"):
        if extra in ds.coords and ds[extra].dims == ("spectrum",):
            coords[extra] = ("spectrum", ds[extra].values)
    Ts = np.sort(ds["T"].values)
    import xarray as xr

    out = xr.Dataset(
        {
            "critical_d": (dims2, crit, {
                "long_name": "critical parameter count measured from bounded: smallest d from which "
                             "every draw is bounded", "units": "parameters"}),
            "critical_d_theory": (dims2, crit_theory, {
                "long_name": "critical parameter count d* from the closed forms of MATH 1.4",
                "units": "parameters"}),
            "critical_d_empirical": (dims2, crit_emp, {
                "long_name": f"smallest d from which the growth exponent stays below {growth_tol:g} "
                             "for every draw", "units": "parameters"}),
            "family_dim": (dims2, family_dim.astype(np.int64), {
                "long_name": "dimension of the perturbation family", "units": "parameters"}),
            "growth_exponent": (("spectrum", "family", "d", "draw"), gv, {
                "long_name": f"growth exponent d log R / d log T between T = {Ts[-2]:.6g} and {Ts[-1]:.6g}"
                             " (NaN where d > family_dim or the risk is 0)", "units": "1"}),
            "bounded_theory": (("spectrum", "family", "d"), bounded_theory, {
                "long_name": "theory: risk bounded in T (d >= critical_d_theory, d <= family_dim)",
                "units": "1"}),
        },
        coords=coords,
    )
    out.attrs.update({"growth_tol": float(growth_tol), "growth_horizons": [float(Ts[-2]), float(Ts[-1])]})
    return out


# --------------------------------------------------------------------------- both


def _check_taus(taus: Sequence[float]) -> tuple[float, ...]:
    taus = tuple(float(t) for t in taus)
    if not taus:
        raise UsageError("--tau needs at least one value")
    for t in taus:
        if not math.isfinite(t) or t <= 0:
            raise UsageError(f"--tau {t!r}: must be a finite number > 0")
    if len(set(taus)) != len(taus):
        raise UsageError(f"--tau {list(taus)}: values must be distinct")
    return taus


def _check_growth_tol(growth_tol: float) -> None:
    if not math.isfinite(growth_tol) or growth_tol <= 0:
        raise UsageError(f"--growth-tol {growth_tol!r}: must be a finite number > 0")


def experiment_of(ds: xr.Dataset) -> str:
    experiment = ds.attrs.get("experiment")
    if experiment in ("hidden", "observed"):
        return experiment
    if "learner" in ds.dims:
        return "hidden"
    if "spectrum" in ds.dims:
        return "observed"
    raise UsageError("cannot tell the experiment of this cube (no 'experiment' attribute)")


def workflow_name(ds: xr.Dataset, fallback: str = "") -> str:
    import tomllib

    try:
        return str(tomllib.loads(ds.attrs.get("workflow", "")).get("name") or fallback)
    except tomllib.TOMLDecodeError:
        return fallback


def compute_thresholds(ds: xr.Dataset, taus: Sequence[float] = DEFAULT_TAUS,
                       growth_tol: float = DEFAULT_GROWTH_TOL, source: str = "") -> xr.Dataset:
    """Thresholds of a hidden or observed cube, with provenance attributes."""
    _check_growth_tol(growth_tol)
    experiment = experiment_of(ds)
    if ds.sizes.get("T", 0) < 2:
        raise UsageError("thresholds need at least two horizons T in the cube")
    out = hidden_thresholds(ds, taus, growth_tol) if experiment == "hidden" else observed_thresholds(
        ds, growth_tol)
    out.attrs.update({
        "title": f"emergence thresholds ({experiment})",
        "experiment": experiment,
        "source": source,
        "workflow_name": workflow_name(ds, Path(source.rstrip("/")).stem),
        "workflow_fingerprint": ds.attrs.get("workflow_fingerprint", ""),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    })
    return out


def default_output(store: str) -> str:
    """``data/x.zarr`` -> ``data/x.thresholds.zarr`` (beside the store)."""
    base = store.rstrip("/")
    if base.endswith(".zarr"):
        base = base[: -len(".zarr")]
    return base + ".thresholds.zarr"


def write_thresholds(th: xr.Dataset, path: str) -> None:
    """Zarr v3, unconsolidated: opens warning-free with ``xr.open_zarr(path, consolidated=False)``."""
    th.to_zarr(path, mode="w", zarr_format=3, consolidated=False)


def open_thresholds(path: str) -> xr.Dataset:
    import xarray as xr

    return xr.open_zarr(path, consolidated=False)


# --------------------------------------------------------------------------- table


def _fmt(v: float, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return format(v, spec)


def _ranges(values: Sequence[int]) -> str:
    values = sorted(values)
    parts, start, prev = [], None, None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            parts.append(f"{start}" if start == prev else f"{start}..{prev}")
            start = prev = v
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}..{prev}")
    return ",".join(parts)


def slope_disagrees(slope: float, theory: float, span: float) -> bool:
    """True when the measured slope misses the theory by more than 10% (of a positive theory)
    AND by more than ``|slope - theory| * ln(span) > 1.5`` taps over the fitted window
    (``span`` = Tmax / Tmin of the fit): ``k*`` is an integer, and a single one-tap step inside
    the window gives a least-squares slope of up to 1.5 / ln(span), so finer differences are
    below the resolution of the measurement."""
    if not (math.isfinite(slope) and math.isfinite(theory)):
        return False
    taps = abs(slope - theory) * math.log(max(span, math.e))
    if theory > 0:
        return abs(slope / theory - 1.0) > SLOPE_RTOL and taps > STEP_TAPS
    return taps > STEP_TAPS


def disagreements(th: xr.Dataset) -> list[str]:
    """One line per disagreement between an extracted value and its theory."""
    if th.attrs.get("experiment") == "observed":
        return _observed_disagreements(th)
    return _hidden_disagreements(th)


def _hidden_disagreements(th: xr.Dataset) -> list[str]:
    lines = []
    T = th["T"].values.astype(np.float64)
    tol = float(th.attrs.get("growth_tol", DEFAULT_GROWTH_TOL))
    for lam in th["lam"].values:
        for ratio in th["noise_ratio"].values:
            for learner in th["learner"].values:
                learner = str(learner)
                for tau in th["tau"].values:
                    sel = dict(lam=lam, noise_ratio=ratio, learner=learner, tau=tau)
                    slope = float(th["k_star_slope"].sel(sel))
                    theory = 0.0 if learner != "truncated_kalman" else float(
                        th["k_star_slope_theory"].sel(lam=lam, noise_ratio=ratio))
                    mask = th["k_star_in_regime"].sel(sel).values.astype(bool)
                    span = T[mask].max() / T[mask].min() if mask.any() else 1.0
                    if slope_disagrees(slope, theory, span):
                        lines.append(f"k_star_slope lam={lam:g} noise_ratio={ratio:.3g} {learner} tau={tau:g}: "
                                     f"{slope:.3f} vs theory {theory:.3f}")
                g = th["growth_exponent"].sel(lam=lam, noise_ratio=ratio, learner=learner).values
                gt = float(th["growth_exponent_theory"].sel(lam=lam, learner=learner))
                allowed = max(tol, 0.1 * abs(gt))
                bad = np.isfinite(g) & (np.abs(g - gt) > allowed)
                if bad.any():
                    ks = th["k"].values[bad]
                    worst = g[bad][np.argmax(np.abs(g[bad] - gt))]
                    lines.append(f"growth_exponent lam={lam:g} noise_ratio={ratio:.3g} {learner} "
                                 f"k={_ranges([int(x) for x in ks])}: up to {worst:.3g} vs theory {gt:.3g} "
                                 f"(tolerance {allowed:.3g})")
    return lines


def _observed_disagreements(th: xr.Dataset) -> list[str]:
    lines = []
    for s in th["spectrum"].values:
        for f in th["family"].values:
            sel = dict(spectrum=s, family=f)
            theory = float(th["critical_d_theory"].sel(sel))
            for name in ("critical_d", "critical_d_empirical"):
                v = float(th[name].sel(sel))
                if not (v == theory):
                    lines.append(f"{name} spectrum={s!s} family={f!s}: {_fmt(v)} vs theory {_fmt(theory)}")
    return lines


def format_table(th: xr.Dataset) -> str:
    """A readable table with theory beside each value; disagreements at the end."""
    head = (f"thresholds of {th.attrs.get('source', '?')} "
            f"({th.attrs.get('experiment')}, workflow {th.attrs.get('workflow_name', '?')})")
    body = _observed_table(th) if th.attrs.get("experiment") == "observed" else _hidden_table(th)
    problems = disagreements(th)
    tail = ["", f"disagreements with theory: {len(problems) or 'none'}"] + [f"  {p}" for p in problems]
    return "\n".join([head] + body + tail)


def _hidden_table(th: xr.Dataset) -> list[str]:
    taus = [float(t) for t in th["tau"].values]
    t1, t2 = th.attrs["growth_horizons"]
    ks = th["k"].values
    k_show = sorted({int(ks.min()), int(ks[len(ks) // 2]), int(ks.max())})
    lines = [
        "k_star_slope = d k*/d ln T: measured / theory (n = horizons in the fit; regime rule in the "
        "dataset attribute asymptotic_regime_rule)",
        f"growth exponent g = d log R / d log T between T = {t1:.3g} and {t2:.3g}: measured at "
        f"k = {', '.join(map(str, k_show))} / theory",
        "",
    ]
    slope_cols = [f"slope tau={t:g}" for t in taus]
    header = (f"{'lam':>6} {'noise':>8} {'a':>7} {'learner':<17}| "
              + " ".join(f"{c:>20}" for c in slope_cols) + " | " + f"{'g':>20} {'g theory':>8}")
    lines += [header, "-" * len(header)]
    for lam in th["lam"].values:
        for ratio in th["noise_ratio"].values:
            a = float(th["a"].sel(lam=lam, noise_ratio=ratio))
            for learner in th["learner"].values:
                learner = str(learner)
                theory = 0.0 if learner != "truncated_kalman" else float(
                    th["k_star_slope_theory"].sel(lam=lam, noise_ratio=ratio))
                cells = []
                for tau in taus:
                    sel = dict(lam=lam, noise_ratio=ratio, learner=learner, tau=tau)
                    s = float(th["k_star_slope"].sel(sel))
                    npts = int(th["k_star_slope_points"].sel(sel))
                    cells.append(f"{_fmt(s, '.3f')} / {_fmt(theory, '.3f')} n={npts}")
                g = th["growth_exponent"].sel(lam=lam, noise_ratio=ratio, learner=learner)
                gs = "/".join(_fmt(float(g.sel(k=kk)), ".2f") for kk in k_show)
                gt = float(th["growth_exponent_theory"].sel(lam=lam, learner=learner))
                lines.append(f"{lam:6.3g} {ratio:8.3g} {a:7.4f} {learner:<17}| "
                             + " ".join(f"{c:>20}" for c in cells) + f" | {gs:>20} {_fmt(gt, '.3g'):>8}")
    return lines


def _observed_table(th: xr.Dataset) -> list[str]:
    lines = [f"critical parameter count: measured from bounded / empirical (growth exponent < "
             f"{th.attrs.get('growth_tol', DEFAULT_GROWTH_TOL):g}) / theory (MATH 1.4)", ""]
    width = max([len(str(s)) for s in th["spectrum"].values] + [8])
    header = (f"{'spectrum':<{width}} {'family':<11}{'n':>3} {'n_u':>4} {'dim':>4} | "
              f"{'critical_d':>10} {'empirical':>10} {'theory':>7}")
    lines += [header, "-" * len(header)]
    has_n = "n" in th.coords and "n_unstable" in th.coords
    for s in th["spectrum"].values:
        theory = spectrum_theory(str(s))
        for f in th["family"].values:
            sel = dict(spectrum=s, family=f)
            n = int(th["n"].sel(spectrum=s)) if has_n else theory.n
            nu = int(th["n_unstable"].sel(spectrum=s)) if has_n else theory.n_unstable
            lines.append(f"{str(s):<{width}} {str(f):<11}{n:>3} {nu:>4} {int(th['family_dim'].sel(sel)):>4} | "
                         f"{_fmt(float(th['critical_d'].sel(sel)), '.0f'):>10} "
                         f"{_fmt(float(th['critical_d_empirical'].sel(sel)), '.0f'):>10} "
                         f"{_fmt(float(th['critical_d_theory'].sel(sel)), '.0f'):>7}")
    return lines


# --------------------------------------------------------------------------- CLI


def thresholds_for_store(store: str, out: str | None = None, taus: Sequence[float] = DEFAULT_TAUS,
                         growth_tol: float = DEFAULT_GROWTH_TOL) -> tuple[xr.Dataset, str]:
    """Compute and write the thresholds of ``store``; returns the dataset and where it went."""
    from pipeline.store import StoreLocation, open_cube

    ds = open_cube(StoreLocation(store))
    th = compute_thresholds(ds, taus, growth_tol, source=store)
    path = out or default_output(store)
    if path.rstrip("/") == store.rstrip("/"):
        raise UsageError(f"--out {path!r} is the cube itself; choose another path")
    write_thresholds(th, path)
    return th, path


def _cmd_thresholds(args: Any) -> int:
    th, path = thresholds_for_store(args.store, args.out, args.tau or DEFAULT_TAUS, args.growth_tol)
    print(format_table(th))
    print(f"\nwritten: {path}")
    return 0


def add_thresholds_parser(sub: Any) -> Any:
    p = sub.add_parser("thresholds", help="thresholds (k*, slopes, critical d) beside theory")
    p.add_argument("store", help="cube written by `emergence run`")
    p.add_argument("--out", help="output Zarr path (default: <store>.thresholds.zarr beside the store)")
    p.add_argument("--tau", type=float, nargs="+", metavar="X",
                   help=f"risk levels for k_star (default: {' '.join(map(str, DEFAULT_TAUS))})")
    p.add_argument("--growth-tol", type=float, default=DEFAULT_GROWTH_TOL, metavar="G",
                   help="growth exponent below which a risk counts as bounded (default 0.5)")
    p.set_defaults(func=_cmd_thresholds)
    return p
