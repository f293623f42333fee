"""Boundedness in ``T`` (MATH §1.4): the exact rank criterion, independent of ``T``.

``lim_T r_T(d)`` is finite iff ``H|V_u`` lies in the span of ``B_1|V_u .. B_d|V_u``; one
pivot split of the learner's unstable restrictions decides it for every ``d`` and draw.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.models.precision.pivots import PIVOT_TOL, dot, pivot_split

__all__ = ["bounded_table"]

FloatArray = NDArray[np.float64]


def bounded_table(P: FloatArray, h: FloatArray, d_star: int, tol: float = PIVOT_TOL) -> NDArray[np.bool_]:
    """``bounded[d, draw]`` for d = 0..D (D+1, N): the rank criterion of MATH.md 1.4.

    ``P`` (K, D) learner coefficients, ``h`` (N, K) perturbation coefficients in a
    working basis whose first ``d_star`` elements are supported on the unstable columns
    (the rest on the stable ones): ``H|V_u`` lies in the span of ``B_1|V_u .. B_d|V_u``.
    One pivot split serves every ``d`` and draw.
    """
    N = h.shape[0]
    D = P.shape[1]
    out = np.ones((D + 1, N), dtype=bool)
    if d_star == 0:
        return out
    split = pivot_split(np.asarray(P[:d_star, :], dtype=float), tol)
    order = split.order
    for q in range(N):
        hu = np.array(h[q, :d_star], dtype=float)
        a = np.einsum("kr,k->r", split.Qc, hu) if order.size else np.zeros(0)
        res = hu - np.einsum("kr,r->k", split.Qc, a) if order.size else hu
        perp = dot(res, res)
        # residual after d directions: perp + sum of a_k^2 over pivots not yet taken
        tail = np.zeros(D + 1)
        for k in range(order.size - 1, -1, -1):
            tail[: order[k] + 1] += a[k] * a[k]
        out[:, q] = np.sqrt(perp + tail) <= tol
    return out
