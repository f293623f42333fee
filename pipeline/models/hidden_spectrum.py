"""Experiment ``hidden`` with any spectrum: FIR learners of a noisily observed system (MATH.md §5).

Model (process noise ``w ~ N(0, I_n)``; every risk is in units of the process-noise variance)::

    x_{t+1} = A x_t + w_t,   y_t = C x_t + v_t,   v ~ N(0, r),   x_0 ~ N(0, P),   r = noise_ratio

``A`` is the real Jordan matrix of a spectrum (MATH §1.1) and ``C`` (``observation = "sum"``)
the sum of the first coordinate of every Jordan block. The Bayes predictor is the
stationary Kalman predictor ``xhat_{t+1} = F xhat_t + K y_t`` (``xhat_0 = 0``), exact from
``t = 0``; ``yhat*_t = C xhat_t = sum_{j<=t} G_j y_{t-j}``, ``G_j = C F^(j-1) K``. A learner
is a length-``k`` FIR filter ``yhat_t = sum_{j<=min(k,t)} theta_j y_{t-j}`` and its risk
``R_T = (1/T) sum_{t=1..T} E (yhat*_t - yhat_t)^2``.

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

Arithmetic
----------
For a marginal Jordan block of size ``m`` the entries of ``Z_N`` grow like ``N^(2m)`` (like
``rho^(2N)`` for ``|lam| = rho > 1``) while the bounded ``best_fir`` risk stays O(1), and
``F^k' C'`` is computed with a non-normal ``F``: float64 returns garbage. Every cell is
therefore evaluated in ball arithmetic (python-flint ``arb``), which carries a rigorous
bound on all rounding errors:

* ``P`` solves the filter Riccati equation by the structure-preserving doubling algorithm
  (quadratic convergence) at 320 bits, with a residual check; the rounded ``K``, ``S`` are
  then used as exact inputs (the risk is a smooth function of them; the tests compare
  against an independent mpmath solution).
* ``Z_N`` by doubling (``O(n^3 log N)``) to an anchor ``N0 = 64 floor(N / 64)`` and then
  at most 63 rank-one steps, so a cell's value depends on its own ``N`` only;
  ``W`` by the recursion ``W_{k+1} = F' W_k F + C'C / (S (T - k))`` from ``W_0 = 0``;
  ``c_k = F' c_{k-1}``. Cost is independent of ``T`` (O(log T) doubling steps).
* The working precision is chosen from the cell's own ``(spectrum, noise_ratio, k, T)``
  (:func:`_working_bits`: the polynomial growth ``sum m log2 T``, the non-normal loss
  ``k log2(||F|| / rho(F))`` and, for unstable moduli that differ, their exponential
  ratio), and every result is accepted only if its ball has at least 64 correct bits;
  otherwise the cell is recomputed at twice the precision, up to ``MAX_BITS``, beyond
  which :class:`PrecisionError` is raised. A returned ``risk`` is thus the correctly
  rounded float64 of the risk of the system with the 320-bit Kalman gain, to within
  one ulp, and ``log10_risk`` is exact to float64 also where ``risk`` overflows (``+inf``).

Accuracy (``tests/models/test_hidden_spectrum.py``): against the brute-force ``k x k``
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
``T = 1e2``. A cell that is exactly 0 only because ``F`` is nilpotent (the Kalman
predictor is itself a short FIR with a non-zero gain) cannot be verified as a ball and
raises :class:`PrecisionError`; exact zeros of the gain (e.g. ``A = 0``) propagate exactly.

All per-cell arithmetic has a fixed shape (``n x n``) and a fixed operation sequence
determined by the cell's own coordinates, so a cell's bits never depend on the rest of
the block. python-flint's working precision is process-global; all arb work runs
under one module lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from flint import arb, arb_mat, ctx, fmpz_mat

from pipeline.models.spectra import EigenGroup, Spectrum, SpectrumError, parse_spectrum
from pipeline.models.streams import cell_rng

__all__ = [
    "LEARNERS",
    "OBSERVATIONS",
    "KalmanFilter",
    "ObservabilityError",
    "PrecisionError",
    "best_fir_theta",
    "bounded",
    "check_observable",
    "critical_k",
    "critical_k_theory",
    "growth_exponent_theory",
    "kalman_filter",
    "kalman_fir",
    "kstar_slope_theory",
    "max_marginal_block",
    "montecarlo_block",
    "n_unstable",
    "observation_matrix",
    "risk_block",
]

OBSERVATIONS: tuple[str, ...] = ("sum",)
LEARNERS: tuple[str, ...] = ("truncated_kalman", "best_fir")

KALMAN_BITS = 320  # precision of the Riccati solution
TARGET_BITS = 64  # correct bits every returned risk must have (ball radius check)
MAX_BITS = 1 << 15  # working precision cap: beyond it a cell raises PrecisionError
MAX_DIMENSION = 16  # hidden-state systems (observed ones go to spectra.MAX_DIMENSION)
ANCHOR = 64  # spacing of the doubling anchors for Z_N

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_LOCK = threading.RLock()
_LN10 = math.log(10.0)


class ObservabilityError(ValueError):
    """The observation cannot see a mode with ``|lam| >= 1`` (Assumption 4.1); one-line message."""


class PrecisionError(ArithmeticError):
    """A cell could not be verified to 64 correct bits within ``MAX_BITS`` of working precision."""


@contextmanager
def _bits(prec: int) -> Iterator[None]:
    """Set python-flint's (process-global) working precision under the module lock."""
    with _LOCK:
        old = ctx.prec
        ctx.prec = int(prec)
        try:
            yield
        finally:
            ctx.prec = old


