"""Exact zeros of a cell's risk, decided in integer arithmetic (a ball cannot certify a zero).

The kernel's system is exact: ``A`` and ``C`` are float64 values and ``K``, ``S`` the exact
midpoints of the 320-bit Kalman solution (:class:`~pipeline.models.hidden_spectrum.kalman.ExactInputs`),
all dyadic rationals. A risk that is exactly 0 for this system is computed in ball
arithmetic as a ball around 0 whose radius (the rounding of ``F^k``) never shrinks to
zero, at any precision: its relative accuracy is 0 bits, and the cell would raise
:class:`~pipeline.models.precision.context.PrecisionError`. The first case found: the
spectrum ``"1.0, -1.0"`` (a random walk plus its mirror), whose predictor coefficients
``G_j = C F^(j-1) K`` vanish for every odd ``j`` (the law of ``y`` is invariant under
``y_t -> (-1)^t y_t``, and the gain keeps ``K_1 = -K_2`` exactly: :mod:`.symmetry`), so
``R_T = 0`` at ``T = k + 1`` for every even ``k``.

When is the risk exactly 0? With ``N = T - k >= 1``, ``c = F^k' C'`` and
``Z_N = sum_{i<N} (N - i) A^i K S K' A^i'`` (positive semi-definite, ``S > 0``):

* ``truncated_kalman``: ``T R_T = c' Z_N c = S sum_{i<N} (N - i) (c' A^i K)^2``;
* ``best_fir``: ``T R_T = c' (I + Z_N W)^-1 Z_N c = c' L (I + L' W L)^-1 L' c`` with
  ``Z_N = L L'`` and ``W`` positive semi-definite, so the middle factor is positive definite.

Both vanish exactly iff ``Z_N c = 0``, iff ``C F^k A^i K = 0`` for ``i < N``, and by
Cayley-Hamilton iff for ``i < min(N, n)``. :func:`risk_is_zero` decides this with
python-flint integer matrices (every input scaled by one power of two), so the answer is
exact; its cost grows like ``n^2 k^2`` (the integers grow by the bits of ``F`` per step),
~ms for ``n <= 4``, ``k <= 400``, and it is asked only for a ball that contains 0.
"""

from __future__ import annotations

from flint import arb_mat, fmpz, fmpz_mat

from pipeline.models.hidden_spectrum.kalman import ExactInputs

__all__ = ["dyadic", "risk_is_zero"]


def dyadic(M: arb_mat) -> tuple[list[list[int]], int]:
    """``(ints, e)`` with ``M = ints * 2^e`` exactly, ``e <= 0``; ``ValueError`` if an entry is not exact.

    ``M`` (r, c) is a ball matrix of exact values (radius 0), e.g. float64 conversions or
    the Kalman midpoints; ``ints`` is its (r, c) list of Python integers.
    """
    parts: list[list[tuple[int, int]]] = []
    for i in range(M.nrows()):
        row = []
        for j in range(M.ncols()):
            v = M[i, j]
            if not v.is_exact():
                raise ValueError(f"entry ({i}, {j}) = {v} is not an exact value")
            man, exp = v.man_exp()
            row.append((int(man), int(exp)))
        parts.append(row)
    e = min([0] + [exp for row in parts for man, exp in row if man != 0])
    return [[man << (exp - e) if man else 0 for man, exp in row] for row in parts], e


def _scaled(M: arb_mat, e: int) -> fmpz_mat:
    """``M * 2^-e`` as an integer matrix (``e`` at most the exponent :func:`dyadic` gives ``M``)."""
    ints, own = dyadic(M)
    return fmpz_mat([[fmpz(v) << (own - e) for v in row] for row in ints])


def risk_is_zero(ex: ExactInputs, k: int, N: int) -> bool:
    """Whether ``R_T`` at ``T = k + N`` is exactly 0 for the system ``ex``, for either learner.

    ``k >= 0`` filter taps, ``N = T - k >= 1``. True iff ``C F^k A^i K = 0`` for every
    ``i < min(N, n)`` (module docstring), with ``F = A - K C``; decided exactly.
    """
    if k < 0 or N < 1:
        raise ValueError(f"need k >= 0 and N = T - k >= 1, got k = {k}, N = {N}")
    e = min(dyadic(M)[1] for M in (ex.A, ex.C, ex.K))
    A, C, K = (_scaled(M, e) for M in (ex.A, ex.C, ex.K))
    F = A * fmpz(2) ** (-e) - K * C  # (A - K C) * 2^(-2e), integers
    cols = [K]  # A^i K * 2^(-e (i + 1)): positive scales do not move a zero
    for _ in range(min(N, ex.n) - 1):
        cols.append(A * cols[-1])
    row = C
    for _ in range(k):
        row = row * F
        if row.is_zero():
            return True
    return all((row * col).is_zero() for col in cols)
