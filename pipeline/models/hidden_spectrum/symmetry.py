"""The sign symmetry of a system whose spectrum is its own negative, imposed exactly on its gain.

If a signed permutation ``Pi`` (``Pi Pi' = I``) maps ``A`` to ``-A`` and keeps ``C`` —
``Pi A Pi' = -A`` and ``C Pi' = C``, exactly for the float64 entries — then the law of ``y``
is invariant under ``y_t -> (-1)^t y_t``: the Riccati solution has ``Pi P Pi' = P`` and the
gain ``Pi K = -K``, so ``Pi F Pi' = -F`` and ``C F^j K = (-1)^(j+1) C F^j K``: every odd
predictor coefficient ``G_1, G_3, ...`` is exactly 0, and so is the risk at ``T = k + 1``
for every even ``k`` (MATH §5.3: ``T R_T = S (C F^k K)^2`` there for both learners, up to a
positive factor). The 320-bit solution keeps the symmetry only up to its rounding (for
``"1.0, -1.0"`` at noise ratio 1, ``K_1 + K_2 = -4.7e-97``), which would leave a risk of
~1e-200 where the exact risk is 0. :func:`symmetrise` imposes it on the gain, the only
input of the risk that carries it (with ``A``, ``C`` exact and ``S`` a scalar):
``K <- (K - Pi K) / 2``, exact in binary; the change is below the solution's own accuracy
(``2^-KALMAN_RESIDUAL_BITS``).

``Pi`` pairs each Jordan block of ``lam`` with one of ``-lam`` (a pair ``a +- i b`` with
``-a +- i b``) of the same size, with signs ``(-1)^i`` along a real block and
``(-1)^i diag(1, -1)`` along a pair block (the first coordinate, which ``C`` reads, keeps its
sign); the candidate is used only if both identities hold exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from flint import arb_mat

from pipeline.models.precision.balls import amat
from pipeline.models.precision.context import working_precision
from pipeline.models.spectra import JordanBlock, Spectrum

__all__ = ["sign_symmetry", "symmetrise"]

FloatArray = npt.NDArray[np.float64]


def _signs(b: JordanBlock) -> FloatArray:
    """The signs along a block's coordinates (dim,)."""
    if not b.is_pair:
        return np.array([(-1.0) ** i for i in range(b.m)])
    return np.array([(-1.0) ** i * s for i in range(b.m) for s in (1.0, -1.0)])


def _partner(b: JordanBlock, c: JordanBlock) -> bool:
    """Whether ``c`` holds the negated eigenvalue of ``b``, with the same size (exact floats)."""
    return c.m == b.m and c.dim == b.dim and c.real == -b.real and c.imag == b.imag


def sign_symmetry(sp: Spectrum, C: npt.ArrayLike) -> FloatArray | None:
    """``Pi`` (n, n), a signed permutation with ``Pi A Pi' = -A`` and ``C Pi' = C`` exactly
    (``A = sp.jordan_matrix()``, ``C`` (n,) the observation row), or None if there is none of
    the block-pairing form of the module docstring."""
    n = sp.n
    free = list(sp.blocks)
    Pi = np.zeros((n, n))
    while free:
        b = free.pop(0)
        c = b if _partner(b, b) else next((x for x in free if _partner(b, x)), None)
        if c is None:
            return None
        s = _signs(b)
        Pi[c.indices, b.indices] = s  # (Pi x) on c's coordinates: signed x on b's
        if c is not b:
            free.remove(c)
            Pi[b.indices, c.indices] = s
    A = sp.jordan_matrix()
    Cr = np.asarray(C, dtype=np.float64).reshape(1, n)
    if np.array_equal(Pi @ A @ Pi.T, -A) and np.array_equal(Cr @ Pi.T, Cr):
        return Pi
    return None


def symmetrise(Pi: FloatArray, K: arb_mat, bits: int) -> arb_mat | None:
    """``(K - Pi K) / 2`` for an exact ball column ``K`` (n, 1), computed exactly (at ``4 bits``
    of precision); None if the result is not exact."""
    with working_precision(4 * bits):
        K2 = (K - amat(Pi) * K) * 0.5
    return K2 if all(K2[i, 0].is_exact() for i in range(K2.nrows())) else None
