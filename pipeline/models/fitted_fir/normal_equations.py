"""The normal equations of a fitted FIR filter in the graded basis, from lagged running sums.

Every entry of the normal equations (MATH §6.2, zero-padded regressors, equations
``t = 1 .. T``) is a sum over ``t`` of a product of two series values at two lags
(:mod:`pipeline.models.fitted_fir.reference`)::

    sum_{t=1..T} sigma_a(t - l_a) sigma_b(t - l_b) = R_ab,e(T - l_a),  e = l_b - l_a >= 0,
    R_ab,e(M) = sum_{tau=0..M} sigma_a(tau) sigma_b(tau - e)          (sigma(s < 0) = 0)

(the ``tau = 0`` term is an equation, ``t = l_a``, whenever ``l_a >= 1``; only the residual sum
of squares, never needed, would start at ``tau = 1``). With ``M = T - j`` a reading is named
``(a, b, e, j)``. Two exact identities keep the number of running sums per time step at
``k_max - n_u + O(n_u)`` instead of ``O(n_u k_max)``:

* negative lags: ``R_ab,-f(M) = R_ba,f(M + f)``;
* summation by parts along a factor ``sigma_(a+1) = (1 + a1 L + a2 L^2) sigma_a``: for a level
  series against ``u``,
  ``R_a u,e(M) = R_(a+1) u,e(M) - a1 R_a u,e-1(M - 1) - a2 R_a u,e-2(M - 2)``,
  down to lags ``e <= 0`` and to ``R_uu``.

:class:`Assembly` evaluates entries through a ``reader`` of the directly accumulated sums
(memoised per reading); :func:`required_keys` runs it once with a recording reader to list
the sums the statistics must accumulate and the largest ``j`` they are read at.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from pipeline.models.fitted_fir.reference import Design, Reference, Regressor

__all__ = ["Assembly", "Key", "required_keys"]

Key = tuple[int, int, int]  # (a, b, e): the running sum of sigma_a(tau) sigma_b(tau - e)
Reader = Callable[[int, int, int, int], Any]


class Assembly:
    """Entries of the normal equations from a reader ``(a, b, e, j) -> value`` (memoised).

    Values are any numbers closed under ``+``, ``-`` and multiplication by a float (python-flint
    ``arb`` balls in production, so that every reading's error bound propagates).
    """

    def __init__(self, ref: Reference, reader: Reader):
        self.ref = ref
        self.reader = reader
        self._memo: dict[tuple[int, int, int, int], Any] = {}

    def running(self, a: int, b: int, e: int, j: int) -> Any:
        """``R_ab,e(T - j)`` by the identities of the module docstring."""
        key = (a, b, e, j)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        q = self.ref.q
        if e < 0:
            out = self.running(b, a, -e, j + e)
        elif a < q and b == q and e >= 1:
            f = self.ref.factors[a]
            out = self.running(a + 1, q, e, j)
            if f.a1 != 0.0:
                out = out - self.running(a, q, e - 1, j + 1) * f.a1
            if f.a2 != 0.0:
                out = out - self.running(a, q, e - 2, j + 2) * f.a2
        else:
            out = self.reader(a, b, e, j)
        self._memo[key] = out
        return out

    def entry(self, x: Regressor, y: Regressor) -> Any:
        """``sum_{t=1..T} sigma_x(t - l_x) sigma_y(t - l_y)`` (not both at lag 0)."""
        if y.lag >= x.lag:
            return self.running(x.series, y.series, y.lag - x.lag, x.lag)
        return self.running(y.series, x.series, x.lag - y.lag, y.lag)

    def equations(self, design: Design) -> tuple[list[list[Any]], list[Any]]:
        """Gram ``G`` (k, k) (upper triangle mirrored) and right-hand side ``c`` (k,) of ``design``."""
        regs = design.regressors
        k = len(regs)
        G: list[list[Any]] = [[None] * k for _ in range(k)]
        for i in range(k):
            for l in range(i, k):
                G[i][l] = G[l][i] = self.entry(regs[i], regs[l])
        target = Regressor(design.target, 0)
        c = [self.entry(r, target) for r in regs]
        return G, c


def required_keys(ref: Reference, k_max: int) -> tuple[tuple[Key, ...], int]:
    """The running sums the normal equations of every ``k <= k_max`` read, and ``J`` (every
    reading has ``j < J``). Diagonal sums ``(a, a, 0)`` of every series are included (the
    error bounds use them), as is ``(0, 0, 0)``."""
    return _required(ref, int(k_max))


@lru_cache(maxsize=64)
def _required(ref: Reference, k_max: int) -> tuple[tuple[Key, ...], int]:
    seen: set[Key] = set()
    js = [0]

    def record(a: int, b: int, e: int, j: int) -> float:
        seen.add((a, b, e))
        js.append(j)
        return 0.0

    asm = Assembly(ref, record)
    for k in range(1, k_max + 1):
        asm.equations(ref.design(k))
    series = {0} | {a for a, _, _ in seen} | {b for _, b, _ in seen}
    seen |= {(a, a, 0) for a in series}
    q = ref.q
    uu = sorted(x for x in seen if x[0] == q and x[1] == q)
    if uu:  # the u x u lags form one contiguous run 0 .. D (accumulated with one broadcast)
        seen |= {(q, q, d) for d in range(uu[-1][2] + 1)}
    keys = sorted(seen, key=lambda x: (not (x[0] == q and x[1] == q), x))
    return tuple(keys), max(js) + 1
