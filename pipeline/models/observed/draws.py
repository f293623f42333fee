"""What the observed experiment draws from the run's seed (MATH §1.1, §1.3).

The basis change ``Q`` of ``A = Q J Q'``, the learner's Haar-rotated orthonormal basis of a
family and the adversary's unit directions ``H``, each from its own stream keyed by the
seed, the spectrum text and the family (:func:`pipeline.models.simulation.streams.cell_rng`), so a
draw never depends on what else is drawn.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.models.observed.families import family_basis
from pipeline.models.simulation.streams import cell_rng
from pipeline.models.spectra import Spectrum, parse_spectrum, random_orthogonal

__all__ = [
    "basis_change",
    "family_space",
    "learner_basis",
    "learner_coefficients",
    "perturbation_coefficients",
    "perturbations",
    "system",
    "to_basis",
]

FloatArray = NDArray[np.float64]


def basis_change(spectrum: Spectrum | str, basis: str, seed: int) -> FloatArray:
    """The orthogonal ``Q`` (n, n) with ``A = Q J Q'`` (identity for ``"jordan"``)."""
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    if basis == "jordan":
        return np.eye(sp.n)
    if basis == "random":
        return random_orthogonal(sp.n, cell_rng(seed, "observed.basis", sp.text))
    raise ValueError(f"basis {basis!r}: allowed 'jordan', 'random'")


def system(spectrum: Spectrum | str, basis: str, seed: int) -> FloatArray:
    """The system matrix ``A = Q J Q'`` (n, n) of a spectrum in the given basis."""
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    J = sp.jordan_matrix()
    if basis == "jordan":
        return J
    Q = basis_change(sp, basis, seed)
    A: FloatArray = Q @ J @ Q.T
    return A


def to_basis(M: FloatArray, Q: FloatArray) -> FloatArray:
    """``Q M Q'`` for a stack of matrices ``M`` (..., n, n) in Jordan coordinates."""
    out: FloatArray = np.einsum("ij,...jk,lk->...il", Q, M, Q) if Q.shape[0] else M
    return out


def family_space(A: FloatArray, spectrum: Spectrum | str, family: str, Q: FloatArray | None = None) -> FloatArray:
    """Orthonormal basis ``(D, n, n)`` of the family of ``A = Q J Q'``.

    ``Q`` defaults to the identity (``A`` must then be the Jordan matrix).
    """
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    J = sp.jordan_matrix()
    Q = np.eye(sp.n) if Q is None else np.asarray(Q, dtype=float)
    if not np.allclose(Q @ J @ Q.T, A, rtol=0, atol=1e-10 * max(1.0, np.abs(A).max(initial=0))):
        raise ValueError("A is not Q J Q' for the given spectrum and basis change")
    return to_basis(family_basis(sp, family).E, Q)


def learner_coefficients(text: str, family: str, seed: int) -> FloatArray:
    """``P`` (D x D, Haar orthogonal): ``B_i = sum_j P[j, i] E_j``."""
    D = family_basis(text, family).D
    return random_orthogonal(D, cell_rng(seed, "observed.learner", text, family))


def perturbation_coefficients(text: str, family: str, seed: int, draws: int | NDArray[np.int64]) -> FloatArray:
    """``h`` (N x D): unit vectors with standard Gaussian direction; draw ``i`` depends
    only on ``(seed, spectrum text, family, i)``."""
    draws = np.arange(int(draws)) if isinstance(draws, (int, np.integer)) or np.ndim(draws) == 0 else np.asarray(draws)
    D = family_basis(text, family).D
    out = np.zeros((len(draws), D))
    if D == 0:
        return out
    for k, i in enumerate(draws):
        z = cell_rng(seed, "observed.perturbation", text, family, int(i)).standard_normal(D)
        out[k] = z / np.linalg.norm(z)
    return out


def learner_basis(spectrum: Spectrum | str, family: str, seed: int, basis: str = "jordan") -> FloatArray:
    """The learner's orthonormal basis ``B_1..B_D`` (D, n, n): a Haar-random
    orthonormal basis of the family (generic, so ``critical_d = d*``)."""
    text = spectrum if isinstance(spectrum, str) else spectrum.text
    fb = family_basis(text, family)
    P = learner_coefficients(text, family, seed)
    BJ = np.einsum("ji,jkl->ikl", P, fb.E) if fb.D else fb.E
    return to_basis(BJ, basis_change(text, basis, seed))


def perturbations(
    spectrum: Spectrum | str, family: str, seed: int, draws: int | NDArray[np.int64], basis: str = "jordan"
) -> FloatArray:
    """Adversary directions ``H`` (N, n, n), unit Frobenius norm (zero if D = 0)."""
    text = spectrum if isinstance(spectrum, str) else spectrum.text
    fb = family_basis(text, family)
    h = perturbation_coefficients(text, family, seed, draws)
    HJ = np.zeros((len(h), *fb.E.shape[1:]))
    for q in range(len(h)):  # per draw, so a draw's bits do not depend on how many are drawn
        HJ[q] = np.einsum("j,jkl->kl", h[q], fb.E) if fb.D else HJ[q]
    return to_basis(HJ, basis_change(text, basis, seed))
