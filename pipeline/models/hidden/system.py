"""The cells of the scalar experiment: its learners and the checks of a block's coordinates."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["LEARNERS", "check_block"]

LEARNERS: tuple[str, ...] = ("truncated_kalman", "best_fir")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_block(
    lam: npt.ArrayLike, noise_ratio: npt.ArrayLike, learner: str, k: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    lam_a = np.ascontiguousarray(lam, dtype=np.float64)
    r = np.ascontiguousarray(noise_ratio, dtype=np.float64)
    k_a = np.ascontiguousarray(k)
    T_a = np.ascontiguousarray(T)
    for name, arr in (("lam", lam_a), ("noise_ratio", r), ("k", k_a), ("T", T_a)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if learner not in LEARNERS:
        raise ValueError(f"learner = {learner!r}: must be one of {LEARNERS}")
    if not np.all(np.isfinite(lam_a)):
        raise ValueError("lam must be finite")
    if not np.all(np.isfinite(r) & (r >= 0)):
        raise ValueError("noise_ratio must be finite and >= 0")
    for name, arr in (("k", k_a), ("T", T_a)):
        if (
            arr.size
            and not np.issubdtype(arr.dtype, np.integer)
            and not np.all(np.asarray(arr, dtype=np.float64) == np.round(np.asarray(arr, dtype=np.float64)))
        ):
            raise ValueError(f"{name} must hold integers")
    k_i = k_a.astype(np.int64)
    T_i = T_a.astype(np.int64)
    if np.any(k_i < 0):
        raise ValueError("k must be >= 0")
    if np.any(T_i < 1):
        raise ValueError("T must be >= 1")
    if np.any(T_i > 2**52):
        raise ValueError("T must be <= 2**52")
    return lam_a, r, k_i, T_i
