"""The exact risk of FIR learners on a hidden-state system (MATH §5.2), and the best filter.

Closed form used by the production kernel
-----------------------------------------
With the innovations ``e_t = y_t - C xhat_t`` (white, variance ``S = C P C' + r``,
independent of ``xhat_t``) and ``xhat_{t+1} = A xhat_t + K e_t``, the deviation of a
length-``k`` FIR at ``t >= k`` splits into independent parts

    yhat*_t - yhat_t = g' xhat_{t-k} + sum_{i=1..k} beta_i e_{t-i},
    beta = h - B theta,     g = F^k' C' + sum_{i=1..k} beta_i F^(k-i)' C',

where ``h_i = C A^(i-1) K`` and ``B`` is the unit lower-triangular Toeplitz matrix of
``1, h_1, h_2, ...`` (the symbol of ``y`` in terms of ``e``); for ``t < k`` only
``beta_1 .. beta_t`` appear (``xhat_0 = 0``). The expression of ``g`` uses
``C F^k = C A^k - sum_{j<=k} G_j C A^(k-j)`` and ``B^-1`` = Toeplitz of ``1 - G(z)``.
The truncated Kalman filter is ``beta = 0``. Summing over ``t``, with ``N = T - k``,

    T R_T(beta) = g' Z_N g + S sum_{i=1..k} (T + 1 - i) beta_i^2,
    Z_N = sum_{s=0..N} Cov(xhat_s) = sum_{i=0..N-1} (N - i) A^i K S K' A^i'.

* ``truncated_kalman``: ``T R_T = c' Z_N c`` with ``c = F^k' C'``.
* ``best_fir``: minimising the quadratic over ``beta`` (Woodbury / push-through),

      T R_T = c' (I + Z_N W)^-1 Z_N c,    W = sum_{j=0..k-1} F^j' C' C F^j / (S (N + 1 + j)),

  an ``n x n`` problem per cell (valid for singular ``Z_N`` too); the minimiser is
  ``beta_i = -(F^(k-i)' C')' x / (S (T + 1 - i))`` with ``x = (I + Z_N W)^-1 Z_N c``, and
  ``theta = G - B^-1 beta``.

For ``T <= k`` both risks are exactly 0 (a filter with at least ``T`` taps reproduces the
Kalman predictor on a horizon ``T``).

Accuracy (``tests/models/hidden_spectrum/test_risk.py``): against the brute-force ``k x k``
normal equations in ``theta`` built in mpmath from the literal ``D_u`` identity (an O(T)
sum, and closed-form doubling tails up to ``T = 1e8``; spectral radius 1 with Jordan
blocks up to size 4 and radius 1.05 up to ``T = 1e4``, bounded and unbounded ``best_fir``
cells) the relative error of ``risk`` is at most 1.1e-16 and ``log10_risk`` agrees to
1e-14; ``P``, ``K``, ``S`` agree with an mpmath Newton solution of the Riccati equation to
1.1e-16 for noise ratios 1e-4..1e6; one-term spectra agree with
:mod:`pipeline.models.hidden` to 8.4e-14 (that kernel's own error). ``best_fir_theta`` has
absolute error <= 2^-52 max |theta| (verified ball).

Cost (``benchmarks/hidden_spectrum.py``, one process, shared 2-core machine): ~1.5e4
``best_fir`` and ~2.3e4 ``truncated_kalman`` cells/s with ``T > k`` on spectra with
``n <= 6``, Kalman solutions included; the cost at ``T = 1e8`` is 1.02-1.03 times that at
``T = 1e2``. A risk that is exactly 0 for ``T > k`` (``Z_N F^k' C' = 0``: e.g. ``"1.0, -1.0"``,
whose odd predictor coefficients vanish, at ``T = k + 1`` for even ``k``, or a nilpotent
``F``) is a ball around 0 at every precision; such a ball is decided exactly in integers
(:mod:`pipeline.models.hidden_spectrum.zeros`) and the cell is written as 0, ``-inf``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.models.hidden_spectrum.cells import Cells
from pipeline.models.hidden_spectrum.kalman import exact_inputs, kalman_fir
from pipeline.models.hidden_spectrum.system import (
    as_spectrum,
    check_block,
    check_observable,
    check_observation,
    check_ratio,
)
from pipeline.models.precision.balls import log10 as ball_log10
from pipeline.models.spectra import Spectrum

__all__ = ["best_fir_theta", "risk_block"]

FloatArray = npt.NDArray[np.float64]


def risk_block(
    spectrum: Spectrum | str,
    noise_ratio: npt.ArrayLike,
    learner: str,
    k: npt.ArrayLike,
    T: npt.ArrayLike,
    observation: str = "sum",
) -> dict[str, FloatArray]:
    """Exact risk ``R_T`` (MATH §5.2) of one learner on a block of cells of one spectrum.

    Parameters
    ----------
    spectrum : Spectrum or str
        Spectrum of the §1.1 grammar (dimension <= 16) satisfying Assumption 4.1
        (else :class:`~pipeline.models.hidden_spectrum.system.ObservabilityError`).
    noise_ratio : (R,) float
        ``r`` = observation-noise variance in units of the process-noise variance, ``> 0``.
    learner : ``"truncated_kalman"`` or ``"best_fir"``
    k : (K,) int
        FIR lengths, ``>= 0``.
    T : (N,) int
        Horizons, ``1 <= T <= 2**52``.
    observation : ``"sum"``

    Returns
    -------
    dict with ``"risk"`` and ``"log10_risk"``, float64 of shape (R, K, N); ``risk`` in units of
    the process-noise variance. ``risk`` is ``+inf`` where it overflows float64 (``log10_risk``
    stays exact) and underflows to 0 below ~1e-308; ``log10_risk = -inf`` exactly where the
    risk is exactly 0 (``k >= T``, or a system whose Bayes predictor is itself a short FIR,
    e.g. ``A = 0``). Never NaN; :class:`PrecisionError` if a cell cannot be verified.

    Each cell is computed by its own fixed-shape ``n x n`` ball arithmetic (module docstring),
    independent of the other cells of the block; the cost per cell does not grow with ``T``.
    """
    sp = as_spectrum(spectrum)
    check_observation(observation)
    check_observable(sp, observation)
    r, k, T = check_block(noise_ratio, learner, k, T)
    shape = (r.shape[0], k.shape[0], T.shape[0])
    risk = np.zeros(shape)
    log10 = np.full(shape, -np.inf)
    for ri, rv in enumerate(r):
        cells = Cells(exact_inputs(sp.text, float(rv), observation), sp)
        for ni, tv in enumerate(T):
            for ki, kv in enumerate(k):
                if tv <= kv:
                    continue
                v = cells.verified(learner, int(kv), int(tv))
                risk[ri, ki, ni] = float(v.mid())
                log10[ri, ki, ni] = ball_log10(v)
    return {"risk": risk, "log10_risk": log10}


def best_fir_theta(
    spectrum: Spectrum | str, noise_ratio: float, k: int, T: int, observation: str = "sum"
) -> FloatArray:
    """The length-``k`` FIR minimising ``R_T`` at horizon ``T`` (MATH §5.2), shape ``(k,)``.

    ``theta = G - B^-1 beta`` with ``beta_i = -(F^(k-i)' C')' x / (S (T + 1 - i))`` (module
    docstring). For ``T <= k`` the minimiser is not unique and the Kalman truncation ``G``
    (risk 0) is returned.
    """
    sp = as_spectrum(spectrum)
    check_observable(sp, observation)
    k, T = int(k), int(T)
    if k < 0 or T < 1:
        raise ValueError("need k >= 0 and T >= 1")
    ex = exact_inputs(sp.text, check_ratio(noise_ratio), observation)
    G = kalman_fir(sp, noise_ratio, k, observation)
    if k == 0 or k >= T:
        return G
    return Cells(ex, sp).verified_theta(k, T)
