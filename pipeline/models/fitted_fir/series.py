"""The series ``sigma_1 .. sigma_q = u`` of MATH §6.4, evaluated from the float outputs almost exactly.

``sigma_i = p_i(L) sigma_(i-1)`` (:mod:`pipeline.models.fitted_fir.reference`) is a difference
of numbers that grow like ``t^(m_J - 1/2)`` while ``u`` stays O(1): in plain float64 its rounding
error would be ``~1e-16 |y|``, not ``1e-16 |u|``. Each factor is therefore applied in
double-double arithmetic (Knuth's TwoSum, a product's exact error by a fused multiply-add for a
coefficient other than ``0, ±1, ±2``): ``sigma_i`` is held as ``hi + lo`` with ``|hi + lo - sigma_i| <= c u^2 max |y|``
(``u = 2^-53``) and the statistics use ``hi`` (the float nearest ``hi + lo``), so every value
is within one rounding of its exact series value plus that tiny absolute term
(:func:`series_error_bound`). All operations are elementwise in a fixed order.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.models.exact_products import product_error
from pipeline.models.fitted_fir.reference import Reference

__all__ = ["SeriesState", "series_error_bound"]

FloatArray = npt.NDArray[np.float64]

UNIT = 2.0**-53
_EXACT = (-2.0, -1.0, 1.0, 2.0)  # multipliers whose products are exact


@numba.njit(cache=True, nogil=True, inline="always")
def _term(
    c: float, exact: bool, xh: float, xl: float, s: float, low: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Add ``c (xh + xl)`` to ``s + low``: ``s, e = TwoSum(s, fl(c xh))``, then ``low + e``, the
    product's exact error (:func:`~pipeline.models.exact_products.product_error`; none for an exact
    ``c``) and ``c xl``, in that order."""
    p = c * xh
    hi = s + p
    bb = hi - s
    e = (s - (hi - bb)) + (p - bb)
    if exact:
        return hi, (low + e) + c * xl
    pe = product_error(c, xh, p)
    return hi, ((low + e) + pe) + c * xl


@numba.njit(cache=True, nogil=True)
def _advance_into(
    a1: FloatArray,
    a2: FloatArray,
    exact1: npt.NDArray[np.bool_],
    exact2: npt.NDArray[np.bool_],
    prev_hi: FloatArray,
    prev_lo: FloatArray,
    y: FloatArray,
    ext: FloatArray,
    start: int,
    cur_hi: FloatArray,
    cur_lo: FloatArray,
    nxt_hi: FloatArray,
    nxt_lo: FloatArray,
) -> None:  # pragma: no cover - compiled
    """:meth:`SeriesState.advance_into` per trajectory ``g``: factor ``f`` maps its input ``(hi, lo)``
    with two history values (``prev_*[f, g]``, then updated to the input's last two) to
    ``sigma + a1 L sigma + a2 L^2 sigma`` (terms with a zero coefficient skipped, :func:`_term`),
    then the final ``TwoSum(s, low)``; ``ext[i, start + t, g]`` receives ``hi`` of series ``i``.
    Scratch ``cur_*``, ``nxt_*`` (>= L + 2,)."""
    G, L = y.shape
    for g in range(G):
        for t in range(L):
            cur_hi[t + 2] = y[g, t]
            cur_lo[t + 2] = 0.0
            ext[0, start + t, g] = y[g, t]
        for f in range(a1.shape[0]):
            cur_hi[0], cur_hi[1] = prev_hi[f, g, 0], prev_hi[f, g, 1]
            cur_lo[0], cur_lo[1] = prev_lo[f, g, 0], prev_lo[f, g, 1]
            prev_hi[f, g, 0], prev_hi[f, g, 1] = cur_hi[L], cur_hi[L + 1]
            prev_lo[f, g, 0], prev_lo[f, g, 1] = cur_lo[L], cur_lo[L + 1]
            for t in range(L):
                s = cur_hi[t + 2]
                low = cur_lo[t + 2]
                if a1[f] != 0.0:
                    s, low = _term(a1[f], exact1[f], cur_hi[t + 1], cur_lo[t + 1], s, low)
                if a2[f] != 0.0:
                    s, low = _term(a2[f], exact2[f], cur_hi[t], cur_lo[t], s, low)
                r = s + low
                bb = r - s
                nxt_hi[t + 2] = r
                nxt_lo[t + 2] = (s - (r - bb)) + (low - bb)
            for t in range(L):
                cur_hi[t + 2] = nxt_hi[t + 2]
                cur_lo[t + 2] = nxt_lo[t + 2]
                ext[f + 1, start + t, g] = nxt_hi[t + 2]


class SeriesState:
    """The factor chain over consecutive time blocks of ``G`` trajectories (state: the last two
    values of every factor's input, zero before ``t = 0``)."""

    def __init__(self, ref: Reference, G: int):
        F = len(ref.factors)
        self.a1 = np.array([f.a1 for f in ref.factors], dtype=np.float64)
        self.a2 = np.array([f.a2 for f in ref.factors], dtype=np.float64)
        self.exact1 = np.array([f.a1 in _EXACT for f in ref.factors], dtype=np.bool_)
        self.exact2 = np.array([f.a2 in _EXACT for f in ref.factors], dtype=np.bool_)
        self.prev_hi = np.zeros((F, G, 2))
        self.prev_lo = np.zeros((F, G, 2))
        self.scratch = np.empty((4, 0))

    def advance_into(self, y: FloatArray, ext: FloatArray, start: int) -> None:
        """Write ``sigma_0 = y, sigma_1, ..., sigma_q`` (hi parts) over the block ``y`` (G, L) into
        ``ext[i, start : start + L]`` (q + 1, >= start + L, G): trajectories on the last axis."""
        L = y.shape[1]
        if self.scratch.shape[1] < L + 2:
            self.scratch = np.zeros((4, L + 2))
        sc = self.scratch
        _advance_into(
            self.a1,
            self.a2,
            self.exact1,
            self.exact2,
            self.prev_hi,
            self.prev_lo,
            y,
            ext,
            start,
            sc[0],
            sc[1],
            sc[2],
            sc[3],
        )


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
