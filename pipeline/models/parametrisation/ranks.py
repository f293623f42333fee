"""Structural rank tests on the explicit family bases (MATH §1.5): restrictions to columns and containment."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from pipeline.models.parametrisation.families import as_spectrum, learner_basis_structured
from pipeline.models.spectra import Spectrum

__all__ = ["contained_on", "restricted_family", "structural_critical_d"]

# Structured bases have O(1) entries and exact zeros, so restricted singular values
# are either structural constants (>= ~1e-3) or roundoff (~1e-15); anything in
# between means the rank is not well defined and is refused.
# Structured bases have O(1) entries and exact zeros, so restricted singular values
# are either structural constants (>= ~1e-3) or roundoff (~1e-15); anything in
# between means the rank is not well defined and is refused.
_RANK_TOL = 1e-9
_RANK_BAND = (1e-12, 1e-6)


def _rank(rows: np.ndarray) -> int:
    if rows.size == 0:
        return 0
    sv = np.linalg.svd(rows, compute_uv=False)
    lo, hi = _RANK_BAND
    unclear = sv[(sv > lo) & (sv < hi)]
    if unclear.size:
        raise ArithmeticError(f"no clear rank gap: singular value {unclear[0]:.3g}")
    return int(np.sum(sv > _RANK_TOL))


def restricted_family(spectrum: Spectrum | str, family: str, columns: ArrayLike) -> np.ndarray:
    """Orthonormal basis ``(k, n, len(columns))`` of ``{ M[:, columns] : M in family }``
    (Jordan coordinates), from the structured basis; ``k`` is its rank."""
    sp = as_spectrum(spectrum)
    cols = np.asarray(columns, dtype=np.int64)
    E = learner_basis_structured(sp, family).E
    n = sp.n
    if E.shape[0] == 0 or cols.size == 0:
        return np.zeros((0, n, cols.size))
    R = E[:, :, cols].reshape(E.shape[0], -1)
    k = _rank(R)
    _, _, Vt = np.linalg.svd(R, full_matrices=False)
    out: np.ndarray = Vt[:k].reshape(k, n, cols.size)
    return out


def contained_on(spectrum: Spectrum | str, adversary: str, learner: str, columns: ArrayLike) -> bool:
    """Whether ``F|W`` lies in ``L|W`` for ``W = span{e_c : c in columns}`` (rank test)."""
    Fw = restricted_family(spectrum, adversary, columns)
    Lw = restricted_family(spectrum, learner, columns)
    if Fw.shape[0] == 0:
        return True
    width = Fw.shape[1] * Fw.shape[2]
    stacked = np.vstack([Lw.reshape(Lw.shape[0], width), Fw.reshape(Fw.shape[0], width)])
    return _rank(stacked) == int(Lw.shape[0])


def structural_critical_d(spectrum: Spectrum | str, adversary: str, learner: str) -> int | None:
    """``critical_d`` from rank tests on the explicit bases (cross-check of the closed
    form)."""
    sp = as_spectrum(spectrum)
    u = sp.unstable_indices
    if restricted_family(sp, adversary, u).shape[0] == 0:
        return 0
    if contained_on(sp, adversary, learner, u):
        return int(restricted_family(sp, learner, u).shape[0])
    return None
