"""Verdicts: how a measured value stands against its theory (experiment-agnostic).

Every comparison an experiment makes (a ``k*`` slope, a growth exponent, a critical count)
is stored in the thresholds dataset as a string variable ``<name>_verdict`` beside the
measured value, in one vocabulary of four states:

``agrees``
    the measured value lies within its agreement band, and the cube can decide: the band is
    narrow enough to tell the theory from its nearest alternative, and the measurement has
    settled (see the rules below);
``disagrees``
    the measured value lies outside its band and the cube can tell (not within the Monte
    Carlo noise, not an unsettled transient);
``unresolved``
    the cube cannot decide: the band is too wide, the fit window too short, the growth not
    yet settled, the miss within the noise, or the value censored at the edge of the grid;
``unknown``
    the value needs cells a partial cube has not computed yet (printed "not known yet").

An empty string marks an element where no comparison is made (e.g. a growth at ``d = dim``
where the theory predicts a bounded risk). The rules, in words, are in each verdict
variable's ``rule`` attribute and in docs/theory.md §4.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

AGREES, DISAGREES, UNRESOLVED, UNKNOWN = "agrees", "disagrees", "unresolved", "unknown"
NOT_COMPARED = ""
VERDICTS = (AGREES, DISAGREES, UNRESOLVED, UNKNOWN)
UNKNOWN_TEXT = "not known yet"
"""How a reader prints an unknown value or verdict (never "nan", never "none")."""
VERDICT = "verdict"
"""``attrs["role"]`` of a verdict variable."""

RESOLVED_FRACTION = 0.25
"""A comparison with a continuous theory value is resolved only when its agreement band is at
most this fraction of the theory (docs/theory.md §4: it then excludes the law of the
neighbouring Jordan block size, 2/(2m - 1) >= 29% away, for every m <= 4)."""
RESOLVED_DECADES = 3.0
"""A slope fitted over fewer decades of ``T`` than this is unresolved ("several decades",
MATH §5.4)."""
GROWTH_LAW_GAP = 1.0
"""Neighbouring growth laws differ by at least this much in the exponent (0, 1, 3, 5, ...: a
bounded risk, T, T^3, ...): a growth band of at most half of it decides between them."""
NOISE_SIGMAS = 3.0
"""A Monte Carlo miss (or a classification against a tolerance) closer than this many standard
errors to the edge of its band is within the noise: unresolved."""


def noise_sigmas(samples: int | None = None) -> float:
    """How many standard errors clear a band: ``NOISE_SIGMAS`` for an error known exactly
    (``samples`` None); for an error estimated from ``samples`` independent draws, the Student-t
    quantile with ``samples - 1`` degrees of freedom of the same two-sided coverage as
    ``NOISE_SIGMAS`` normal errors (19.2 at 3 draws, 3.1 at 100): with 3 draws a plain 3 would
    call sampling noise a disagreement about one time in ten."""
    if samples is None:
        return NOISE_SIGMAS
    if samples < 2:
        return math.inf
    from scipy import stats

    return float(stats.t.ppf(stats.norm.cdf(NOISE_SIGMAS), samples - 1))


def as_text(values: Any) -> np.ndarray:
    """Verdicts as a numpy array of ``str`` of the same shape, whether held as Python strings
    (computed) or numpy's variable-width strings (read back from a Zarr store)."""
    a = np.asarray(values)
    return np.array(a.tolist(), dtype=str).reshape(a.shape)


def text(verdict: str) -> str:
    """A verdict as a reader prints it (``not known yet`` for ``unknown``)."""
    return UNKNOWN_TEXT if verdict == UNKNOWN else verdict


def variable(data: Any, long_name: str, dims: tuple[str, ...], compares: Sequence[str], rule: str) -> tuple[Any, ...]:
    """An xarray variable tuple for a verdict: strings over ``dims``; ``compares`` names the
    measured variable(s) and the theory it weighs (the first measured one is the one a partial
    cube masks)."""
    values = np.asarray(data, dtype=object)
    return dims, values, {"long_name": long_name, "role": VERDICT, "compares": " ".join(compares), "rule": rule}


def decide(outside: bool, decided: bool, resolvable: bool) -> str:
    """The verdict of one comparison: ``outside`` its band, the measurement ``decided`` (settled,
    not within the noise) and the band narrow enough to be ``resolvable``."""
    if outside and decided:
        return DISAGREES
    if not outside and decided and resolvable:
        return AGREES
    return UNRESOLVED


def band_resolvable(band: float, theory: float, floor: float = 0.0) -> bool:
    """Whether a band of half-width ``band`` decides a comparison with ``theory``: at most
    ``RESOLVED_FRACTION`` of ``|theory|``, or at most ``floor`` (the absolute resolution a
    discrete law needs, e.g. half the gap between growth laws)."""
    return bool(band <= max(floor, RESOLVED_FRACTION * abs(theory)))


