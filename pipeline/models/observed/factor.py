"""The factor of the learner Gram matrix at one horizon (MATH §1.3): pivots, then a weighted QR.

Learners and perturbations are coefficient vectors in a *working basis*: the adversary
family's structured orthonormal basis when the learner lies in that family (this snaps both
exactly into it), else the elementary basis of all ``n x n`` matrices. Either way its first
``d_star`` elements are supported on the unstable columns and the rest on the stable ones.

* Exact structure first (cost independent of ``T``): the learner's restrictions to the
  unstable columns are split, in the learner's own order, into *pivots* and exact
  combinations of earlier pivots (:mod:`pipeline.models.precision.pivots`), which are
  replaced by the prefix-preserving combination whose unstable part is **exactly zero**
  (a unit upper triangular change ``B' = B T``). This is where the bounded cells
  (``d >= d*``) get their exactness.
* Then one Householder QR of the weighted learner matrix (:mod:`.weight`) in the learner's
  order, with per-row exponents (:mod:`pipeline.models.precision.householder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pipeline.models.observed.families import FamilyBasis, family_basis
from pipeline.models.observed.weight import Weight, weight
from pipeline.models.precision.householder import Reflection, householder
from pipeline.models.precision.pivots import PivotSplit, pivot_split
from pipeline.models.spectra import parse_spectrum

__all__ = ["Factor", "risk_factor", "working_basis"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass
class Factor:
    """Row-scaled Cholesky factor of the learner Gram matrix for one (spectrum, family,
    learner, T), with what the per-draw work needs.

    ``R[i, :] = mant[i, :] * 2^exp2[i]`` (upper, D x D) is the factor for the
    pivot-snapped learner ``B' = B T``; ``tinv = T^-1`` maps learner coefficients to
    ``B'`` coefficients (``B g = B' (tinv g)``).
    """

    mant: FloatArray  # (D, D)
    exp2: IntArray  # (D,)
    zero: bool = False  # Sigmabar == 0 (T = 1): every risk is 0
    shift: int = 0  # kept for callers of the fixed-point factor; always 0
    tinv: FloatArray | None = None  # (D, D) unit upper triangular
    split: PivotSplit | None = None
    Pp: FloatArray | None = None  # (K, D) working-basis coefficients of B'
    E: FloatArray | None = None  # (K, n, n) working basis
    d_star: int = 0
    weight: Weight | None = None
    kept: IntArray | None = None  # weighted rows the QR works on
    refl: list[Reflection] = field(default_factory=list)
    prow: IntArray | None = None  # (D,) pivot row of every step, indices into kept


def working_basis(text: str, family: str, K: int) -> FamilyBasis:
    """The basis ``K`` learner coefficients refer to: ``family``'s, or all ``n x n`` matrices."""
    fb = family_basis(text, family)
    if K == fb.D:
        return fb
    n = parse_spectrum(text).n
    if n * n == K:
        return family_basis(text, "full")
    raise ValueError(f"{K} learner coefficients fit neither the {family} family ({fb.D}) nor all matrices ({n * n})")


def risk_factor(text: str, family: str, P: FloatArray, T: int, extra_bits: int = 0) -> Factor:
    """Factor of the learner Gram matrix ``P' G_T P`` at horizon ``T``.

    ``P`` (K, D): the learner basis ``B_i = sum_k P[k, i] E_k`` in the working basis
    ``E`` (the family's structured basis if ``K`` is its dimension, else all ``n x n``
    matrices). ``extra_bits`` is accepted for the callers of the fixed-point factor
    and ignored (the weight's precision is raised until certain).
    """
    sp = parse_spectrum(text)
    P = np.asarray(P, dtype=float)
    K, D = P.shape
    fb = working_basis(text, family, K)
    Ku = fb.d_star
    T = int(T)
    if T < 1:
        raise ValueError("T must be >= 1")
    split = (
        pivot_split(P[:Ku, :])
        if D
        else PivotSplit(np.zeros(0, bool), np.zeros((0, 0)), np.zeros((Ku, 0)), np.zeros((0, 0)))
    )
    Pp = P - P @ split.X if D else P.copy()
    Pp[:Ku, ~split.pivot] = 0.0
    tinv = np.eye(D) + split.X
    if T == 1:
        return Factor(
            np.zeros((D, D)),
            np.zeros(D, dtype=np.int64),
            zero=True,
            tinv=tinv,
            split=split,
            Pp=Pp,
            E=np.asarray(fb.E),
            d_star=Ku,
        )
    wt = weight(sp, T)
    E = np.asarray(fb.E)
    # rows that vanish on the whole working basis never enter the QR
    used = np.any(wt.apply(E) != 0.0, axis=0)
    kept = np.flatnonzero(used).astype(np.int64)
    if D == 0:
        return Factor(
            np.zeros((0, 0)),
            np.zeros(0, dtype=np.int64),
            tinv=tinv,
            split=split,
            Pp=Pp,
            E=E,
            d_star=Ku,
            weight=wt,
            kept=kept,
            prow=np.zeros(0, dtype=np.int64),
        )
    BJ = np.einsum("kd,kij->dij", Pp, E)
    Y = np.ascontiguousarray(wt.apply(BJ)[:, kept].T)  # (m, D)
    mant, exp2, prow, refl = householder(Y, wt.exps[kept])
    return Factor(mant, exp2, tinv=tinv, split=split, Pp=Pp, E=E, d_star=Ku, weight=wt, kept=kept, refl=refl, prow=prow)