# ---------------------------------------------------------------------------
# Spectrum helpers and theory (MATH §5.4)
# ---------------------------------------------------------------------------


def _spectrum(spectrum: Spectrum | str) -> Spectrum:
    """The parsed spectrum; ``SpectrumError`` beyond :data:`MAX_DIMENSION` (the ball-arithmetic cost)."""
    sp = spectrum if isinstance(spectrum, Spectrum) else parse_spectrum(spectrum)
    if sp.n > MAX_DIMENSION:
        raise SpectrumError(
            f"spectrum {sp.text!r}: dimension {sp.n} exceeds the maximum {MAX_DIMENSION} of hidden-state systems"
        )
    return sp


def _unstable_groups(sp: Spectrum) -> list[EigenGroup]:
    return [g for g in sp.groups if g.unstable]


def _group_text(sp: Spectrum, g: EigenGroup) -> str:
    if g.is_pair:
        return f"{g.key[1]!r}@{g.key[-1]!r}"
    return repr(g.key[1])


def n_unstable(spectrum: Spectrum | str) -> int:
    """``n_u``: total algebraic multiplicity of the eigenvalues with ``|lam| >= 1`` (a pair counts twice)."""
    return _spectrum(spectrum).n_unstable


def max_marginal_block(spectrum: Spectrum | str) -> int:
    """``m``: the largest Jordan block (in eigenvalues) among ``|lam| = 1``; 0 if there is none."""
    sp = _spectrum(spectrum)
    return max((max(g.sizes) for g in sp.groups if g.modulus == 1.0), default=0)


def growth_exponent_theory(spectrum: Spectrum | str, learner: str, k: int | None = None) -> float:
    """Theory of ``g = d ln R_T / d ln T`` for large ``T`` (MATH §5.4).

    ``truncated_kalman``: ``0`` if ``n_u = 0``; ``2m - 1`` if ``rho(A) = 1`` (every ``k``);
    ``+inf`` if ``rho(A) > 1`` (convention: ``inf`` marks exponential growth, faster than
    every power of ``T``).

    ``best_fir``: without ``k`` the exponent at ``k >= n_u``, i.e. ``0`` (bounded). With
    ``k``: ``0`` if ``k >= n_u``; otherwise the ``k`` taps are spent on the ``n_u``
    vanishing conditions where they remove the fastest growth: if they cannot cover every
    eigenvalue with ``|lam| > 1`` the growth is exponential (``inf``); the rest lower the
    deficits ``m_lam - k_lam`` of the marginal eigenvalues (a complex pair costs two taps
    per order), and the exponent is ``2 max(m_lam - k_lam) - 1`` — for one marginal block
    of size ``m`` and ``k < m``: ``2(m - k) - 1``.
    """
    sp = _spectrum(spectrum)
    _check_learner(learner)
    nu = sp.n_unstable
    if nu == 0:
        return 0.0
    if learner == "truncated_kalman":
        return math.inf if sp.spectral_radius > 1.0 else float(2 * max_marginal_block(sp) - 1)
    if k is None or int(k) >= nu:
        return 0.0
    k = int(k)
    outside = sum(len(g.indices) for g in sp.groups if g.modulus > 1.0)
    if k < outside:
        return math.inf
    left = k - outside
    deficits = [[g.multiplicity, 2 if g.is_pair else 1] for g in sp.groups if g.modulus == 1.0]
    while True:  # water-filling: lower the largest deficit while a tap pays for it
        deficits.sort(key=lambda d: -d[0])
        top = deficits[0]
        if top[0] == 0 or top[1] > left:
            break
        top[0] -= 1
        left -= top[1]
    worst = max(d[0] for d in deficits)
    return float(2 * worst - 1) if worst > 0 else 0.0


def critical_k_theory(spectrum: Spectrum | str, learner: str) -> int | None:
    """Theory of the critical filter length (MATH §5.4).

    ``best_fir``: ``n_u`` (0 when ``n_u = 0``). ``truncated_kalman``: ``0`` if ``n_u = 0``,
    else ``None`` (never bounded).
    """
    sp = _spectrum(spectrum)
    _check_learner(learner)
    if learner == "best_fir":
        return sp.n_unstable
    return 0 if sp.n_unstable == 0 else None


def kstar_slope_theory(spectrum: Spectrum | str, noise_ratio: npt.ArrayLike, observation: str = "sum") -> FloatArray:
    """Slope of ``k*(T; tau)`` in ``ln T`` for ``truncated_kalman`` (MATH §5.4), shape (R,).

    ``(2m - 1) / (2 ln(1 / rho(F)))`` at ``rho(A) = 1``; ``0`` if ``n_u = 0``; ``+inf`` if
    ``rho(A) > 1`` (``k*`` then grows linearly in ``T``). Dimensionless.
    """
    sp = _spectrum(spectrum)
    r = np.atleast_1d(np.asarray(noise_ratio, dtype=np.float64))
    if r.ndim != 1:
        raise ValueError("noise_ratio must be 1-D")
    if sp.n_unstable == 0:
        return np.zeros(r.shape)
    if sp.spectral_radius > 1.0:
        return np.full(r.shape, np.inf)
    m = max_marginal_block(sp)
    rho = np.array([kalman_filter(sp, float(v), observation).closed_loop_radius for v in r])
    return (2 * m - 1) / (2.0 * np.log(1.0 / rho))