def threshold_verdict(values: np.ndarray, holds: np.ndarray, decided: np.ndarray, theory: float) -> str:
    """Verdict on "the property holds from ``theory`` on" (a critical count) over a grid.

    ``values`` (ascending) are the grid's counts where the property is defined, ``holds``
    whether it holds there (e.g. the growth exponent is below the tolerance) and ``decided``
    whether that reading is settled and clear of the noise. The theory says it holds at every
    value ``>= theory`` and fails at the largest value below (``theory = +inf``: fails at the
    top of the grid). A theory outside the grid's range is censored: unresolved.
    """
    if values.size == 0:
        return UNRESOLVED
    if np.isfinite(theory) and not values[0] <= theory <= values[-1]:
        return UNRESOLVED
    expect = values >= theory
    relevant = expect.copy()
    below = np.flatnonzero(~expect)
    if below.size:
        relevant[below[-1]] = True
    mismatch = relevant & (holds != expect)
    if (mismatch & decided).any():
        return DISAGREES
    if mismatch.any() or not decided[relevant].all():
        return UNRESOLVED
    return AGREES


def combine(values: Iterable[str]) -> str:
    """One verdict for several readings of one comparison (e.g. over draws): ``unknown`` if any is,
    else ``disagrees`` if any does, else ``unresolved`` if any is, else ``agrees`` (``""`` when
    none is compared)."""
    found = {str(v) for v in values} - {NOT_COMPARED}
    for verdict in (UNKNOWN, DISAGREES, UNRESOLVED, AGREES):
        if verdict in found:
            return verdict
    return NOT_COMPARED


def names(th: xr.Dataset) -> list[str]:
    """The verdict variables of a thresholds dataset."""
    return [str(n) for n, v in th.data_vars.items() if v.attrs.get("role") == VERDICT]


def counts_of(values: Any) -> Counter[str]:
    """How many elements of an array of verdicts hold each verdict (no-comparison elements left out)."""
    out: Counter[str] = Counter({v: 0 for v in VERDICTS})
    found, n = np.unique(as_text(values), return_counts=True)
    for v, c in zip(found, n, strict=True):
        if v != NOT_COMPARED:
            out[str(v)] += int(c)
    return out


def counts(th: xr.Dataset, only: Iterable[str] | None = None) -> Counter[str]:
    """How many comparisons of each verdict ``th`` holds (``only``: these verdict variables)."""
    out: Counter[str] = Counter({v: 0 for v in VERDICTS})
    for name in names(th) if only is None else only:
        out.update(counts_of(th[name].values))
    return out


def counts_text(c: Counter[str]) -> str:
    """``812 agree, 0 disagree, 14 unresolved`` (and ``, 3 not known yet`` when any)."""
    out = f"{c[AGREES]} agree, {c[DISAGREES]} disagree, {c[UNRESOLVED]} unresolved"
    return out + (f", {c[UNKNOWN]} {UNKNOWN_TEXT}" if c[UNKNOWN] else "")


def counts_line(th: xr.Dataset) -> str:
    """The closing line of every table and summary: the counts of the verdicts."""
    return f"comparisons with theory: {counts_text(counts(th))}"


def where(th: xr.Dataset, name: str, verdict: str, limit: int = 12) -> str:
    """Where the verdict variable ``name`` holds ``verdict``: each such element's coordinates
    (those of dimensions with more than one value) when there are at most ``limit``, else per
    dimension the coordinate values involved (``spectrum 1.02; noise_ratio 10, 100``)."""
    hit = as_text(th[name].values) == verdict
    dims = th[name].dims
    varying = [i for i, d in enumerate(dims) if th.sizes[d] > 1] or list(range(len(dims)))
    if hit.sum() <= limit:
        cells = []
        for at in zip(*np.nonzero(hit), strict=True):
            cells.append(", ".join(f"{dims[i]} {_coord_text(th[dims[i]].values[at[i]])}" for i in varying))
        return "; ".join(f"({c})" for c in cells)
    parts = []
    for axis, dim in enumerate(dims):
        other = tuple(i for i in range(hit.ndim) if i != axis)
        used = hit.any(axis=other) if other else hit
        values = [_coord_text(v) for v in np.asarray(th[dim].values)[used]]
        if len(values) == th.sizes[dim] and len(values) > 1:
            shown = "every value"
        else:
            shown = ", ".join(values[:limit]) + (f", ... ({len(values)})" if len(values) > limit else "")
        parts.append(f"{dim} {shown}")
    return "; ".join(parts)


def _coord_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".3g")
    return str(value)


def lines(th: xr.Dataset) -> list[str]:
    """One line per verdict variable with its counts, and where it is unresolved or unknown."""
    out = []
    for name in names(th):
        c = counts(th, [name])
        if not sum(c.values()):
            continue
        what = th[name].attrs.get("compares", name).split()[0]
        line = f"  {what}: {counts_text(c)}"
        for verdict in (UNRESOLVED, UNKNOWN):
            if c[verdict]:
                line += f"\n    {text(verdict)} at {where(th, name, verdict)}"
        out.append(line)
    return out


