"""The stationary Kalman predictor of the scalar model (MATH §2.1), q = 1."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["kalman", "kalman_fir"]

FloatArray = npt.NDArray[np.float64]


def kalman(lam: npt.ArrayLike, noise_ratio: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Steady-state Kalman predictor of the scalar model (MATH §2.1), q = 1.

    Parameters
    ----------
    lam : array_like, any shape
        AR coefficient (dimensionless; any finite real, ``|lam| > 1`` allowed).
    noise_ratio : array_like, broadcastable with ``lam``
        ``r / q`` (observation-noise variance in units of the process-noise
        variance), finite and ``>= 0``.

    Returns
    -------
    (P, K, a) : float64 arrays of the broadcast shape
        ``P`` the positive root of ``P^2 + (r - lam^2 r - 1) P - r = 0`` (predicted
        state variance, units of q), ``K = lam P / (P + r)`` the predictor gain and
        ``a = lam - K = lam r / (P + r)`` the closed-loop pole.

    Notes
    -----
    With ``b = r (1 - lam)(1 + lam) - 1`` the root is ``2r / (b + sqrt(b^2 + 4r))``
    for ``b >= 0`` and ``(-b + sqrt(b^2 + 4r)) / 2`` otherwise, so no subtraction of
    nearly equal numbers happens; ``a`` is formed without the cancelling
    difference ``lam - K``. Relative accuracy is a few ulps for noise ratios
    1e-6..1e8 and any ``lam``.
    """
    lam_a = np.asarray(lam, dtype=np.float64)
    r = np.asarray(noise_ratio, dtype=np.float64)
    # materialise (contiguous) so every element goes through the same ufunc loop
    lam_a, r = (np.array(v, order="C") for v in np.broadcast_arrays(lam_a, r))
    with np.errstate(all="ignore"):
        b = r * ((1.0 - lam_a) * (1.0 + lam_a)) - 1.0
        root = np.hypot(b, 2.0 * np.sqrt(r))  # sqrt(b^2 + 4 r) without overflow
        p_pos = 2.0 * r / (b + root)
        p_neg = 0.5 * (root - b)
        P = np.where(b >= 0.0, p_pos, p_neg)
        S = P + r
        K = lam_a * (P / S)
        a = lam_a * (r / S)
    return np.asarray(P), np.asarray(K), np.asarray(a)


def kalman_fir(lam: float, noise_ratio: float, k: int) -> FloatArray:
    """The Kalman predictor truncated to ``k`` lags: ``G_j = K a^(j-1)``, j = 1..k.

    Returns a float64 array of shape ``(k,)`` (the ``truncated_kalman`` theta).
    """
    _, K, a = (float(v) for v in kalman(lam, noise_ratio))
    return K * a ** np.arange(int(k), dtype=np.float64)
