"""The ``leading`` learner family (MATH.md section 6.1).

The matrix units ``E_ab`` of the system's own coordinates (those ``A`` is written in:
Jordan coordinates for ``basis = "jordan"``, the rotated ones of ``A = Q J Q'`` for
``basis = "random"``), ordered by shells ``max(a, b)``, then ``a``, then ``b``, so the
first ``k^2`` span the top-left ``k x k`` block. Not Haar-rotated: the order is the
parametrisation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def leading_order(n: int) -> IntArray:
    """(n^2, 2) the ``(a, b)`` of the i-th unit: shell ``max(a, b)``, then ``a``, then ``b``."""
    pairs = sorted(((a, b) for a in range(n) for b in range(n)), key=lambda ab: (max(ab), ab[0], ab[1]))
    return np.array(pairs, dtype=np.int64).reshape(n * n, 2)


def leading_basis(n: int) -> FloatArray:
    """The ``leading`` basis ``B_1 .. B_(n^2)`` (n^2, n, n) in the system's coordinates."""
    order = leading_order(n)
    B = np.zeros((n * n, n, n))
    B[np.arange(n * n), order[:, 0], order[:, 1]] = 1.0
    return B


def leading_position(a: int, b: int) -> int:
    """0-based position of ``E_ab`` in the ``leading`` order."""
    s = max(a, b)
    return s * s + (a if a < s else s + b)


def leading_critical_d(support: NDArray[np.bool_]) -> int:
    """Smallest ``d`` whose first ``d`` units cover every ``True`` entry of ``support`` (n, n)
    (0 if none): the span of those units then holds every matrix supported there."""
    rows, cols = np.nonzero(support)
    if rows.size == 0:
        return 0
    return 1 + max(leading_position(int(a), int(b)) for a, b in zip(rows, cols, strict=True))
