"""Theory of the scalar experiment (MATH §2.4): where the risk grows, and how fast ``k*`` must.

Every function broadcasts its array arguments; ``q = 1``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["growth_exponent_theory", "is_marginal", "kstar_slope_theory", "kstar_theory"]

FloatArray = npt.NDArray[np.float64]


def is_marginal(lam: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """``|lam| = 1`` (to 1e-12), the random walk of Theorem 4.1."""
    return np.asarray(np.abs(np.abs(np.asarray(lam, dtype=np.float64)) - 1.0) <= 1e-12)


def kstar_theory(a: npt.ArrayLike, T: npt.ArrayLike, tau: npt.ArrayLike) -> FloatArray:
    """``k*(T; tau) = ln(q T / (2 tau)) / (2 ln(1/|a|))`` (taps; q = 1): the filter length
    the truncated Kalman filter needs for ``R_T <= tau`` at ``|lam| = 1``. Broadcasts."""
    with np.errstate(divide="ignore"):
        return np.asarray(
            np.log(np.asarray(T, dtype=np.float64) / (2.0 * np.asarray(tau, dtype=np.float64)))
            / (2.0 * np.log(1.0 / np.abs(np.asarray(a, dtype=np.float64))))
        )


def kstar_slope_theory(lam: npt.ArrayLike, a: npt.ArrayLike, learner: str) -> FloatArray:
    """Slope of ``k*`` in ``ln T`` (taps per e-fold of T): truncated Kalman ``1 / (2 ln(1/|a|))``
    at ``|lam| = 1``, 0 for ``|lam| < 1`` (bounded), ``+inf`` for ``|lam| > 1`` (``k*`` linear
    in T); ``best_fir`` 0 (bounded for every k >= 1). Broadcasts ``lam`` against ``a``."""
    lam_a, a_a = np.broadcast_arrays(np.asarray(lam, dtype=np.float64), np.asarray(a, dtype=np.float64))
    if learner != "truncated_kalman":
        return np.zeros(lam_a.shape)
    with np.errstate(divide="ignore"):
        marginal = 1.0 / (2.0 * np.log(1.0 / np.abs(a_a)))
    return np.where(is_marginal(lam_a), marginal, np.where(np.abs(lam_a) < 1, 0.0, np.inf))


def growth_exponent_theory(lam: npt.ArrayLike, learner: str, t1: float, t2: float) -> FloatArray:
    """Theory of ``d log R / d log T`` between horizons ``t1 < t2``: 0 where the risk is
    bounded (``|lam| < 1``, or ``best_fir``), 1 for the truncated Kalman filter at
    ``|lam| = 1``, and ``2 (t2 - t1) log10|lam| / log10(t2/t1)`` for ``|lam| > 1``
    (risk growing like ``lam^(2T)``)."""
    lam_a = np.asarray(lam, dtype=np.float64)
    if learner != "truncated_kalman":
        return np.zeros(lam_a.shape)
    with np.errstate(divide="ignore"):
        explosive = 2.0 * (t2 - t1) * np.log10(np.abs(lam_a)) / np.log10(t2 / t1)
    return np.where(is_marginal(lam_a), 1.0, np.where(np.abs(lam_a) < 1, 0.0, explosive))
