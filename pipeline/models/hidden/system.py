"""The cells of the scalar experiment: its learners and the checks of a block's coordinates."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.models.fir import LEARNERS, check_learner, check_taps_and_horizons

__all__ = ["LEARNERS", "check_block"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_block(
    lam: npt.ArrayLike, noise_ratio: npt.ArrayLike, learner: str, k: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    """Validated ``(lam (L,), noise_ratio (R,), k (K,), T (N,))`` of a block; ``ValueError``
    naming the bad input (``lam`` finite, ``noise_ratio`` finite and ``>= 0``)."""
    lam_a = np.ascontiguousarray(lam, dtype=np.float64)
    r = np.ascontiguousarray(noise_ratio, dtype=np.float64)
    for name, arr in (("lam", lam_a), ("noise_ratio", r)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    check_learner(learner)
    if not np.all(np.isfinite(lam_a)):
        raise ValueError("lam must be finite")
    if not np.all(np.isfinite(r) & (r >= 0)):
        raise ValueError("noise_ratio must be finite and >= 0")
    k_i, T_i = check_taps_and_horizons(k, T)
    return lam_a, r, k_i, T_i
