"""The series ``sigma_1 .. sigma_q = u`` of MATH §6.4, evaluated from the float outputs almost exactly.

``sigma_i = p_i(L) sigma_(i-1)`` (:mod:`pipeline.models.fitted_fir.reference`) is a difference
of numbers that grow like ``t^(m_J - 1/2)`` while ``u`` stays O(1): in plain float64 its rounding
error would be ``~1e-16 |y|``, not ``1e-16 |u|``. Each factor is therefore applied in
double-double arithmetic (Knuth's TwoSum, Dekker's TwoProduct for a coefficient other than
``0, ±1, ±2``): ``sigma_i`` is held as ``hi + lo`` with ``|hi + lo - sigma_i| <= c u^2 max |y|``
(``u = 2^-53``) and the statistics use ``hi`` (the float nearest ``hi + lo``), so every value
is within one rounding of its exact series value plus that tiny absolute term
(:func:`series_error_bound`). All operations are elementwise in a fixed order.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.models.fitted_fir.reference import Factor, Reference

__all__ = ["SeriesState", "series_error_bound", "two_product", "two_sum"]

FloatArray = npt.NDArray[np.float64]

UNIT = 2.0**-53
_SPLIT = 134217729.0  # 2^27 + 1
_EXACT = (-2.0, -1.0, 1.0, 2.0)  # multipliers whose products are exact


def two_sum(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def two_product(c: float, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(p, e)`` with ``p = fl(c x)`` and ``c x = p + e`` exactly (Dekker; ``|c x| < 2^995``)."""
    p = c * x
    t = _SPLIT * c
    ch = t - (t - c)
    cl = c - ch
    tx = _SPLIT * x
    xh = tx - (tx - x)
    xl = x - xh
    e = ((ch * xh - p) + ch * xl + cl * xh) + cl * xl
    return p, e


def _apply(f: Factor, hi: FloatArray, lo: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``p(L) sigma`` from ``sigma`` with two leading history values: ``hi``, ``lo`` (G, L + 2)."""
    G, W = hi.shape
    out_hi, out_lo = np.empty((G, W - 2)), np.empty((G, W - 2))
    _apply_factor(f.a1, f.a1 in _EXACT, f.a2, f.a2 in _EXACT, hi, lo, out_hi, out_lo)
    return out_hi, out_lo


@numba.njit(cache=True, nogil=True, inline="always")
def _term(
    c: float, exact: bool, xh: float, xl: float, s: float, low: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Add ``c (xh + xl)`` to ``s + low``: ``s, e = TwoSum(s, fl(c xh))``, then ``low + e``, the
    product's error (Dekker; none for an exact ``c``) and ``c xl``, in that order."""
    p = c * xh
    hi = s + p
    bb = hi - s
    e = (s - (hi - bb)) + (p - bb)
    if exact:
        return hi, (low + e) + c * xl
    t = _SPLIT * c
    ch = t - (t - c)
    cl = c - ch
    tx = _SPLIT * xh
    h = tx - (tx - xh)
    lw = xh - h
    pe = ((ch * h - p) + ch * lw + cl * h) + cl * lw
    return hi, ((low + e) + pe) + c * xl


@numba.njit(cache=True, nogil=True)
def _apply_factor(
    a1: float,
    exact1: bool,
    a2: float,
    exact2: bool,
    hi: FloatArray,
    lo: FloatArray,
    out_hi: FloatArray,
    out_lo: FloatArray,
) -> None:  # pragma: no cover - compiled
    """:func:`_apply` elementwise: ``sigma + a1 L sigma + a2 L^2 sigma`` (terms with a zero
    coefficient skipped), then the final ``TwoSum(s, low)``."""
    G, W = hi.shape
    for g in range(G):
        for t in range(W - 2):
            s = hi[g, t + 2]
            low = lo[g, t + 2]
            if a1 != 0.0:
                s, low = _term(a1, exact1, hi[g, t + 1], lo[g, t + 1], s, low)
            if a2 != 0.0:
                s, low = _term(a2, exact2, hi[g, t], lo[g, t], s, low)
            r = s + low
            bb = r - s
            out_hi[g, t] = r
            out_lo[g, t] = (s - (r - bb)) + (low - bb)


class SeriesState:
    """The factor chain over consecutive time blocks of ``G`` trajectories (state: the last two
    values of every factor's input, zero before ``t = 0``)."""

    def __init__(self, ref: Reference, G: int):
        self.factors = ref.factors
        self.prev = [(np.zeros((G, 2)), np.zeros((G, 2))) for _ in ref.factors]

    def advance(self, y: FloatArray) -> list[FloatArray]:
        """``[sigma_0 = y, sigma_1, ..., sigma_q]`` (hi parts) over the block ``y`` (G, L)."""
        hi, lo = y, np.zeros_like(y)
        out = [y]
        for i, f in enumerate(self.factors):
            ph, pl = self.prev[i]
            eh = np.concatenate([ph, hi], axis=1)
            el = np.concatenate([pl, lo], axis=1)
            self.prev[i] = (eh[:, -2:].copy(), el[:, -2:].copy())
            hi, lo = _apply(f, eh, el)
            out.append(hi)
        return out


def series_error_bound(ref: Reference) -> list[float]:
    """``c_i`` (q + 1,) with ``|hi_i - sigma_i| <= u |sigma_i| + c_i u^2 max_s |y_s|`` over a prefix.

    Per factor the double-double step adds at most ``8 (1 + |a1| + |a2|) u^2`` times the size
    of its input, and ``|sigma_i| <= prod (1 + |a1| + |a2|) max |y|``; the constants below
    double that (generous: the tests compare against exact sums).
    """
    out = [0.0]
    grow = 1.0
    for f in ref.factors:
        w = 1.0 + abs(f.a1) + abs(f.a2)
        out.append(w * out[-1] + 16.0 * w * grow)
        grow *= w
    return out
