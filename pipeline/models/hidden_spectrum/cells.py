"""The exact risk of one cell in ball arithmetic, at a working precision the cell chooses.

For a marginal Jordan block of size ``m`` the entries of ``Z_N`` grow like ``N^(2m)`` (like
``rho^(2N)`` for ``|lam| = rho > 1``) while the bounded ``best_fir`` risk stays O(1), and
``F^k' C'`` is computed with a non-normal ``F``: float64 returns garbage. Every cell is
therefore evaluated in ball arithmetic (python-flint ``arb``), which carries a rigorous
bound on all rounding errors:

* ``Z_N`` by doubling (``O(n^3 log N)``) to an anchor ``N0 = 64 floor(N / 64)`` and then
  at most 63 rank-one steps, so a cell's value depends on its own ``N`` only;
  ``W`` by the recursion ``W_{k+1} = F' W_k F + C'C / (S (T - k))`` from ``W_0 = 0``;
  ``c_k = F' c_{k-1}``. Cost is independent of ``T`` (O(log T) doubling steps).
* The working precision is chosen from the cell's own ``(spectrum, noise_ratio, k, T)``
  (:func:`working_bits`: the polynomial growth ``sum m log2 T``, the non-normal loss
  ``k log2(||F|| / rho(F))`` and, for unstable moduli that differ, their exponential
  ratio), and every result is accepted only if its ball has at least 64 correct bits;
  otherwise the cell is recomputed at twice the precision, up to ``MAX_BITS``, beyond
  which :class:`~pipeline.models.precision.context.PrecisionError` is raised. A returned
  ``risk`` is thus the correctly rounded float64 of the risk of the system with the
  320-bit Kalman gain, to within one ulp. A risk that is exactly 0 is a ball around 0 at
  every precision; a ball that contains 0 is therefore decided exactly in integers
  (:mod:`pipeline.models.hidden_spectrum.zeros`).

All per-cell arithmetic has a fixed shape (``n x n``) and a fixed operation sequence
determined by the cell's own coordinates, so a cell's bits never depend on the rest of
the block; every step runs inside
:func:`~pipeline.models.precision.context.working_precision`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from flint import arb, arb_mat

from pipeline.models.hidden_spectrum.kalman import ExactInputs, KalmanFilter
from pipeline.models.hidden_spectrum.system import unstable_groups
from pipeline.models.hidden_spectrum.zeros import risk_is_zero
from pipeline.models.precision.balls import eye
from pipeline.models.precision.context import PrecisionError, working_precision
from pipeline.models.precision.doubling import ramp_sums
from pipeline.models.spectra import Spectrum

__all__ = ["ANCHOR", "MAX_BITS", "TARGET_BITS", "Cells", "working_bits"]

FloatArray = npt.NDArray[np.float64]

TARGET_BITS = 64  # correct bits every returned risk must have (ball radius check)
MAX_BITS = 1 << 15  # working precision cap: beyond it a cell raises PrecisionError
ANCHOR = 64  # spacing of the doubling anchors for Z_N

Profile = tuple[float, float, float]


def working_bits(sp: Spectrum, filt: KalmanFilter, k: int, T: int) -> int:
    """Initial working precision for a cell, from its own (spectrum, noise_ratio, k, T).

    ``TARGET_BITS`` plus a margin, plus estimates of the bits that cancel: the polynomial
    growth of ``Z_N`` (``sum of unstable block sizes * log2 T``), the non-normal loss in
    ``F^k' C'`` (``k log2(||F||_inf / rho(F))``, with ``k`` rounded up to a multiple of 64 so
    that neighbouring filter lengths share anchors), and ``2 T log2(rho_max / rho_min)`` over
    the unstable moduli. Rounded up to a multiple of 64. A cell whose result misses
    ``TARGET_BITS`` is recomputed at twice the precision.
    """
    return _bits_rule(_precision_profile(sp, filt), k, T)


def _precision_profile(sp: Spectrum, filt: KalmanFilter) -> Profile:
    """``(sum of unstable block sizes, log2(||F||_inf / rho(F)), log2(rho_max / rho_min))``."""
    unstable = unstable_groups(sp)
    rho = filt.closed_loop_radius
    loss = 0.0
    if rho > 0.0:
        loss = max(0.0, math.log2(float(np.max(np.sum(np.abs(filt.F), axis=1))) / rho))
    mods = [g.modulus for g in unstable] or [1.0]
    return float(sum(g.multiplicity for g in unstable)), loss, math.log2(max(mods) / min(mods))


def _bits_rule(profile: Profile, k: int, T: int) -> int:
    """The rule of :func:`working_bits` from a cell's :func:`_precision_profile`, capped at ``MAX_BITS``."""
    m_sum, loss, spread = profile
    kb = ANCHOR * max(1, -(-int(k) // ANCHOR))
    bits = TARGET_BITS + 48 + m_sum * math.log2(T + 1.0) + kb * loss + 2.0 * T * spread
    return min(int(64 * math.ceil(bits / 64.0)), MAX_BITS)


class Cells:
    """The exact risk of the cells of one (spectrum, noise_ratio), with per-precision ball caches.

    Every cached entry is a fixed function of its key (working precision, ``N``, ``T``,
    ``k``); an instance belongs to one kernel call and is not shared between threads.
    """

    def __init__(self, ex: ExactInputs, sp: Spectrum):
        self.ex = ex
        self.sp = sp
        self.profile = _precision_profile(sp, ex.filt)
        self._by_prec: dict[int, dict[str, Any]] = {}
        self._zero: dict[tuple[int, int], bool] = {}

    def _p(self, prec: int) -> dict[str, Any]:
        """The cache of working precision ``prec`` (its entries are computed at ``prec``)."""
        d = self._by_prec.get(prec)
        if d is None:
            ex = self.ex
            F = ex.A - ex.K * ex.C
            d = {
                "F": F,
                "FT": F.transpose(),
                "CTC": ex.C.transpose() * ex.C,
                "c": [ex.C.transpose()],  # c_j = F^j' C'
                "anchors": {},
                "W": {},
                "I": eye(ex.n),
            }
            self._by_prec[prec] = d
        return d

    def c(self, prec: int, k: int) -> arb_mat:
        """``c_k = F^k' C'`` (n, 1)."""
        d = self._p(prec)
        cs = d["c"]
        while len(cs) <= k:
            cs.append(d["FT"] * cs[-1])
        out: arb_mat = cs[k]
        return out

    def Z(self, prec: int, N: int) -> arb_mat:
        """``Z_N`` (n, n): doubling to the anchor ``64 floor(N / 64)``, then single steps."""
        d = self._p(prec)
        N0 = ANCHOR * (N // ANCHOR)
        states = d["anchors"].get(N0)
        if states is None:
            states = d["anchors"][N0] = [ramp_sums(self.ex.A, self.ex.K, self.ex.S, N0)]
        ex = self.ex
        while len(states) <= N - N0:
            u, X, Z = states[-1]
            X = X + u * u.transpose() * ex.S
            states.append((ex.A * u, X, Z + X))
        z: arb_mat = states[N - N0][2]
        return z

    def W(self, prec: int, T: int, k: int) -> arb_mat:
        """``W_k(T) = sum_{i=1..k} c_{k-i} c_{k-i}' / (S (T + 1 - i))`` by ``W_{j+1} = F' W_j F + C'C/(S(T-j))``."""
        d = self._p(prec)
        Ws = d["W"].get(T)
        if Ws is None:
            Ws = d["W"][T] = [arb_mat(self.ex.n, self.ex.n)]
        while len(Ws) <= k:
            j = len(Ws) - 1
            Ws.append(d["FT"] * Ws[-1] * d["F"] + d["CTC"] * (arb(1) / (self.ex.S * (T - j))))
        w: arb_mat = Ws[k]
        return w

    def solve(self, prec: int, k: int, T: int) -> tuple[arb, arb_mat]:
        """``(T R_T, x)`` of best_fir at (k, T), ``x = (I + Z W)^-1 Z c`` (needs ``T > k >= 1``)."""
        d = self._p(prec)
        Z = self.Z(prec, T - k)
        c = self.c(prec, k)
        M = d["I"] + Z * self.W(prec, T, k)
        x = M.solve(Z * c)
        return (c.transpose() * x)[0, 0], x

    def value(self, prec: int, learner: str, k: int, T: int) -> arb:
        """``R_T`` as an arb ball at working precision ``prec`` (``T > k``)."""
        if learner == "truncated_kalman" or k == 0:
            Z = self.Z(prec, T - k)
            c = self.c(prec, k)
            tr = (c.transpose() * Z * c)[0, 0]
        else:
            try:
                tr, _ = self.solve(prec, k, T)
            except ZeroDivisionError:  # the ball matrix is not provably invertible: more bits
                return arb.nan()
        return tr / T

    def verified(self, learner: str, k: int, T: int) -> arb:
        """``R_T`` (``T > k``) with at least ``TARGET_BITS`` correct bits, or exactly 0: a ball that
        contains 0 is decided by :func:`~pipeline.models.hidden_spectrum.zeros.risk_is_zero`."""
        prec = _bits_rule(self.profile, k, T)
        while True:
            with working_precision(prec):
                v = self.value(prec, learner, k, T)
            if v.is_zero() or (v.is_finite() and v > 0 and v.rel_accuracy_bits() >= TARGET_BITS):
                return v
            if v.contains(0) and self.exactly_zero(k, T):  # no precision makes that ball exact
                return arb(0)
            if prec >= MAX_BITS:
                raise PrecisionError(
                    f"spectrum {self.sp.text!r}, noise_ratio {self.ex.filt.noise_ratio!r}, learner {learner}, "
                    f"k = {k}, T = {T}: risk not verified to {TARGET_BITS} bits at {prec} bits of precision"
                )
            prec = min(2 * prec, MAX_BITS)

    def exactly_zero(self, k: int, T: int) -> bool:
        """Whether ``R_T`` (``T > k``) is exactly 0, decided in integers (:mod:`.zeros`); cached."""
        key = (k, T - k)
        found = self._zero.get(key)
        if found is None:
            found = self._zero[key] = risk_is_zero(self.ex, k, T - k)
        return found

    def verified_theta(self, k: int, T: int) -> FloatArray:
        """The best_fir taps ``theta`` (k,) at ``T > k >= 1``, verified to absolute error
        ``2^-52 max |theta|``: ``theta = G - B^-1 beta``, ``beta_i = -(F^(k-i)' C')' x / (S (T + 1 - i))``."""
        ex = self.ex
        prec = _bits_rule(self.profile, k, T)
        while True:
            with working_precision(prec):
                try:
                    _, x = self.solve(prec, k, T)
                    beta = [
                        -(self.c(prec, k - i).transpose() * x)[0, 0] / (ex.S * (T + 1 - i)) for i in range(1, k + 1)
                    ]
                    Ga = [(self.c(prec, j).transpose() * ex.K)[0, 0] for j in range(k)]
                    theta = []
                    for j in range(k):  # theta_j = G_j - beta_j + sum_{l<j} G_{j-l} beta_l
                        acc = Ga[j] - beta[j]
                        for l in range(j):
                            acc += Ga[j - 1 - l] * beta[l]
                        theta.append(acc)
                    top = max(abs(float(t.mid())) for t in theta)
                    ok = all(t.is_finite() and float(t.rad()) <= 2.0**-52 * top for t in theta)
                except ZeroDivisionError:
                    ok = False
            if ok:
                return np.array([float(t.mid()) for t in theta])
            if prec >= MAX_BITS:
                raise PrecisionError(f"best_fir theta not verified (spectrum {self.sp.text!r}, k = {k}, T = {T})")
            prec = min(2 * prec, MAX_BITS)
