"""A fitted learner's parametrisation and nominal model in Jordan coordinates.

The learner is ``Ahat(phi) = A0 + sum_{i<=d} phi_i B_i`` (MATH.md section 6.1). With
``A = Q J Q'``, everything is rotated to Jordan coordinates (the data live there, see
:mod:`pipeline.models.simulation.fitted_states`) and written in a *working basis* ``E_1 .. E_K`` of
matrices with exact zeros:

* ``B_i = sum_k P[k, i] E_k`` (the learner), ``J - Q' A0 Q = sum_k h_k E_k`` (what the
  learner has to learn: ``J`` itself for ``nominal = "zero"``, the adversary's ``H``
  rotated for ``"perturbed"``).
* When the learner's family is the adversary's own (``"perturbed"``), ``E`` is that
  family's structured basis (:func:`pipeline.models.observed.family_basis`): both ``H`` and
  the ``B_i`` are then exact coefficient vectors in it, and the unstable part of ``H`` is
  reproduced *exactly* once ``d`` reaches the family's restriction rank. Otherwise ``E``
  is the matrix units in row-major order (``K = n^2``), every ``B_i`` and ``H`` projected
  onto their families' structured bases first (``leading`` needs none).

Rotations and projections use fixed-order elementwise sums (no BLAS), so ``P`` and ``h``
have the same bits on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.models.fitted.leading import leading_basis
from pipeline.models.observed import family_basis
from pipeline.models.parametrisation import learner_basis_structured
from pipeline.models.spectra import FAMILIES, parse_spectrum

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

LEARNERS = ("leading", "block", "full", "similarity", "diagonal")
NOMINALS = ("zero", "perturbed")
_INSIDE_TOL = 1e-8  # a stored learner basis lies in the adversary's family iff its residual is below this


@dataclass(frozen=True)
class FitProblem:
    """One learner (spectrum, learner basis, nominal model) in Jordan coordinates.

    ``E`` (K, n, n): the working basis, ``None`` for the matrix units in row-major order
    (``E_k = e_(k // n) e_(k % n)'``); ``P`` (K, D) the learner; ``h`` (K,) the nominal
    error ``J - A0``; ``units`` (D, 2) the ``(row, column)`` of every ``B_i`` when each is a
    single matrix unit (``E is None``; e.g. ``leading`` in a Jordan basis), else ``None``.
    """

    text: str
    n: int
    P: FloatArray
    h: FloatArray
    E: FloatArray | None
    units: IntArray | None

    @property
    def D(self) -> int:
        return int(self.P.shape[1])

    @property
    def K(self) -> int:
        return int(self.P.shape[0])

    def matrices(self, coeffs: FloatArray) -> FloatArray:
        """``sum_k coeffs[..., k] E_k`` (..., n, n) in float64 (for oracles and plots)."""
        c = np.asarray(coeffs, dtype=float)
        if self.E is None:
            out: FloatArray = c.reshape(*c.shape[:-1], self.n, self.n)
            return out
        return np.asarray(np.tensordot(c, self.E, axes=(-1, 0)))


def _seq_dot(A: FloatArray, B: FloatArray) -> FloatArray:
    """``A @ B`` for A (..., p, q), B (q, r), summed over ``q`` in order by elementwise
    operations: the same bits on every CPU and whatever the leading shape."""
    out = A[..., :, 0, None] * B[0]
    for k in range(1, A.shape[-1]):
        out = out + A[..., :, k, None] * B[k]
    return np.asarray(out)


def conjugate(Q: FloatArray, M: FloatArray) -> FloatArray:
    """``Q' M Q`` (..., n, n) for matrices ``M`` (..., n, n) in fixed order (see :func:`_seq_dot`)."""
    Qt = np.ascontiguousarray(np.asarray(Q, dtype=float).T)
    MQ = _seq_dot(np.asarray(M, dtype=float), Qt.T)
    return np.swapaxes(_seq_dot(np.swapaxes(MQ, -1, -2), Qt.T), -1, -2)


def coefficients(E: FloatArray, M: FloatArray) -> FloatArray:
    """``<E_k, M_q>`` (N, K) for a basis ``E`` (K, n, n) and matrices ``M`` (N, n, n)."""
    K, n, _ = E.shape
    N = M.shape[0]
    if K == 0:
        return np.zeros((N, 0))
    return _seq_dot(M.reshape(N, n * n), E.reshape(K, n * n).T)


def _project(E: FloatArray, M: FloatArray) -> FloatArray:
    """Orthogonal projection (N, n, n) of ``M`` (N, n, n) onto the span of the orthonormal ``E``."""
    K, n, _ = E.shape
    if K == 0:
        return np.zeros_like(M)
    return _seq_dot(coefficients(E, M), E.reshape(K, n * n)).reshape(M.shape)


def _check(learner: str, nominal: str, adversary: str | None) -> None:
    if learner not in LEARNERS:
        raise ValueError(f"learner family {learner!r}: allowed {', '.join(LEARNERS)}")
    if nominal not in NOMINALS:
        raise ValueError(f"nominal {nominal!r}: allowed {', '.join(NOMINALS)}")
    if nominal == "perturbed" and adversary not in FAMILIES:
        raise ValueError(f"adversary family {adversary!r}: allowed {', '.join(FAMILIES)}")


def fit_problem(
    spectrum: str,
    learner: str,
    B: FloatArray,
    Q: FloatArray,
    nominal: str = "zero",
    adversary: str | None = None,
    H: FloatArray | None = None,
) -> FitProblem:
    """Assemble the problem of the learner basis ``B`` (D, n, n) of family ``learner``, stored in
    the coordinates of ``A = Q J Q'`` (``Q`` (n, n) orthogonal), with nominal model ``A0 = 0``
    (``"zero"``) or ``A0 = A - H`` (``"perturbed"``, ``H`` (n, n) of family ``adversary``)."""
    _check(learner, nominal, adversary)
    sp = parse_spectrum(spectrum)
    n = sp.n
    Bj = conjugate(Q, np.asarray(B, dtype=float).reshape(-1, n, n))
    if nominal == "perturbed":
        if H is None:
            raise ValueError("nominal 'perturbed' needs the adversary's direction H")
        Hj = conjugate(Q, np.asarray(H, dtype=float).reshape(1, n, n))
        assert adversary is not None
        if learner == adversary:
            E = np.asarray(family_basis(sp, adversary).E)
            P = coefficients(E, Bj).T
            back = _seq_dot(P.T, E.reshape(-1, n * n))
            if Bj.shape[0] and float(np.max(np.abs(back - Bj.reshape(-1, n * n)))) > _INSIDE_TOL:
                raise ValueError(f"the learner basis does not lie in the {adversary} family")
            return FitProblem(sp.text, n, P, coefficients(E, Hj)[0], E, None)
        target = _project(np.asarray(family_basis(sp, adversary).E), Hj)[0]
    else:
        target = sp.jordan_matrix()
    if learner != "leading":
        Bj = _project(np.asarray(learner_basis_structured(sp, learner).E), Bj)
    P = Bj.reshape(-1, n * n).T.copy()
    return FitProblem(sp.text, n, P, target.reshape(n * n).copy(), None, _units(P, n))


def _units(P: FloatArray, n: int) -> IntArray | None:
    """``(row, column)`` (D, 2) of each column of ``P`` that is exactly one matrix unit, or ``None``."""
    if not (np.all((P == 0.0) | (P == 1.0)) and np.all(np.sum(P == 1.0, axis=0) == 1)):
        return None
    k = np.argmax(P == 1.0, axis=0)
    return np.stack(np.divmod(k, n), axis=1).astype(np.int64)


def leading_problem(
    spectrum: str, Q: FloatArray, nominal: str = "zero", adversary: str | None = None, H: FloatArray | None = None
) -> FitProblem:
    """:func:`fit_problem` for the ``leading`` basis of the system's coordinates."""
    n = parse_spectrum(spectrum).n
    return fit_problem(spectrum, "leading", leading_basis(n), Q, nominal, adversary, H)
