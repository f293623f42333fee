"""Learner families (MATH §1.5): the ``diagonal`` family beside those of §1.3, dimensions and bases."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from pipeline.models.observed.draws import basis_change, learner_basis
from pipeline.models.observed.families import FamilyBasis, family_basis
from pipeline.models.simulation.streams import cell_rng
from pipeline.models.spectra import Spectrum, critical_d_theory, family_dimension, parse_spectrum, random_orthogonal

__all__ = [
    "LEARNER_FAMILIES",
    "as_spectrum",
    "check_family",
    "diagonal_basis",
    "learner_basis_structured",
    "learner_dimension",
    "learner_matrices",
    "restriction_rank",
]

LEARNER_FAMILIES = ("block", "full", "similarity", "diagonal")


def as_spectrum(spectrum: Spectrum | str) -> Spectrum:
    """The parsed spectrum."""
    return parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum


def check_family(family: str) -> None:
    """``ValueError`` unless ``family`` is one of :data:`LEARNER_FAMILIES`."""
    if family not in LEARNER_FAMILIES:
        raise ValueError(f"family {family!r}: allowed {', '.join(LEARNER_FAMILIES)}")


@lru_cache(maxsize=256)
def _diagonal_basis_cached(text: str) -> FamilyBasis:
    sp = parse_spectrum(text)
    n = sp.n
    c = 1.0 / math.sqrt(2.0)
    unstable: list[np.ndarray] = []
    stable: list[np.ndarray] = []
    for g in sp.groups:
        target = unstable if g.unstable else stable
        idx = list(g.indices)
        if not g.is_pair:
            for i in idx:
                M = np.zeros((n, n))
                M[i, i] = 1.0
                target.append(M)
            continue
        for p in range(0, len(idx), 2):
            r0, r1 = idx[p], idx[p + 1]
            M = np.zeros((n, n))
            M[r0, r0] = M[r1, r1] = c
            target.append(M)
            M = np.zeros((n, n))
            M[r0, r1], M[r1, r0] = -c, c
            target.append(M)
    mats = unstable + stable
    E = np.array(mats).reshape(len(mats), n, n) if mats else np.zeros((0, n, n))
    E.setflags(write=False)
    return FamilyBasis(E, len(unstable))


def diagonal_basis(spectrum: Spectrum | str) -> FamilyBasis:
    """Structured orthonormal basis of the ``diagonal`` family in Jordan coordinates.

    ``E`` is ``(n, n, n)``: ``E_cc`` for every real coordinate ``c`` and, for every
    complex-pair coordinate pair ``(c, c+1)``, ``(E_cc + E_{c+1,c+1}) / sqrt 2`` and
    ``(E_{c+1,c} - E_{c,c+1}) / sqrt 2`` (the rotation-scaling ``[[x, -y], [y, x]]``).
    ``E[:d_star]`` (``d_star = n_u``) are supported on unstable columns, the rest on
    stable columns; exact zeros elsewhere.
    """
    return _diagonal_basis_cached(as_spectrum(spectrum).text)


def learner_basis_structured(spectrum: Spectrum | str, family: str) -> FamilyBasis:
    """Structured orthonormal basis ``E`` (D, n, n) of any learner family (Jordan
    coordinates; ``E[:d_star]`` on unstable columns, ``E[d_star:]`` on stable ones)."""
    check_family(family)
    sp = as_spectrum(spectrum)
    if family == "diagonal":
        return diagonal_basis(sp)
    return family_basis(sp, family)


def learner_dimension(spectrum: Spectrum | str, family: str) -> int:
    """Dimension ``D`` of the family: ``n`` for ``diagonal``, MATH section 1.3 otherwise."""
    check_family(family)
    sp = as_spectrum(spectrum)
    return sp.n if family == "diagonal" else family_dimension(sp, family)


def restriction_rank(spectrum: Spectrum | str, family: str) -> int:
    """Rank of ``M -> M|V_u`` on the family: ``n_u`` for ``diagonal``, ``d*`` of MATH
    section 1.4 otherwise."""
    check_family(family)
    sp = as_spectrum(spectrum)
    return sp.n_unstable if family == "diagonal" else critical_d_theory(sp, family)


def learner_matrices(spectrum: Spectrum | str, learner: str, seed: int, basis: str = "jordan") -> np.ndarray:
    """The learner's orthonormal basis ``B_1 .. B_D`` (D, n, n) in the coordinates of
    ``A``: a Haar-random orthonormal basis of the family (MATH section 1.5), from the
    stream ``("observed.learner", spectrum, learner)`` — for ``block``, ``full`` and
    ``similarity`` exactly :func:`pipeline.models.observed.learner_basis`."""
    check_family(learner)
    sp = as_spectrum(spectrum)
    if learner != "diagonal":
        return learner_basis(sp.text, learner, seed, basis)
    E = diagonal_basis(sp).E
    P = random_orthogonal(E.shape[0], cell_rng(seed, "observed.learner", sp.text, learner))
    BJ = np.einsum("ji,jkl->ikl", P, E)
    Q = basis_change(sp, basis, seed)
    return np.asarray(np.einsum("ij,...jk,lk->...il", Q, BJ, Q)) if basis != "jordan" else BJ
