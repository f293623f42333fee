"""Perturbation families (MATH §1.3): structured orthonormal bases in Jordan coordinates.

A family's basis ``E`` (D, n, n) is orthonormal in the Frobenius inner product, with exact
zeros and pair symmetries; its first ``d_star`` elements are supported on the unstable
columns, the rest on the stable ones (the split of MATH §1.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from pipeline.models.spectra import FAMILIES, Spectrum, critical_d_theory, family_dimension, parse_spectrum

__all__ = ["FamilyBasis", "family_basis"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class FamilyBasis:
    """Structured orthonormal basis of a family in Jordan coordinates.

    ``E[:d_star]`` span ``F_1`` (supported on unstable columns), ``E[d_star:]``
    span ``F_0`` (supported on stable columns). ``E`` (D, n, n) is read-only (shared).
    """

    E: FloatArray  # (D, n, n)
    d_star: int

    @property
    def D(self) -> int:
        """The family's dimension."""
        return int(self.E.shape[0])


def _elementary(
    n: int, rows: Sequence[int] | NDArray[np.int64], cols: Sequence[int] | NDArray[np.int64]
) -> list[FloatArray]:
    out = []
    for r in rows:
        for c in cols:
            M = np.zeros((n, n))
            M[r, c] = 1.0
            out.append(M)
    return out


def _pair_commuting(
    n: int, idx_rows: Sequence[int] | NDArray[np.int64], idx_cols: Sequence[int] | NDArray[np.int64]
) -> list[FloatArray]:
    """Basis of real matrices between two pair-structured index sets that commute
    with the complex structure: 2x2 blocks ``[[x,-y],[y,x]] / sqrt 2``."""
    out = []
    c = 1.0 / math.sqrt(2.0)
    for p in range(0, len(idx_rows), 2):
        for q in range(0, len(idx_cols), 2):
            r0, r1 = idx_rows[p], idx_rows[p + 1]
            c0, c1 = idx_cols[q], idx_cols[q + 1]
            M = np.zeros((n, n))
            M[r0, c0] = c
            M[r1, c1] = c
            out.append(M)
            M = np.zeros((n, n))
            M[r0, c1] = -c
            M[r1, c0] = c
            out.append(M)
    return out


def _ad_range(Jsub: FloatArray, rank: int) -> FloatArray:
    """Orthonormal basis (k, s, s) of the range of G -> G J - J G on s x s."""
    s = Jsub.shape[0]
    if rank == 0 or s == 0:
        return np.zeros((0, s, s))
    Ad = np.kron(np.eye(s), Jsub.T) - np.kron(Jsub, np.eye(s))
    U, sv, _ = np.linalg.svd(Ad)
    if rank < s * s:
        gap_ok = sv[rank - 1] > 1e6 * max(sv[rank], 1e-300) or sv[rank] < 1e-12 * sv[0]
        if not gap_ok:
            raise ArithmeticError(
                "similarity family: no clear rank gap in the commutator map "
                f"(singular values {sv[rank - 1]:.3g} vs {sv[rank]:.3g})"
            )
    out: FloatArray = U[:, :rank].T.reshape(rank, s, s)
    return out


def _similarity(sp: Spectrum) -> tuple[list[FloatArray], list[FloatArray]]:
    """The similarity family's elements on the unstable and on the stable columns."""
    n = sp.n
    u, st = sp.unstable_indices, sp.stable_indices
    J = sp.jordan_matrix()
    E1: list[FloatArray] = []
    E0: list[FloatArray] = []
    for cols, other, target in ((u, st, E1), (st, u, E0)):
        if len(cols) == 0:
            continue
        c = sum(g.centraliser_dim for g in sp.groups if (g.unstable == (cols is u)))
        k = len(cols) ** 2 - c
        Xs = _ad_range(J[np.ix_(cols, cols)], k)
        for X in Xs:
            M = np.zeros((n, n))
            M[np.ix_(cols, cols)] = X
            target.append(M)
        target.extend(_elementary(n, other, cols))
    return E1, E0


@lru_cache(maxsize=256)
def _family_basis_cached(text: str, family: str) -> FamilyBasis:
    sp = parse_spectrum(text)
    n = sp.n
    u, st = sp.unstable_indices, sp.stable_indices
    if family == "full":
        E1 = _elementary(n, range(n), u)
        E0 = _elementary(n, range(n), st)
    elif family == "block":
        E1, E0 = [], []
        for g in sp.groups:
            idx = list(g.indices)
            mats = _pair_commuting(n, idx, idx) if g.is_pair else _elementary(n, idx, idx)
            (E1 if g.unstable else E0).extend(mats)
    elif family == "similarity":
        E1, E0 = _similarity(sp)
    else:
        raise ValueError(f"family {family!r}: allowed {', '.join(FAMILIES)}")
    mats = E1 + E0
    E = np.array(mats).reshape(len(mats), n, n) if mats else np.zeros((0, n, n))
    E.setflags(write=False)
    fb = FamilyBasis(E, len(E1))
    if family_dimension(sp, family) != fb.D or fb.d_star != critical_d_theory(sp, family):
        raise ArithmeticError(f"family {family!r} of {text!r}: structure mismatch")
    return fb


def family_basis(spectrum: Spectrum | str, family: str) -> FamilyBasis:
    """Structured orthonormal basis of ``family`` (``block``, ``full``, ``similarity``) in
    Jordan coordinates (cached per spectrum text and family; ``E`` read-only)."""
    text = spectrum if isinstance(spectrum, str) else spectrum.text
    return _family_basis_cached(text, family)