def closed_loop_period(F: npt.ArrayLike, k_max: int) -> float:
    """Longest oscillation period, in taps, of the dominant modes of the closed loop ``F`` (n, n).

    A mode ``mu`` is dominant when it stays within a factor 2 of the slowest one over the
    filter lengths ``k <= k_max``: ``(|mu| / rho(F))^k_max >= 1/2``. With ``theta`` the
    arguments of the dominant modes in ``(0, pi]``, the periods are ``2 pi / theta`` and, where
    dominant modes beat against each other, ``2 pi / |theta_i - theta_j|``; the result is the
    longest, ``0`` when every dominant eigenvalue is a positive real (no oscillation). The
    truncation risk of a length-``k`` filter carries the factor ``|sum_i c_i mu_i^k|^2``, whose
    near-zeros recur with this period, so ``k*(T; tau)`` is a staircase that deviates from its
    ``ln T`` asymptote by about one period (docs/theory.md §5).
    """
    mu = np.linalg.eigvals(np.asarray(F, dtype=np.float64))
    mod = np.abs(mu)
    rho = float(mod.max()) if mu.size else 0.0
    if rho == 0.0:
        return 0.0
    theta = np.abs(np.angle(mu[mod >= rho * 0.5 ** (1.0 / max(int(k_max), 1))]))
    theta = np.unique(np.round(theta[theta > 1e-9], 12))
    gaps = np.abs(theta[:, None] - theta[None, :])[np.triu_indices(theta.size, 1)]
    freqs = np.concatenate([theta, gaps[gaps > 1e-9]])
    return float(2.0 * np.pi / freqs.min()) if freqs.size else 0.0


# ---------------------------------------------------------------------------
# Observation and observability
# ---------------------------------------------------------------------------


def _check_observation(observation: str) -> None:
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation = {observation!r}: allowed {', '.join(map(repr, OBSERVATIONS))}")


def _check_learner(learner: str) -> None:
    if learner not in LEARNERS:
        raise ValueError(f"learner = {learner!r}: must be one of {LEARNERS}")


def observation_matrix(spectrum: Spectrum | str, observation: str = "sum") -> FloatArray:
    """The observation row ``C`` (shape ``(n,)``): 1 at the first coordinate of every Jordan block."""
    sp = _spectrum(spectrum)
    _check_observation(observation)
    C = np.zeros(sp.n)
    for b in sp.blocks:
        C[b.start] = 1.0
    return C


def check_observable(spectrum: Spectrum | str, observation: str = "sum") -> None:
    """Raise :class:`ObservabilityError` (one-line message) unless ``observation`` sees every
    mode with ``|lam| >= 1``, i.e. every such eigenvalue (or pair) has a single Jordan block."""
    sp = _spectrum(spectrum)
    _check_observation(observation)
    for g in _unstable_groups(sp):
        if len(g.sizes) > 1:
            raise ObservabilityError(
                f"spectrum {sp.text!r}: eigenvalue {_group_text(sp, g)} (|lam| = {g.modulus!r} >= 1) has "
                f'{len(g.sizes)} Jordan blocks {list(g.sizes)}, so observation = "{observation}" cannot observe '
                "all of its modes (Assumption 4.1 needs the modes with |lam| >= 1 observable)"
            )


# ---------------------------------------------------------------------------
# Kalman filter
# ---------------------------------------------------------------------------


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
class _Exact:
    """Exact (arb midpoint) inputs of one (spectrum, noise_ratio): ``K``, ``S`` and the system."""

    n: int
    A: arb_mat
    C: arb_mat  # (1, n)
    K: arb_mat  # (n, 1)
    S: arb
    filt: KalmanFilter


def _amat(X: np.ndarray) -> arb_mat:
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    return arb_mat([[float(v) for v in row] for row in X])


def _eye(n: int) -> arb_mat:
    out = arb_mat(n, n)
    for i in range(n):
        out[i, i] = 1
    return out


def _to_np(M: arb_mat) -> FloatArray:
    return np.array([[float(M[i, j].mid()) for j in range(M.ncols())] for i in range(M.nrows())])


def _max_abs(M: arb_mat) -> float:
    return max(abs(float(M[i, j].mid())) for i in range(M.nrows()) for j in range(M.ncols()))


def _sda(A: np.ndarray, C: np.ndarray, r: float, bits: int) -> arb_mat:
    """Stabilising solution of ``P = A P A' - A P C' (C P C' + r)^-1 C P A' + I`` (midpoints).

    Structure-preserving doubling (Chu, Fan, Lin 2005) for ``X = Ad' X (I + G X)^-1 Ad + H``
    with ``Ad = A'``, ``G = C'C / r``, ``H = I``: ``H_j -> P`` with error ``~rho(F)^(2^(j+1))``.
    Run at ``bits`` on midpoints (a floating-point iteration; accuracy is checked by the
    caller through the Riccati residual).
    """
    n = A.shape[0]
    Ak = _amat(A.T)
    G = _amat(np.outer(C, C)) * (arb(1) / arb(r))
    H = _eye(n)
    I = _eye(n)
    tol = 2.0 ** (-(bits - 24))
    for _ in range(200):
        Minv = (I + G * H).inv()
        AM = Ak * Minv
        An = AM * Ak
        Gn = G + AM * G * Ak.transpose()
        Hn = H + Ak.transpose() * H * Minv * Ak
        diff = _max_abs(Hn - H)
        Ak, G, H = An.mid(), Gn.mid(), Hn.mid()
        # symmetrise (the doubling preserves symmetry exactly only in exact arithmetic)
        G = ((G + G.transpose()) * arb(0.5)).mid()
        H = ((H + H.transpose()) * arb(0.5)).mid()
        if diff <= tol * _max_abs(H):
            return H
    raise PrecisionError(f"Riccati doubling did not converge (noise_ratio = {r!r})")


