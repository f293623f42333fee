"""The exact risk ``R_T(theta)`` of a given FIR filter (MATH §5.2, §2.3), in ball arithmetic.

With the innovations form of :mod:`pipeline.models.hidden_spectrum.risk` (``h_i = C A^(i-1) K``,
``B`` the unit lower-triangular Toeplitz matrix of ``1, h_1, h_2, ...``, ``c_j = F^j' C'``,
``Z_N = sum_{i<N} (N - i) A^i K S K' A^i'``), a filter ``theta`` of ``k <= T`` taps has

    beta = h - B theta,    g = c_k + sum_{i=1..k} beta_i c_(k-i),
    T R_T(theta) = g' Z_(T-k) g + S sum_{i=1..k} (T + 1 - i) beta_i^2

(``theta = G``, the Kalman truncation, is ``beta = 0``; taps beyond ``T`` never act before the
horizon and are dropped). ``Z_N`` comes from the shared
:class:`~pipeline.models.hidden_spectrum.cells.Cells` cache (doubling to anchors, cost
independent of ``T``); everything runs in python-flint ``arb`` inside
:func:`~pipeline.models.precision.context.working_precision`, starting at
:func:`~pipeline.models.hidden_spectrum.cells.working_bits` and doubling until the ball has
:data:`TARGET_BITS` correct bits. ``theta`` may be float64 values or exact ``arb`` points of
any precision (a fitted filter of a marginal system must be evaluated with digits beyond
float64: at ``T = 1e5`` its risk depends on them). For a spectrum ``"lam"`` this is the risk of
the scalar system (MATH §5.2); the tests check it against the literal O(T) identity of §2.3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flint import arb, arb_mat

from pipeline.models.fitted_fir.system import FittedSystem
from pipeline.models.hidden_spectrum.cells import MAX_BITS, Cells, working_bits
from pipeline.models.hidden_spectrum.kalman import exact_inputs
from pipeline.models.precision.balls import log10 as ball_log10
from pipeline.models.precision.context import PrecisionError, working_precision

__all__ = ["TARGET_BITS", "FilterRisk"]

TARGET_BITS = 64  # correct bits of every returned risk


class FilterRisk:
    """Exact risks of arbitrary filters on one (system, noise ratio), with per-precision caches.

    One instance serves one thread (like :class:`~pipeline.models.hidden_spectrum.cells.Cells`).
    """

    def __init__(self, system: FittedSystem):
        self.system = system
        self.ex = exact_inputs(system.text, system.noise_ratio, system.observation)
        self.cells = Cells(self.ex, system.spectrum)
        self._h: dict[int, list[arb]] = {}
        self._Ak: dict[int, list[arb_mat]] = {}

    def h(self, prec: int, k: int) -> list[arb]:
        """``h_1 .. h_k`` (``h_i = C A^(i-1) K``) at working precision ``prec``."""
        hs = self._h.setdefault(prec, [])
        vs = self._Ak.setdefault(prec, [self.ex.K])
        while len(hs) < k:
            v = vs[-1]
            hs.append((self.ex.C * v)[0, 0])
            vs.append(self.ex.A * v)
        return hs[:k]

    def value(self, prec: int, theta: Sequence[Any], T: int) -> arb:
        """``R_T(theta)`` as a ball at working precision ``prec`` (call inside it)."""
        th = [t if isinstance(t, arb) else arb(float(t)) for t in list(theta)[: int(T)]]
        k = len(th)
        h = self.h(prec, k)
        beta = []
        for i in range(k):
            acc = h[i] - th[i]
            for j in range(i):
                acc -= h[i - 1 - j] * th[j]
            beta.append(acc)
        g = self.cells.c(prec, k)
        for i in range(k):
            g = g + self.cells.c(prec, k - 1 - i) * beta[i]
        Z = self.cells.Z(prec, int(T) - k)
        total = (g.transpose() * Z * g)[0, 0]
        tail = arb(0)
        for i in range(k):
            tail += beta[i] * beta[i] * (int(T) - i)
        return (total + tail * self.ex.S) / int(T)

    def verified(self, theta: Sequence[Any], T: int) -> arb:
        """``R_T(theta)`` with at least :data:`TARGET_BITS` correct bits (or exactly 0).

        :class:`PrecisionError` if ``MAX_BITS`` of working precision do not suffice.
        """
        k = min(len(theta), int(T))
        prec = working_bits(self.system.spectrum, self.ex.filt, k, int(T))
        while True:
            with working_precision(prec):
                v = self.value(prec, theta, int(T))
                ok = v.is_zero() or (v.is_finite() and v > 0 and v.rel_accuracy_bits() >= TARGET_BITS)
            if ok:
                return v
            if prec >= MAX_BITS:
                raise PrecisionError(
                    f"spectrum {self.system.text!r}, noise_ratio {self.system.noise_ratio!r}, k = {k}, T = {T}: "
                    f"risk of the fitted filter not verified to {TARGET_BITS} bits at {prec} bits"
                )
            prec = min(2 * prec, MAX_BITS)

    def risk(self, theta: Sequence[Any], T: int) -> tuple[float, float]:
        """``(risk, log10_risk)`` as float64 (``risk = inf`` where it overflows; ``log10`` exact)."""
        v = self.verified(theta, T)
        return float(v.mid()), ball_log10(v)
