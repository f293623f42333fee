"""The exact best-in-class risk ``r_T(d)`` for every ``d`` at once, from a :class:`~.factor.Factor`.

``r_T(d) = sum_{i>d} (R' g')_i^2`` for every ``d`` at once when ``H = B g`` lies in the
learner's span; otherwise ``H`` is split the same way as the learner (its unstable part is
reproduced exactly by the pivots when it lies in their span) and the remainder is pushed
through the stored reflections. Per-draw work is float64 in fixed shapes, so a cell's bits
never depend on which draws, ``d`` or ``T`` share the call; results are log2 values, finite
where ``risk`` overflows float64.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from pipeline.models.observed.factor import Factor
from pipeline.models.precision.householder import apply_reflections
from pipeline.models.precision.pivots import PIVOT_TOL, dot

__all__ = ["best_coefficients", "log2_risk", "log2_risk_general"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _rowdot(Mat: FloatArray, vecs: FloatArray) -> FloatArray:
    """``out[k, i] = sum_j Mat[i, j] vecs[k, j]`` reduced along a contiguous last axis
    (bitwise independent of how many vectors are passed)."""
    out: FloatArray = np.sum(Mat[None, :, :] * vecs[:, None, :], axis=-1)
    return out


def _tail_log2(terms: FloatArray, rest: float) -> FloatArray:
    """``log2(2^rest + sum_{i >= d} 2^terms[i])`` for d = 0..D (D+1,)."""
    D = terms.shape[0]
    out = np.empty(D + 1)
    acc = rest
    out[D] = acc
    for i in range(D - 1, -1, -1):
        acc = float(np.logaddexp2(acc, terms[i]))
        out[i] = acc
    return out


def log2_risk(factor: Factor, Pinv: FloatArray | None, h: FloatArray) -> FloatArray:
    """``log2 r_T(d)`` for d = 0..D, shape (N, D+1); ``-inf`` where the risk is exactly 0.

    ``h`` (N, K): the perturbations in the working basis. ``Pinv`` (D, K): when given,
    every ``H = B g`` with ``g = Pinv h`` lies in the learner's span; ``None`` for any
    other learner (the general path, see :func:`log2_risk_general`).
    """
    if Pinv is None:
        return log2_risk_general(factor, h)
    N = h.shape[0]
    D = factor.mant.shape[0]
    out = np.full((N, D + 1), -np.inf)
    if D == 0 or factor.zero:
        return out
    g = _rowdot(Pinv, h)  # coordinates of H in the learner basis
    if factor.tinv is not None:
        g = _rowdot(factor.tinv, g)
    v = _rowdot(factor.mant, g)  # (N, D), row i scaled by 2^exp2[i]
    with np.errstate(divide="ignore"):
        terms = 2.0 * factor.exp2[None, :] + np.log2(v * v)
    out[:, :D] = np.logaddexp2.accumulate(terms[:, ::-1], axis=1)[:, ::-1]
    return out


def log2_risk_general(factor: Factor, h: FloatArray) -> FloatArray:
    """``log2 r_T(d)`` (N, D+1) for perturbations ``h`` (N, K) in the working basis that
    need not lie in the learner's span (a learner from another family).

    ``H|V_u`` in the span of the pivots' restrictions (decided with ``PIVOT_TOL``, as in
    :func:`bounded_table`) is reproduced by them exactly: ``H = sum_j alpha_j B'_{p_j}
    + H'`` with ``H'`` exactly zero on the unstable columns; ``H'`` goes through the
    reflections and the ``alpha`` part through ``R'``.
    """
    N = h.shape[0]
    D = factor.mant.shape[0]
    out = np.full((N, D + 1), -np.inf)
    if factor.zero:
        return out
    assert factor.split is not None and factor.Pp is not None and factor.E is not None
    assert factor.weight is not None and factor.kept is not None and factor.prow is not None
    split, Ku = factor.split, factor.d_star
    order = split.order
    m_all = factor.weight.exps.shape[0]
    outside = np.ones(m_all, dtype=bool)
    outside[factor.kept] = False
    for q in range(N):
        hq = np.array(h[q], dtype=float)
        alpha = np.zeros(D)
        if order.size:
            hu = hq[:Ku]
            a = np.einsum("kr,k->r", split.Qc, hu)
            res = hu - np.einsum("kr,r->k", split.Qc, a)
            if math.sqrt(dot(res, res)) <= PIVOT_TOL:
                from scipy.linalg import solve_triangular

                alpha[order] = solve_triangular(split.Rc, a, lower=False)
                hq = hq - np.einsum("kd,d->k", factor.Pp[:, order], alpha[order])
                hq[:Ku] = 0.0
        elif Ku and not np.any(hq[:Ku]):
            pass
        HJ = np.einsum("k,kij->ij", hq, factor.E)
        yall = factor.weight.apply(HJ)
        fr, ex = np.frexp(yall)
        y = fr[factor.kept].copy()
        ey = (ex[factor.kept] + factor.weight.exps[factor.kept]).astype(np.int64)
        apply_reflections(factor.refl, y, ey)
        # components along the learner directions (pivot rows), plus the alpha part
        zy = y[factor.prow]
        ze = ey[factor.prow]
        za = np.einsum("ij,j->i", factor.mant, alpha)
        with np.errstate(divide="ignore", over="ignore"):
            l1 = 2.0 * ze + np.log2(zy * zy)
        if order.size and np.any(alpha):
            # z = za 2^exp2 + zy 2^ze, summed at the larger exponent
            top = np.maximum(factor.exp2, ze)
            z = np.ldexp(za, (factor.exp2 - top).astype(np.int64)) + np.ldexp(zy, (ze - top).astype(np.int64))
            with np.errstate(divide="ignore"):
                terms = 2.0 * top + np.log2(z * z)
        else:
            terms = l1
        restmask = np.ones(y.shape[0], dtype=bool)
        restmask[factor.prow] = False
        with np.errstate(divide="ignore"):
            rterms = np.concatenate(
                [
                    2.0 * ey[restmask] + np.log2(y[restmask] ** 2),
                    2.0 * (ex[outside] + factor.weight.exps[outside]) + np.log2(fr[outside] ** 2),
                ]
            )
        rest = -np.inf
        for t_ in np.sort(rterms):
            rest = float(np.logaddexp2(rest, t_))
        out[q] = _tail_log2(terms, rest)
    return out


def best_coefficients(factor: Factor, Pinv: FloatArray, h: FloatArray, d: int) -> FloatArray:
    """Residual coefficients ``c`` (N, D) in the learner basis for ``d`` parameters:
    ``Delta = H - sum_{i<=d} phi_i B_i = sum_i c_i B_i`` with ``phi`` optimal (learners
    whose span holds ``H``)."""
    g = _rowdot(Pinv, h)
    c = g.copy()
    if d == 0 or factor.zero:  # any phi is optimal when Sigmabar = 0: take phi = 0
        return c
    D = g.shape[1]
    tinv = factor.tinv if factor.tinv is not None else np.eye(D)
    Rm = np.einsum("ij,jk->ik", factor.mant, tinv)  # R = R' T^-1, rows still scaled by 2^exp2
    from scipy.linalg import solve_triangular

    if d < D:
        rhs = np.stack([np.einsum("ij,j->i", Rm[:d, d:], g[q, d:]) for q in range(g.shape[0])])
        corr = solve_triangular(Rm[:d, :d], rhs.T, lower=False).T
    else:
        corr = np.zeros_like(g)
    c[:, :d] = -corr
    return c
