"""O(T) oracle of the scalar hidden experiment (MATH §2.3), a test and benchmark reference."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.models.hidden import kalman


def risk_oracle(lam: float, noise_ratio: float, theta: npt.ArrayLike, T: int) -> float:
    """``R_T`` of the FIR ``theta`` by the O(T) identity of MATH §2.3 (float64 test oracle).

    ``c_j = G_j - theta_j`` (``theta_j = 0`` for ``j > k``), ``D_u = lam D_{u-1} + c_u``,
    ``R_T = (1/T)[sum_u (P + (T - u)) D_u^2 + r sum_j (T - j + 1) c_j^2]``.
    Memory and time O(T); not for production.
    """
    from scipy.signal import lfilter  # imported here: scipy.signal costs ~1 s at startup

    T = int(T)
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    P, K, a = (float(v) for v in kalman(lam, noise_ratio))
    r = float(noise_ratio)
    j = np.arange(1, T + 1, dtype=np.float64)
    with np.errstate(under="ignore"):
        c = K * a ** (j - 1.0)
    m = min(theta.shape[0], T)
    c[:m] -= theta[:m]
    D = lfilter([1.0], [1.0, -float(lam)], c)
    w = P + (T - j)
    total = np.sum(w * D * D) + r * np.sum((T - j + 1.0) * c * c)
    return float(total / T)