def growth_verdicts(
    g: np.ndarray,
    g_before: np.ndarray,
    theory: np.ndarray,
    theory_before: np.ndarray,
    band: np.ndarray,
    sigma: np.ndarray | None,
    exponential_above: float,
) -> np.ndarray:
    """Verdicts of growth exponents (all arguments broadcast together).

    ``g`` is measured between the two largest horizons, ``g_before`` in the window before;
    ``theory``/``theory_before`` their predictions (``+inf``: exponential growth, which agrees
    with any exponent above ``exponential_above``; NaN: no comparison), ``band`` the agreement
    half-width, ``sigma`` the Monte Carlo standard error of ``g`` (``None``: exact cube). A
    verdict is decided only when both windows tell the same (the growth has settled; a cube
    with two horizons cannot tell) and the miss is not within ``NOISE_SIGMAS`` standard
    errors of the band's edge; it is resolvable when the band is at most half the gap between
    neighbouring growth laws or ``RESOLVED_FRACTION`` of the theory. A NaN exponent (the risk
    is exactly 0 at the largest horizons) agrees with a bounded theory and is unresolved
    otherwise."""
    g, g_before, theory, theory_before, band = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (g, g_before, theory, theory_before, band))
    )
    noise = np.zeros(g.shape) if sigma is None else np.broadcast_to(np.nan_to_num(np.asarray(sigma), nan=0.0), g.shape)
    out = np.full(g.shape, NOT_COMPARED, dtype=object)
    for at in np.ndindex(*g.shape):
        th = float(theory[at])
        if np.isnan(th):
            continue
        if np.isnan(g[at]):
            out[at] = AGREES if th == 0 else UNRESOLVED
            continue
        reading = (float(g[at]), float(g_before[at]), th, float(theory_before[at]), float(band[at]), float(noise[at]))
        out[at] = decide(*_growth_reading(*reading, exponential_above))
    return out


def settled(
    holds: np.ndarray,
    holds_before: np.ndarray,
    known_before: np.ndarray,
    margin: np.ndarray,
    sigma: np.ndarray | None,
    samples: int | None = None,
) -> np.ndarray:
    """Whether a reading against a tolerance (``holds``: e.g. the growth exponent is below it)
    is decided: the window before reads the same (``known_before``: it has a value) and the
    reading is more than :func:`noise_sigmas` standard errors (``sigma``, estimated from
    ``samples`` draws; ``None``: exact cube) from the tolerance (``margin``: distance to it).
    A single draw settles nothing, whatever its (undefined) standard error reads."""
    k = 0.0 if sigma is None else noise_sigmas(samples)
    if math.isinf(k):  # one draw has no spread to clear a tolerance by
        clear = np.zeros(np.shape(holds), dtype=bool)
    elif sigma is None:
        clear = np.ones(np.shape(holds), dtype=bool)
    else:
        clear = ~(np.abs(margin) <= k * np.nan_to_num(sigma))
    return np.asarray(known_before & (holds == holds_before) & clear, dtype=bool)


def _growth_reading(
    g: float, g_before: float, theory: float, theory_before: float, band: float, sigma: float, exponential_above: float
) -> tuple[bool, bool, bool]:
    """``(outside, decided, resolvable)`` of one growth exponent (see :func:`growth_verdicts`)."""
    if np.isinf(theory):
        outside = g <= exponential_above
        settled = np.isfinite(g_before) and (g_before <= exponential_above) == outside
        return outside, bool(settled), True
    miss = abs(g - theory)
    outside = miss > band
    settled = np.isfinite(g_before) and (abs(g_before - theory_before) > band) == outside
    clear = abs(miss - band) > NOISE_SIGMAS * sigma
    return outside, bool(settled and clear), band_resolvable(band, theory, GROWTH_LAW_GAP / 2)


def by_comparison(th: xr.Dataset) -> dict[tuple[str, ...], str]:
    """Every comparison of ``th`` keyed by its verdict variable and exact coordinates
    (``("k_star_slope_verdict", "lam=1.0", "noise_ratio=0.1", ...)``), so that comparisons of
    the same law in different cubes of one experiment can be matched."""
    out: dict[tuple[str, ...], str] = {}
    for name in names(th):
        var = th[name]
        values = as_text(var.values)
        coords = [[f"{d}={_exact(v)}" for v in np.asarray(th[d].values)] for d in var.dims]
        for at in zip(*np.nonzero(values != NOT_COMPARED), strict=True):
            out[(name, *(coords[i][j] for i, j in enumerate(at)))] = str(values[at])
    return out


def _exact(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def most_decisive(found: Iterable[str]) -> str:
    """One verdict for one comparison made in several cubes: ``disagrees`` if any cube decides
    against the theory, else ``agrees`` if any decides for it, else ``unresolved`` (or
    ``unknown``)."""
    seen = set(found)
    for verdict in (DISAGREES, AGREES, UNRESOLVED, UNKNOWN):
        if verdict in seen:
            return verdict
    return NOT_COMPARED
