"""FIR learners of the hidden-state experiments (MATH §2.2, §5.2): their names and the checks
of a block's filter lengths ``k`` and horizons ``T``, shared by the exact and Monte Carlo kernels."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["LEARNERS", "check_learner", "check_taps_and_horizons"]

IntArray = npt.NDArray[np.int64]

LEARNERS: tuple[str, ...] = ("truncated_kalman", "best_fir")


def check_learner(learner: str) -> None:
    """``ValueError`` unless ``learner`` is one of :data:`LEARNERS`."""
    if learner not in LEARNERS:
        raise ValueError(f"learner = {learner!r}: must be one of {LEARNERS}")


def check_taps_and_horizons(k: npt.ArrayLike, T: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Validated filter lengths ``k`` (K,) and horizons ``T`` (N,) as int64: 1-D, integer-valued,
    ``k >= 0`` and ``1 <= T <= 2**52``; ``ValueError`` naming the bad input."""
    k_a = np.ascontiguousarray(k)
    T_a = np.ascontiguousarray(T)
    for name, arr in (("k", k_a), ("T", T_a)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            f = np.asarray(arr, dtype=np.float64)
            if not np.all(f == np.round(f)):
                raise ValueError(f"{name} must hold integers")
    k_i = k_a.astype(np.int64)
    T_i = T_a.astype(np.int64)
    if np.any(k_i < 0):
        raise ValueError("k must be >= 0")
    if np.any(T_i < 1):
        raise ValueError("T must be >= 1")
    if np.any(T_i > 2**52):
        raise ValueError("T must be <= 2**52")
    return k_i, T_i