KALMAN_RESIDUAL_BITS = 192  # required relative accuracy of the Riccati residual


def _riccati(A: np.ndarray, C: np.ndarray, r: float, bits: int) -> tuple[arb_mat, arb_mat, arb, arb_mat, float]:
    """``(P, K, S, F, relative residual)`` at ``bits`` (midpoints of a doubling solution)."""
    n = A.shape[0]
    with _bits(bits):
        P = _sda(A, C, r, bits)
        Aa, Ca = _amat(A), _amat(C[None, :])
        S = ((Ca * P * Ca.transpose())[0, 0] + arb(r)).mid()
        K = (Aa * P * Ca.transpose() * (arb(1) / S)).mid()
        APA = Aa * P * Aa.transpose()
        res = P - (APA - K * K.transpose() * S + _eye(n))  # P = A P A' - K S K' + I
        rel = _max_abs(res) / max(_max_abs(APA), 1.0)
        F = Aa - K * Ca
        return P, K, S, F, rel


@lru_cache(maxsize=512)
def _exact(text: str, r: float, observation: str) -> _Exact:
    sp = _spectrum(text)
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
    Pf, Kf, Ff = _to_np(P), _to_np(K)[:, 0], _to_np(F)
    rho = float(np.max(np.abs(np.linalg.eigvals(Ff)))) if n else 0.0
    if not rho < 1.0:
        raise PrecisionError(f"spectrum {text!r}, noise_ratio {r!r}: Kalman closed loop not stable (rho = {rho})")
    filt = KalmanFilter(A=A, C=C, noise_ratio=float(r), P=Pf, K=Kf, S=float(S.mid()), F=Ff, closed_loop_radius=rho)
    return _Exact(n=n, A=_amat(A), C=_amat(C[None, :]), K=K, S=S, filt=filt)


def _check_ratio(r: float) -> float:
    r = float(r)
    if not (math.isfinite(r) and r > 0.0):
        raise ValueError(f"noise_ratio = {r!r}: must be finite and > 0")
    return r


def kalman_filter(spectrum: Spectrum | str, noise_ratio: float, observation: str = "sum") -> KalmanFilter:
    """The stationary Kalman predictor of MATH §5.1 for one (spectrum, noise_ratio).

    Raises :class:`ObservabilityError` for spectra that violate Assumption 4.1. ``P``, ``K``,
    ``S``, ``F`` are the float64 roundings of a 320-bit solution (relative error ~1e-16).
    """
    sp = _spectrum(spectrum)
    _check_observation(observation)
    return _exact(sp.text, _check_ratio(noise_ratio), observation).filt


def kalman_fir(spectrum: Spectrum | str, noise_ratio: float, k: int, observation: str = "sum") -> FloatArray:
    """The Kalman predictor truncated to ``k`` lags, ``G_j = C F^(j-1) K`` (j = 1..k), shape ``(k,)``."""
    sp = _spectrum(spectrum)
    ex = _exact(sp.text, _check_ratio(noise_ratio), observation)
    with _bits(KALMAN_BITS):
        F = ex.A - ex.K * ex.C
        w = ex.C.transpose()
        out = []
        for _ in range(int(k)):
            out.append(float((w.transpose() * ex.K)[0, 0].mid()))
            w = F.transpose() * w
    return np.array(out, dtype=np.float64)


# ---------------------------------------------------------------------------
# Exact risk
# ---------------------------------------------------------------------------


def _working_bits(sp: Spectrum, filt: KalmanFilter, k: int, T: int) -> int:
    """Initial working precision for a cell, from its own (spectrum, noise_ratio, k, T).

    ``TARGET_BITS`` plus a margin, plus estimates of the bits that cancel: the polynomial
    growth of ``Z_N`` (``sum of unstable block sizes * log2 T``), the non-normal loss in
    ``F^k' C'`` (``k log2(||F||_inf / rho(F))``, with ``k`` rounded up to a multiple of 64 so
    that neighbouring filter lengths share anchors), and ``2 T log2(rho_max / rho_min)`` over
    the unstable moduli. Rounded up to a multiple of 64. A cell whose result misses
    ``TARGET_BITS`` is recomputed at twice the precision.
    """
    return _bits_rule(_precision_profile(sp, filt), k, T)


def _precision_profile(sp: Spectrum, filt: KalmanFilter) -> tuple[float, float, float]:
    """``(sum of unstable block sizes, log2(||F||_inf / rho(F)), log2(rho_max / rho_min))``."""
    unstable = _unstable_groups(sp)
    rho = filt.closed_loop_radius
    loss = 0.0
    if rho > 0.0:
        loss = max(0.0, math.log2(float(np.max(np.sum(np.abs(filt.F), axis=1))) / rho))
    mods = [g.modulus for g in unstable] or [1.0]
    return float(sum(g.multiplicity for g in unstable)), loss, math.log2(max(mods) / min(mods))


