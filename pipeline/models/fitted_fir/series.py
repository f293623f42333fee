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
    s = hi[:, 2:]
    low = lo[:, 2:].copy()
    for c, shift in ((f.a1, 1), (f.a2, 2)):
        if c == 0.0:
            continue
        xh, xl = hi[:, 2 - shift : hi.shape[1] - shift], lo[:, 2 - shift : lo.shape[1] - shift]
        if c in _EXACT:
            p = c * xh
            s, e = two_sum(s, p)
            low = (low + e) + c * xl
        else:
            p, pe = two_product(c, xh)
            s, e = two_sum(s, p)
            low = ((low + e) + pe) + c * xl
    return two_sum(s, low)


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
