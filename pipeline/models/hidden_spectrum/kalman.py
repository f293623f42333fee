"""The stationary Kalman predictor of a hidden-state system (MATH §5.1), solved at 320 bits.

``P`` solves the filter Riccati equation by the structure-preserving doubling algorithm
(:func:`pipeline.models.precision.doubling.riccati_doubling`, quadratic convergence) at
:data:`KALMAN_BITS`, accepted only when the residual is below ``2^-KALMAN_RESIDUAL_BITS``
(else at twice the precision); the rounded ``K``, ``S`` are then the exact inputs of every
risk (the risk is a smooth function of them; the tests compare against an independent
mpmath solution). A spectrum that is its own negative keeps its sign symmetry exactly in
``K`` (:mod:`.symmetry`), so the exact zeros it implies stay exact. Solutions are cached
per (spectrum, noise ratio, observation); the float64 arrays of a cached
:class:`KalmanFilter` are read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from flint import arb, arb_mat

from pipeline.models.hidden_spectrum.symmetry import sign_symmetry, symmetrise
from pipeline.models.hidden_spectrum.system import (
    as_spectrum,
    check_observable,
    check_observation,
    check_ratio,
    observation_matrix,
)
from pipeline.models.precision.balls import amat, eye, max_abs, to_np
from pipeline.models.precision.context import PrecisionError, working_precision
from pipeline.models.precision.doubling import riccati_doubling
from pipeline.models.spectra import Spectrum

__all__ = ["KALMAN_BITS", "ExactInputs", "KalmanFilter", "exact_inputs", "kalman_filter", "kalman_fir"]

FloatArray = npt.NDArray[np.float64]

KALMAN_BITS = 320  # precision of the Riccati solution
KALMAN_RESIDUAL_BITS = 192  # required relative accuracy of the Riccati residual


@dataclass(frozen=True)
class KalmanFilter:
    """Stationary Kalman predictor of one (spectrum, noise_ratio), float64 (MATH §5.1).

    ``A`` (n, n) real Jordan matrix; ``C`` (n,) observation row; ``P`` (n, n) one-step
    prediction covariance (units of the process-noise variance); ``K`` (n,) predictor gain;
    ``S = C P C' + r`` innovation variance; ``F = A - K C`` (n, n) closed loop;
    ``closed_loop_radius = rho(F) < 1``.
    """

    A: FloatArray
    C: FloatArray
    noise_ratio: float
    P: FloatArray
    K: FloatArray
    S: float
    F: FloatArray
    closed_loop_radius: float


@dataclass(frozen=True)
class ExactInputs:
    """Exact (arb midpoint) inputs of one (spectrum, noise_ratio): ``K``, ``S`` and the system."""

    n: int
    A: arb_mat
    C: arb_mat  # (1, n)
    K: arb_mat  # (n, 1)
    S: arb
    filt: KalmanFilter


def _riccati(A: FloatArray, C: FloatArray, r: float, bits: int) -> tuple[arb_mat, arb_mat, arb, arb_mat, float]:
    """``(P, K, S, F, relative residual)`` at ``bits`` (midpoints of a doubling solution)."""
    n = A.shape[0]
    with working_precision(bits):
        P = riccati_doubling(A, C, r, bits)
        Aa, Ca = amat(A), amat(C[None, :])
        S = ((Ca * P * Ca.transpose())[0, 0] + arb(r)).mid()
        K = (Aa * P * Ca.transpose() * (arb(1) / S)).mid()
        APA = Aa * P * Aa.transpose()
        res = P - (APA - K * K.transpose() * S + eye(n))  # P = A P A' - K S K' + I
        rel = max_abs(res) / max(max_abs(APA), 1.0)
        F = Aa - K * Ca
        return P, K, S, F, rel


@lru_cache(maxsize=512)
def exact_inputs(text: str, r: float, observation: str) -> ExactInputs:
    """The Kalman solution of (spectrum text, noise ratio ``r``, observation), cached.

    :class:`PrecisionError` if the Riccati residual stays above ``2^-KALMAN_RESIDUAL_BITS``
    up to ``4 * KALMAN_BITS`` or the closed loop is not stable.
    """
    sp = as_spectrum(text)
    check_observable(sp, observation)
    A = sp.jordan_matrix()
    C = observation_matrix(sp, observation)
    n = sp.n
    bits = KALMAN_BITS
    while True:
        P, K, S, F, rel = _riccati(A, C, r, bits)
        if rel <= 2.0**-KALMAN_RESIDUAL_BITS:
            break
        if bits >= 4 * KALMAN_BITS:
            raise PrecisionError(
                f"spectrum {text!r}, noise_ratio {r!r}: Riccati residual {rel:.1e} not below "
                f"2^-{KALMAN_RESIDUAL_BITS} at {bits} bits"
            )
        bits *= 2
    Pi = sign_symmetry(sp, C)
    if Pi is not None:  # A's spectrum is its own negative: G_1, G_3, ... are exactly 0 (symmetry.py)
        Ks = symmetrise(Pi, K, bits)
        if Ks is not None:
            K = Ks
            with working_precision(bits):
                F = amat(A) - K * amat(C[None, :])
    Pf, Kf, Ff = to_np(P), to_np(K)[:, 0], to_np(F)
    rho = float(np.max(np.abs(np.linalg.eigvals(Ff)))) if n else 0.0
    if not rho < 1.0:
        raise PrecisionError(f"spectrum {text!r}, noise_ratio {r!r}: Kalman closed loop not stable (rho = {rho})")
    for shared in (A, C, Pf, Kf, Ff):
        shared.setflags(write=False)
    filt = KalmanFilter(A=A, C=C, noise_ratio=float(r), P=Pf, K=Kf, S=float(S.mid()), F=Ff, closed_loop_radius=rho)
    return ExactInputs(n=n, A=amat(A), C=amat(C[None, :]), K=K, S=S, filt=filt)


def kalman_filter(spectrum: Spectrum | str, noise_ratio: float, observation: str = "sum") -> KalmanFilter:
    """The stationary Kalman predictor of MATH §5.1 for one (spectrum, noise_ratio).

    Raises :class:`~pipeline.models.hidden_spectrum.system.ObservabilityError` for spectra
    that violate Assumption 4.1. ``P``, ``K``, ``S``, ``F`` are the float64 roundings of a
    320-bit solution (relative error ~1e-16); the arrays are shared and read-only.
    """
    sp = as_spectrum(spectrum)
    check_observation(observation)
    return exact_inputs(sp.text, check_ratio(noise_ratio), observation).filt


def kalman_fir(spectrum: Spectrum | str, noise_ratio: float, k: int, observation: str = "sum") -> FloatArray:
    """The Kalman predictor truncated to ``k`` lags, ``G_j = C F^(j-1) K`` (j = 1..k), shape ``(k,)``."""
    sp = as_spectrum(spectrum)
    ex = exact_inputs(sp.text, check_ratio(noise_ratio), observation)
    with working_precision(KALMAN_BITS):
        F = ex.A - ex.K * ex.C
        w = ex.C.transpose()
        out = []
        for _ in range(int(k)):
            out.append(float((w.transpose() * ex.K)[0, 0].mid()))
            w = F.transpose() * w
    return np.array(out, dtype=np.float64)
