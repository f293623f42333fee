"""Exact normal equations from the raw outputs: the fallback for cells the float sums cannot certify.

A few cells are so ill-conditioned that the a-priori radii of the float running sums
(:mod:`.least_squares`) leave fewer than :data:`~.least_squares.MIN_THETA_BITS` certified bits
(typically short horizons with ``k`` near ``T`` or high-noise marginal systems with few data).
For those with ``m (T + 1) <= EXACT_LIMIT`` the data are re-simulated (the same streams) and the
normal equations are formed exactly: every float output is an integer times a common power of
two, and the lagged sums ``sum_i sum_{u<=N} y_u y_(u+l)`` are Python integers (object arrays:
no rounding anywhere). The solve then has exact inputs and reaches any accuracy by precision
doubling. Cost ``O(m T k)`` integer operations.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from flint import arb, arb_mat

from pipeline.models.fitted_fir.system import FittedSystem
from pipeline.models.simulation.fitted_outputs import outputs, training_key

__all__ = ["EXACT_LIMIT", "ExactEquations", "exact_equations"]

FloatArray = npt.NDArray[np.float64]

EXACT_LIMIT = 1 << 19  # largest m (T + 1) refitted from exact sums (a few seconds at k = 32)


class ExactEquations:
    """``G`` (k, k) and ``b`` (k,) of the original lag basis as integers times ``2^scale``."""

    def __init__(self, G: list[list[int]], b: list[int], scale: int):
        self.G = G
        self.b = b
        self.scale = scale

    def solve(self, k: int) -> list[arb] | None:
        """``theta`` (k,) at the current precision from the leading ``k x k`` block (``None``
        when the ball matrix is not provably invertible)."""
        S = arb_mat(k, k)
        rhs = arb_mat(k, 1)
        for j in range(k):
            rhs[j, 0] = arb(self.b[j])
            for l in range(k):
                S[j, l] = arb(self.G[j][l])
        try:
            x = S.solve(rhs)
        except ZeroDivisionError:
            return None
        return [x[j, 0] for j in range(k)]


def _integers(Y: FloatArray) -> tuple[npt.NDArray[np.object_], int]:
    """``Y = I 2^e`` exactly with ``I`` an object array of Python integers."""
    mant, ex = np.frexp(Y)
    m53 = (mant * 2.0**53).astype(np.int64)
    nz = m53 != 0
    e = int(np.min(ex[nz]) - 53) if nz.any() else 0
    shift = np.where(nz, ex - 53 - e, 0).astype(np.int64)
    out = np.empty(Y.shape, dtype=object)
    flat_m, flat_s, flat_o = m53.ravel(), shift.ravel(), out.reshape(-1)
    for i in range(flat_m.size):
        flat_o[i] = int(flat_m[i]) << int(flat_s[i])
    return out, e


def exact_equations(system: FittedSystem, seed: int, fit: int, k: int, T: int, m: int) -> ExactEquations:
    """The exact zero-padded normal equations of ``k <= T`` taps of cell ``(T, m)`` of a training set."""
    Y = outputs(system, seed, training_key(system, fit), m, T + 1)
    I, e = _integers(Y)
    lag = []
    for l in range(k + 1):
        prods = I[:, : T + 1 - l] * I[:, l : T + 1]
        lag.append(np.cumsum(prods.sum(axis=0)))  # [N] = sum_i sum_{u<=N} y_u y_{u+l}
    G = [[int(lag[abs(j - l)][T - max(j, l)]) for l in range(1, k + 1)] for j in range(1, k + 1)]
    b = [int(lag[j][T - j]) for j in range(1, k + 1)]
    return ExactEquations(G, b, 2 * e)
