"""The least-squares FIR filter of one cell, certified in ball arithmetic (MATH §6.2, §6.4).

**The data** of a cell ``(T, m)`` are the float64 outputs ``y_{i,t}``, ``i < m``, ``t <= T``, of
the training set (:mod:`pipeline.models.simulation.fitted_outputs`). The fitted filter is the exact
minimiser ``theta_hat = G^-1 b`` of ``sum_i sum_{t=1..T} (y_t - sum_{j<=min(k,t)} theta_j
y_{t-j})^2`` with ``G``, ``b`` the exact (real-number) sums over those floats; nothing else is
"the data" (the hidden states, the series of :mod:`.series` and the float sums are derived).

**How it is computed.** The normal equations are assembled in the graded basis of
:mod:`.reference` from the running sums of :mod:`.statistics`. Each running sum enters as a
ball: midpoint its double-double value, radius an a-priori bound of its distance from the exact
sum of the same products (``(2 log2(SUM_BLOCK) + 6) u`` times the Cauchy-Schwarz bound
``sqrt(sum a^2 sum b^2)`` from the cell's own diagonal sums, plus the series' ``O(u^2 max|y|)``
terms, plus ``O(u^2)`` for the double-double carries; 1% margin). The basis change is exact, so
the ball solution contains the exact ``theta_hat`` of the data. The system is scaled by exact
powers of two (unit diagonal) and solved with ``arb_mat.solve`` at :func:`start_bits`, doubled
up to :data:`MAX_SOLVE_BITS` while the certified relative accuracy of ``theta`` (relative to
``max |theta_j|``) is below :data:`THETA_BITS` and still improving by doubling (once it stops
improving, the radii of the data sums limit it, not the solve). The certified bits are
returned with every fit; below :data:`MIN_THETA_BITS` (1e-8) the cell is refitted from exact
sums of its raw data (:mod:`.exact`, cells with ``m (T + 1) <= EXACT_LIMIT``); a larger cell
keeps the float-sum fit with its certified bits (reported, so a reader can tell a certified
cell from a measured one), and raises :class:`PrecisionError` only if no ball solution exists.
The bound is a worst case: on the hard cells of the tests (marginal Jordan blocks, noise ratio
100) the certified accuracy is 22-63 bits while the measured distance from the exact mpmath
solution of the same data is below 2e-13. The fitted filter is the ball's
midpoint, an exact point kept at the solve precision (its risk needs digits beyond float64).

**Underdetermined cells.** Columns ``j > T`` of the zero-padded design are zero and the first
``min(k, T)`` columns are independent (the rows ``t <= min(k, T)`` of one trajectory are
triangular with diagonal ``y_0 != 0``), so the minimum-norm solution for ``k > T`` is the fit
with ``T`` taps padded with zeros; such cells are flagged ``underdetermined``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from flint import arb, arb_mat

from pipeline.models.fitted_fir.exact import EXACT_LIMIT, ExactEquations, exact_equations
from pipeline.models.fitted_fir.normal_equations import Assembly
from pipeline.models.fitted_fir.series import UNIT, series_error_bound
from pipeline.models.fitted_fir.statistics import SUM_BLOCK, Statistics
from pipeline.models.precision.context import PrecisionError, working_precision

__all__ = ["MAX_SOLVE_BITS", "MIN_THETA_BITS", "START_BITS", "THETA_BITS", "Fit", "fit_cells"]

FloatArray = npt.NDArray[np.float64]

START_BITS = 128
MAX_SOLVE_BITS = 1024
THETA_BITS = 34  # certified relative bits of theta that stop the precision doubling
MIN_THETA_BITS = 27  # fewer certified bits (2^-27 = 7.5e-9) trigger the exact refit


@dataclass(frozen=True)
class Fit:
    """One fitted filter: ``theta`` (k_eff,) exact ``arb`` points (``k_eff = min(k, T)``; taps
    beyond are zero), ``underdetermined`` (``k > T``), ``bits`` the certified relative accuracy
    of ``theta`` given the data, ``prec`` the working precision of the solve."""

    k: int
    theta: tuple[arb, ...]
    underdetermined: bool
    bits: float
    prec: int

    def as_float(self) -> tuple[FloatArray, FloatArray]:
        """``(hi, lo)`` (k,) float64 with ``hi + lo`` within ``2^-106 |theta|`` of ``theta``
        (taps ``> T`` are 0)."""
        hi = np.zeros(self.k)
        lo = np.zeros(self.k)
        for j, t in enumerate(self.theta):
            h = float(t.mid())
            hi[j] = h
            with working_precision(self.prec):
                lo[j] = float((t - arb(h)).mid())
        return hi, lo


def _radii(stats: Statistics, iT: int, im: int) -> FloatArray:
    """Error bounds (S, J) of the readings of one cell (module docstring)."""
    T, m = int(stats.T[iT]), int(stats.m[im])
    val = stats.hi[iT, im] + stats.lo[iT, im]  # (S, J)
    diag = {a: stats.index((a, a, 0)) for a, _, _ in stats.keys}
    js = np.arange(stats.J)
    M = T - js
    N = m * np.maximum(M + 1, 0).astype(np.float64)
    eps = (2 * math.log2(SUM_BLOCK) + 6) * UNIT + (T / SUM_BLOCK + m + 8) * UNIT**2
    ymax = math.sqrt(max(float(val[diag[0], 0]), 0.0))
    c = series_error_bound(stats.reference)
    rad = np.zeros(val.shape)
    sqN = np.sqrt(N)
    for s, (a, b, _e) in enumerate(stats.keys):
        eta_a, eta_b = c[a] * UNIT**2 * ymax, c[b] * UNIT**2 * ymax
        sa = np.sqrt(np.maximum(val[diag[a]], 0.0)) * (1 + 4 * eps) + sqN * eta_a
        sb = np.sqrt(np.maximum(val[diag[b]], 0.0)) * (1 + 4 * eps) + sqN * eta_b
        rad[s] = 1.01 * (eps * sa * sb + eta_a * sqN * sb + eta_b * sqN * sa + N * eta_a * eta_b)
    rad[:, M < 0] = 0.0
    return rad


class _Cell:
    """Readings of one grid cell ``(T, m)`` as balls at the current precision."""

    def __init__(self, stats: Statistics, iT: int, im: int):
        self.stats = stats
        self.T = int(stats.T[iT])
        self.hi = stats.hi[iT, im]
        self.lo = stats.lo[iT, im]
        self.rad = _radii(stats, iT, im)
        self.where = {key: s for s, key in enumerate(stats.keys)}

    def read(self, a: int, b: int, e: int, j: int) -> arb:
        if self.T - j < 0:
            return arb(0)
        s = self.where[(a, b, e)]
        return arb(float(self.hi[s, j])) + arb(float(self.lo[s, j])) + arb(0, float(self.rad[s, j]))


def _frac(x: Fraction) -> arb:
    return arb(x.numerator) / arb(x.denominator)


def _solve(G: list[list[arb]], c: list[arb], k: int) -> list[arb] | None:
    """``psi`` (k,) of the leading ``k x k`` system, scaled to a unit diagonal by powers of two."""
    scale = []
    for a in range(k):
        d = float(G[a][a].mid())
        if not d > 0.0:
            return None
        scale.append(arb(2) ** (-round(0.5 * math.log2(d))))
    S = arb_mat(k, k)
    rhs = arb_mat(k, 1)
    for a in range(k):
        rhs[a, 0] = c[a] * scale[a]
        for b in range(k):
            S[a, b] = G[a][b] * scale[a] * scale[b]
    try:
        x = S.solve(rhs)
    except ZeroDivisionError:
        return None
    return [x[a, 0] * scale[a] for a in range(k)]


def _theta(stats: Statistics, k: int, psi: list[arb]) -> list[arb]:
    design = stats.reference.design(k)
    out = []
    for j in range(k):
        acc = _frac(design.theta_ref[j])
        for a in range(k):
            coef = design.basis[a][j]
            if coef:
                acc += psi[a] * _frac(coef)
        out.append(acc)
    return out


def _bits(theta: list[arb]) -> float:
    top = max(abs(float(t.mid())) for t in theta)
    rad = max(float(t.rad()) for t in theta)
    if not all(t.is_finite() for t in theta) or top == 0.0:
        return -math.inf
    return math.inf if rad == 0.0 else -math.log2(rad / top)


def _fits_at(stats: Statistics, cell: _Cell, ks: list[int], prec: int) -> dict[int, tuple[list[arb], float]]:
    """Solve every ``k`` of ``ks`` (each ``<= T``) at one precision: ``k -> (theta balls, bits)``."""
    ref = stats.reference
    asm = Assembly(ref, cell.read)
    out: dict[int, tuple[list[arb], float]] = {}
    big = [k for k in ks if k >= ref.n_u]
    nested = asm.equations(ref.design(max(big))) if big else None
    for k in ks:
        G, c = nested if k >= ref.n_u and nested is not None else asm.equations(ref.design(k))
        psi = _solve(G, c, k)
        if psi is None:
            out[k] = ([], -math.inf)
            continue
        theta = _theta(stats, k, psi)
        out[k] = (theta, _bits(theta))
    return out


def start_bits(stats: Statistics, T: int) -> int:
    """First working precision of a cell: :data:`START_BITS` plus ``T log2 rho`` for a spectral
    radius ``rho > 1`` (rounded up to 64). The fitted filter is an exact point at this precision
    and the risk of an explosive system resolves its digits down to ``rho^-T``: rounding it to
    fewer bits would change the risk by ``rho^(2T) 2^(-2 bits)``."""
    rho = max(1.0, stats.system.spectrum.spectral_radius)
    return int(64 * math.ceil((START_BITS + T * math.log2(rho)) / 64))


def fit_cells(stats: Statistics, iT: int, im: int, k: Sequence[int]) -> dict[int, Fit]:
    """The fitted filters of the filter lengths ``k`` at grid cell ``(T[iT], m[im])`` of a training set."""
    T = int(stats.T[iT])
    ks = sorted({int(v) for v in k})
    if ks and (ks[0] < 1 or ks[-1] > stats.k_max):
        raise ValueError(f"k = {ks}: filter lengths must lie in 1 .. k_max = {stats.k_max}")
    eff = sorted({min(v, T) for v in ks})
    cell = _Cell(stats, iT, im)
    best: dict[int, tuple[list[arb], float, int]] = {}
    pending = list(eff)
    prec = start_bits(stats, T)
    while pending and prec <= max(MAX_SOLVE_BITS, start_bits(stats, T)):
        with working_precision(prec):
            got = _fits_at(stats, cell, pending, prec)
        improved = []
        for kk, (theta, bits) in got.items():
            before = best[kk][1] if kk in best else -math.inf
            if kk not in best or bits > before:
                best[kk] = (theta, bits, prec)
            if bits < THETA_BITS and bits > before + 1.0:  # still limited by the working precision
                improved.append(kk)
        pending = improved
        prec *= 2
    failed = [kk for kk in eff if best[kk][1] < MIN_THETA_BITS]
    if failed:
        _refit_exactly(stats, iT, im, failed, best)
    out: dict[int, Fit] = {}
    for kk in eff:
        theta, bits, p = best[kk]
        with working_precision(p):
            mids = tuple(t.mid() for t in theta)
        for v in ks:
            if min(v, T) == kk:
                out[v] = Fit(v, mids, v > T, bits, p)
    return out


def _refit_exactly(
    stats: Statistics, iT: int, im: int, ks: list[int], best: dict[int, tuple[list[arb], float, int]]
) -> None:
    """Refit the filter lengths ``ks`` from exact sums of the raw data (:mod:`.exact`), in place;
    beyond ``EXACT_LIMIT`` keep the float-sum fit and its (lower) certified bits, unless the ball
    solve failed outright."""
    T, m = int(stats.T[iT]), int(stats.m[im])
    if m * (T + 1) > EXACT_LIMIT:
        lost = [kk for kk in ks if not best[kk][0]]
        if lost:
            raise PrecisionError(
                f"spectrum {stats.system.text!r}, noise_ratio {stats.system.noise_ratio!r}, fit {stats.fit}, "
                f"k = {lost}, T = {T}, m = {m}: the normal equations are not provably invertible from the "
                f"float sums and m (T + 1) exceeds {EXACT_LIMIT} for an exact refit"
            )
        return
    eq: ExactEquations = exact_equations(stats.system, stats.seed, stats.fit, max(ks), T, m)
    for kk in ks:
        prec = start_bits(stats, T)
        while True:
            with working_precision(prec):
                theta = eq.solve(kk)
                bits = _bits(theta) if theta is not None else -math.inf
            if theta is not None and bits >= THETA_BITS:
                best[kk] = (theta, bits, prec)
                break
            if prec >= 8 * max(MAX_SOLVE_BITS, start_bits(stats, T)):
                raise PrecisionError(
                    f"spectrum {stats.system.text!r}, fit {stats.fit}, k = {kk}, T = {T}, m = {m}: "
                    "exact normal equations not solved to the target accuracy (singular design?)"
                )
            prec *= 2