def _bits_rule(profile: tuple[float, float, float], k: int, T: int) -> int:
    m_sum, loss, spread = profile
    kb = ANCHOR * max(1, -(-int(k) // ANCHOR))
    bits = TARGET_BITS + 48 + m_sum * math.log2(T + 1.0) + kb * loss + 2.0 * T * spread
    return int(64 * math.ceil(bits / 64.0))


class _Cells:
    """Per-(spectrum, noise_ratio) arb caches; every entry is a fixed function of its key."""

    def __init__(self, ex: _Exact, sp: Spectrum):
        self.ex = ex
        self.sp = sp
        self.profile = _precision_profile(sp, ex.filt)
        self._by_prec: dict[int, dict[str, Any]] = {}

    def _p(self, prec: int) -> dict[str, Any]:
        d = self._by_prec.get(prec)
        if d is None:
            ex = self.ex
            F = ex.A - ex.K * ex.C
            d = {
                "F": F,
                "FT": F.transpose(),
                "CTC": ex.C.transpose() * ex.C,
                "c": [ex.C.transpose()],  # c_j = F^j' C'
                "anchors": {},
                "W": {},
                "I": _eye(ex.n),
            }
            self._by_prec[prec] = d
        return d

    def c(self, prec: int, k: int) -> arb_mat:
        d = self._p(prec)
        cs = d["c"]
        while len(cs) <= k:
            cs.append(d["FT"] * cs[-1])
        out: arb_mat = cs[k]
        return out

    def _anchor(self, prec: int, N0: int) -> list[tuple[arb_mat, arb_mat, arb_mat]]:
        """States ``(u_N, X_N, Z_N)`` for ``N = N0`` by doubling; later entries by steps."""
        ex = self.ex
        n = ex.n
        P, X, Z = _eye(n), arb_mat(n, n), arb_mat(n, n)
        L = 0
        for bit in bin(N0)[2:] if N0 else "":
            if L:
                PT = P.transpose()
                Z = Z + X * L + P * Z * PT
                X = X + P * X * PT
                P = P * P
                L *= 2
            if bit == "1":
                u = P * ex.K
                X = X + u * u.transpose() * ex.S
                Z = Z + X
                P = ex.A * P
                L += 1
        return [(P * ex.K, X, Z)]

    def Z(self, prec: int, N: int) -> arb_mat:
        d = self._p(prec)
        N0 = ANCHOR * (N // ANCHOR)
        states = d["anchors"].get(N0)
        if states is None:
            states = d["anchors"][N0] = self._anchor(prec, N0)
        ex = self.ex
        while len(states) <= N - N0:
            u, X, Z = states[-1]
            X = X + u * u.transpose() * ex.S
            states.append((ex.A * u, X, Z + X))
        z: arb_mat = states[N - N0][2]
        return z

    def W(self, prec: int, T: int, k: int) -> arb_mat:
        """``W_k(T) = sum_{i=1..k} c_{k-i} c_{k-i}' / (S (T + 1 - i))`` by ``W_{j+1} = F' W_j F + C'C/(S(T-j))``."""
        d = self._p(prec)
        Ws = d["W"].get(T)
        if Ws is None:
            Ws = d["W"][T] = [arb_mat(self.ex.n, self.ex.n)]
        while len(Ws) <= k:
            j = len(Ws) - 1
            Ws.append(d["FT"] * Ws[-1] * d["F"] + d["CTC"] * (arb(1) / (self.ex.S * (T - j))))
        w: arb_mat = Ws[k]
        return w

    def solve(self, prec: int, k: int, T: int) -> tuple[arb, arb_mat]:
        """``(T R_T, x)`` of best_fir at (k, T), ``x = (I + Z W)^-1 Z c`` (needs ``T > k >= 1``)."""
        d = self._p(prec)
        Z = self.Z(prec, T - k)
        c = self.c(prec, k)
        M = d["I"] + Z * self.W(prec, T, k)
        x = M.solve(Z * c)
        return (c.transpose() * x)[0, 0], x

    def value(self, prec: int, learner: str, k: int, T: int) -> arb:
        """``R_T`` as an arb ball at working precision ``prec`` (``T > k``)."""
        if learner == "truncated_kalman" or k == 0:
            Z = self.Z(prec, T - k)
            c = self.c(prec, k)
            tr = (c.transpose() * Z * c)[0, 0]
        else:
            try:
                tr, _ = self.solve(prec, k, T)
            except ZeroDivisionError:  # the ball matrix is not provably invertible: more bits
                return arb.nan()
        return tr / T

    def verified(self, learner: str, k: int, T: int) -> arb:
        """``R_T`` with at least ``TARGET_BITS`` correct bits (or exactly 0)."""
        sp = self.sp
        prec = min(_bits_rule(self.profile, k, T), MAX_BITS)
        while True:
            with _bits(prec):
                v = self.value(prec, learner, k, T)
            if v.is_zero() or (v.is_finite() and v > 0 and v.rel_accuracy_bits() >= TARGET_BITS):
                return v
            if prec >= MAX_BITS:
                raise PrecisionError(
                    f"spectrum {sp.text!r}, noise_ratio {self.ex.filt.noise_ratio!r}, learner {learner}, "
                    f"k = {k}, T = {T}: risk not verified to {TARGET_BITS} bits at {prec} bits of precision"
                )
            prec = min(2 * prec, MAX_BITS)


def _check_block(
    noise_ratio: npt.ArrayLike, learner: str, k_in: npt.ArrayLike, T_in: npt.ArrayLike
) -> tuple[FloatArray, IntArray, IntArray]:
    """Validated ``(noise_ratio (R,), k (K,), T (N,))`` of a block; ``ValueError`` naming the bad input."""
    r = np.ascontiguousarray(noise_ratio, dtype=np.float64)
    k = np.ascontiguousarray(k_in)
    T = np.ascontiguousarray(T_in)
    for name, arr in (("noise_ratio", r), ("k", k), ("T", T)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    _check_learner(learner)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise ValueError("noise_ratio must be finite and > 0")
    for name, arr in (("k", k), ("T", T)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            f = np.asarray(arr, dtype=np.float64)
            if not np.all(f == np.round(f)):
                raise ValueError(f"{name} must hold integers")
    k = k.astype(np.int64)
    T = T.astype(np.int64)
    if np.any(k < 0):
        raise ValueError("k must be >= 0")
    if np.any(T < 1):
        raise ValueError("T must be >= 1")
    if np.any(T > 2**52):
        raise ValueError("T must be <= 2**52")
    return r, k, T


def _log10(v: arb) -> float:
    if v.is_zero():
        return -math.inf
    return float((v.log() / arb(10).log()).mid())


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
        (else :class:`ObservabilityError`).
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
    sp = _spectrum(spectrum)
    _check_observation(observation)
    check_observable(sp, observation)
    r, k, T = _check_block(noise_ratio, learner, k, T)
    shape = (r.shape[0], k.shape[0], T.shape[0])
    risk = np.zeros(shape)
    log10 = np.full(shape, -np.inf)
    for ri, rv in enumerate(r):
        cells = _Cells(_exact(sp.text, float(rv), observation), sp)
        for ni, tv in enumerate(T):
            for ki, kv in enumerate(k):
                if tv <= kv:
                    continue
                v = cells.verified(learner, int(kv), int(tv))
                risk[ri, ki, ni] = float(v.mid())
                log10[ri, ki, ni] = _log10(v)
    return {"risk": risk, "log10_risk": log10}


def best_fir_theta(
    spectrum: Spectrum | str, noise_ratio: float, k: int, T: int, observation: str = "sum"
) -> FloatArray:
    """The length-``k`` FIR minimising ``R_T`` at horizon ``T`` (MATH §5.2), shape ``(k,)``.

    ``theta = G - B^-1 beta`` with ``beta_i = -(F^(k-i)' C')' x / (S (T + 1 - i))`` (module
    docstring). For ``T <= k`` the minimiser is not unique and the Kalman truncation ``G``
    (risk 0) is returned.
    """
    sp = _spectrum(spectrum)
    check_observable(sp, observation)
    k, T = int(k), int(T)
    if k < 0 or T < 1:
        raise ValueError("need k >= 0 and T >= 1")
    ex = _exact(sp.text, _check_ratio(noise_ratio), observation)
    G = kalman_fir(sp, noise_ratio, k, observation)
    if k == 0 or k >= T:
        return G
    cells = _Cells(ex, sp)
    prec = min(_bits_rule(cells.profile, k, T), MAX_BITS)
    while True:
        with _bits(prec):
            try:
                _, x = cells.solve(prec, k, T)
                beta = [-(cells.c(prec, k - i).transpose() * x)[0, 0] / (ex.S * (T + 1 - i)) for i in range(1, k + 1)]
                Ga = [(cells.c(prec, j).transpose() * ex.K)[0, 0] for j in range(k)]
                theta = []
                for j in range(k):  # theta_j = G_j - beta_j + sum_{l<j} G_{j-l} beta_l
                    acc = Ga[j] - beta[j]
                    for l in range(j):
                        acc += Ga[j - 1 - l] * beta[l]
                    theta.append(acc)
                top = max(abs(float(t.mid())) for t in theta)
                ok = all(t.is_finite() and float(t.rad()) <= 2.0**-52 * top for t in theta)
            except ZeroDivisionError:
                ok = False
        if ok:
            return np.array([float(t.mid()) for t in theta])
        if prec >= MAX_BITS:
            raise PrecisionError(f"best_fir theta not verified (spectrum {sp.text!r}, k = {k}, T = {T})")
        prec = min(2 * prec, MAX_BITS)


# ---------------------------------------------------------------------------
# Boundedness: the exact rank test of MATH §5.4
# ---------------------------------------------------------------------------


def _cpow(z: tuple[Fraction, Fraction], q: int) -> tuple[Fraction, Fraction]:
    re, im = Fraction(1), Fraction(0)
    a, b = z
    base_re, base_im = a, b
    while q:
        if q & 1:
            re, im = re * base_re - im * base_im, re * base_im + im * base_re
        base_re, base_im = base_re * base_re - base_im * base_im, 2 * base_re * base_im
        q >>= 1
    return re, im


def _integer_row(vals: list[Fraction]) -> list[int]:
    den = 1
    for v in vals:
        den = den * v.denominator // math.gcd(den, v.denominator)
    return [int(v * den) for v in vals]


@lru_cache(maxsize=4096)
def _hermite_entry(lam: tuple[Fraction, Fraction], p: int, q: int) -> tuple[Fraction, Fraction]:
    """``binom(q, p) lam^(q-p)`` as (real, imaginary) parts; 0 for ``q < p``."""
    if q < p:
        return Fraction(0), Fraction(0)
    re, im = _cpow(lam, q - p)
    c = math.comb(q, p)
    return re * c, im * c


def _hermite_ranks(text: str, k: int) -> tuple[int, int]:
    """``(rank M, rank [M | b])`` of the vanishing conditions of the error transfer, exactly.

    The best_fir deviation stays bounded iff ``x^k - sum_j theta_j x^(k-j)`` vanishes to order
    ``m_lam`` at every eigenvalue with ``|lam| >= 1`` (``C A_u^k (I - sum theta_j A_u^-j) = 0``
    with ``(A_u, C_u)`` observable and cyclic): rows ``binom(k-j, p) lam^(k-j-p)``,
    right-hand side ``binom(k, p) lam^(k-p)``, ``p < m_lam``; a complex pair contributes the
    real and imaginary parts of its condition. ``lam`` is taken as the exact rational value
    of the float entries of ``A`` (``a``, ``b`` of the pair block); ranks over the rationals
    (python-flint ``fmpz_mat.rank`` on integer-scaled rows).
    """
    sp = _spectrum(text)
    rows_m: list[list[int]] = []
    rows_a: list[list[int]] = []
    for blk in sp.blocks:
        g = sp.groups[blk.group]
        if not g.unstable:
            continue
        lam = (Fraction(blk.real), Fraction(blk.imag))
        for p in range(blk.m):
            ents = [_hermite_entry(lam, p, k - j) for j in range(1, k + 1)] + [_hermite_entry(lam, p, k)]
            parts = [0, 1] if blk.is_pair else [0]
            for part in parts:
                vals = [e[part] for e in ents]
                row = _integer_row(vals)
                rows_a.append(row)
                rows_m.append(row[:-1])
    if not rows_a:
        return 0, 0
    rank_a = fmpz_mat(rows_a).rank()
    rank_m = fmpz_mat(rows_m).rank() if k > 0 else 0
    return rank_m, rank_a


def bounded(spectrum: Spectrum | str, learner: str, k: npt.ArrayLike, observation: str = "sum") -> np.ndarray:
    """Whether ``R_T`` stays bounded as ``T -> inf``, per filter length; bool, shape (K,).

    ``best_fir``: the exact rank test of the ``n_u`` vanishing conditions (:func:`_hermite_ranks`),
    which involves only the eigenvalues with ``|lam| >= 1``: independent of ``T`` and of the
    noise ratio. ``truncated_kalman``: bounded iff ``n_u = 0`` — its error ``C F^k xhat_{t-k}``
    vanishes on the unstable modes only if the Kalman tail ``sum_{j>k} G_j lam^-j`` vanishes at
    every unstable eigenvalue, which no Kalman filter of an observable system does generically
    (MATH §5.4); the tests check ``|C F^k|`` on the unstable coordinates is far from 0.
    """
    sp = _spectrum(spectrum)
    _check_learner(learner)
    check_observable(sp, observation)
    ks = np.atleast_1d(np.asarray(k)).astype(np.int64)
    if learner == "truncated_kalman":
        return np.full(ks.shape, sp.n_unstable == 0)
    out = np.empty(ks.shape, dtype=bool)
    for i, kv in enumerate(ks):
        if kv < 0:
            raise ValueError("k must be >= 0")
        rm, ra = _hermite_ranks(sp.text, int(kv))
        out[i] = rm == ra
    return out


def critical_k(spectrum: Spectrum | str, learner: str, observation: str = "sum") -> int | None:
    """``min {k : bounded}`` measured by the rank test (``None``: no ``k <= n + 16`` is bounded)."""
    sp = _spectrum(spectrum)
    for kv in range(0, sp.n + 17):
        if bounded(sp, learner, [kv], observation)[0]:
            return kv
    return None


# ---------------------------------------------------------------------------
# Monte Carlo (MATH §3)
# ---------------------------------------------------------------------------

_MC_TAG = "hidden_spectrum"
_MC_BATCH = 128  # trajectories per random stream
_MC_CHUNK = 1024  # time steps per chunk of draws (fixed: the stream is consumed identically)


def montecarlo_block(
    spectrum: Spectrum | str,
    noise_ratio: npt.ArrayLike,
    learner: str,
    k: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    seed: int,
    samples: int,
    observation: str = "sum",
) -> dict[str, FloatArray]:
    """Monte Carlo estimate of ``R_T`` (MATH §3) for a block of cells of one spectrum.

    Shapes as :func:`risk_block`: ``noise_ratio`` (R,), ``k`` (K,), ``T`` (N,); returns
    ``risk``, ``risk_stderr``, ``log10_risk`` of shape (R, K, N), in units of the
    process-noise variance.

    For each noise ratio, ``samples`` trajectories of MATH §5.1 (``x_0 ~ N(0, P)``) are
    simulated in batches of 128; batch ``b`` draws from
    ``cell_rng(seed, "hidden_spectrum", spectrum.text, noise_ratio, b)`` time-major blocks of
    ``(w_t, v_t)``, so the path for horizon ``T`` is the prefix of any longer one and every
    learner, ``k`` and ``T`` sees the same paths. The Kalman predictor is run as a state
    recursion, the FIR predictions with ``scipy.signal.lfilter`` (direct form); per
    trajectory ``(1/T) sum_{t=1..T} (yhat*_t - yhat_t)^2`` comes from a running sum, and
    ``risk`` / ``risk_stderr`` are its sample mean and ``std(ddof=1)/sqrt(samples)``
    (``math.fsum``). A cell's bits depend only on (seed, spectrum, r, learner, k, T,
    samples). Cells with ``k >= T`` are exactly 0 and not simulated. Meaningful only while
    the states stay far below 1e308 (and, for ``best_fir`` at large ``T`` with marginal
    Jordan blocks or ``rho > 1``, while the deviation is not a tiny difference of huge
    predictions).
    """
    sp = _spectrum(spectrum)
    check_observable(sp, observation)
    r, k, T = _check_block(noise_ratio, learner, k, T)
    samples = int(samples)
    if samples < 2:
        raise ValueError("samples must be >= 2")
    shape = (r.shape[0], k.shape[0], T.shape[0])
    risk = np.zeros(shape)
    stderr = np.zeros(shape)
    for ri, rv in enumerate(r):
        _mc_one(sp, float(rv), learner, k, T, int(seed), samples, observation, risk[ri], stderr[ri])
    with np.errstate(divide="ignore"):
        log10 = np.log10(risk)
    return {"risk": risk, "risk_stderr": stderr, "log10_risk": log10}


_Filter = tuple[FloatArray, list[tuple[int, int]]]  # FIR taps and the (k index, T index) cells they serve


def _mc_filters(sp: Spectrum, r: float, learner: str, k: IntArray, T: IntArray, observation: str) -> list[_Filter]:
    """The FIR filters a noise ratio's Monte Carlo runs, each with the cells (k < T) it serves."""
    filters: list[_Filter] = []
    if learner == "truncated_kalman":
        for ki, kv in enumerate(k):
            cells = [(ki, ni) for ni, tv in enumerate(T) if tv > kv]
            if cells:
                filters.append((kalman_fir(sp, r, int(kv), observation), cells))
        return filters
    for ki, kv in enumerate(k):
        for ni, tv in enumerate(T):
            if tv > kv:
                filters.append((best_fir_theta(sp, r, int(kv), int(tv), observation), [(ki, ni)]))
    return filters


def _mc_batch(
    filt: KalmanFilter, filters: list[_Filter], T: IntArray, rng: np.random.Generator, nb: int
) -> list[FloatArray]:
    """Per-trajectory time-averaged squared deviations of one batch: one (nb, cells) array per filter."""
    from scipy.signal import lfilter  # imported here: scipy.signal costs ~1 s at startup

    A, C, K, F = filt.A, filt.C, filt.K, filt.F
    n = A.shape[0]
    n_steps = int(T.max()) + 1  # times 0..T_max
    out = [np.empty((nb, len(cells))) for _, cells in filters]
    sq_r = math.sqrt(filt.noise_ratio)
    x = np.linalg.cholesky(filt.P) @ rng.standard_normal((n, nb))  # x_0 ~ N(0, P)
    xhat = np.zeros((n, nb))
    zi_f = [np.zeros((max(theta.shape[0], 1), nb)) for theta, _ in filters]
    carry = [np.zeros(nb) for _ in filters]
    for c0 in range(0, n_steps, _MC_CHUNK):
        c1 = min(c0 + _MC_CHUNK, n_steps)
        draws = rng.standard_normal((c1 - c0, n + 1, nb))
        y = np.empty((c1 - c0, nb))
        pred = np.empty((c1 - c0, nb))
        for s in range(c1 - c0):
            pred[s] = C @ xhat
            y[s] = C @ x + sq_r * draws[s, n]
            xhat = F @ xhat + np.outer(K, y[s])
            x = A @ x + draws[s, :n]
        for fi, (theta, cells) in enumerate(filters):
            th = theta if theta.shape[0] else np.zeros(1)
            b = np.concatenate(([0.0], th))
            den = np.zeros(th.shape[0] + 1)
            den[0] = 1.0  # a = [1, 0, ...]: forces the sequential direct-form path
            yhat, zi_f[fi] = lfilter(b, den, y, axis=0, zi=zi_f[fi])
            d = pred - yhat
            cs = np.cumsum(d * d, axis=0) + carry[fi][None, :]
            for ci, (_, ni) in enumerate(cells):
                tv = int(T[ni])
                if c0 <= tv < c1:
                    out[fi][:, ci] = cs[tv - c0] / tv
            carry[fi] = cs[-1].copy()
    return out


def _mc_one(
    sp: Spectrum,
    r: float,
    learner: str,
    k: IntArray,
    T: IntArray,
    seed: int,
    samples: int,
    observation: str,
    risk_out: FloatArray,
    stderr_out: FloatArray,
) -> None:
    """Fill ``risk_out`` and ``stderr_out`` (K, N) of one noise ratio from ``samples`` trajectories."""
    filt = kalman_filter(sp, r, observation)
    filters = _mc_filters(sp, r, learner, k, T, observation)
    if not filters:
        return
    per_traj = [np.empty((samples, len(cells))) for _, cells in filters]
    for bi in range(-(-samples // _MC_BATCH)):
        lo = bi * _MC_BATCH
        nb = min(_MC_BATCH, samples - lo)
        batch = _mc_batch(filt, filters, T, cell_rng(seed, _MC_TAG, sp.text, r, bi), nb)
        for fi, vals in enumerate(batch):
            per_traj[fi][lo : lo + nb] = vals
    for fi, (_, cells) in enumerate(filters):
        for ci, (ki, ni) in enumerate(cells):
            vals = per_traj[fi][:, ci]
            mean = math.fsum(vals.tolist()) / samples
            var = math.fsum(((vals - mean) ** 2).tolist()) / (samples - 1)
            risk_out[ki, ni] = mean
            stderr_out[ki, ni] = math.sqrt(var / samples)
