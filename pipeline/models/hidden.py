"""Experiment ``hidden``: FIR learners for a noisily observed scalar AR(1) (MATH.md §2).

Model (q = 1 throughout, every risk in units of the process-noise variance)::

    x_{t+1} = lam x_t + w_t,   y_t = x_t + v_t,   w ~ N(0, 1),   v ~ N(0, r),   x_0 ~ N(0, P)

with ``r = noise_ratio``. The Bayes predictor is the stationary Kalman predictor
``xhat_{t+1} = a xhat_t + K y_t`` (``xhat_0 = 0``); a learner is a length-``k`` FIR
filter ``yhat_t = sum_{j<=min(k,t)} theta_j y_{t-j}``; the risk is
``R_T = (1/T) sum_{t=1..T} E (xhat_t - yhat_t)^2`` (MATH §2.3).

Closed forms used by the production kernel
------------------------------------------
Write the innovations ``e_t = y_t - xhat_t`` (i.i.d. ``N(0, S)``, ``S = P + r``,
exact from ``t = 0`` because ``x_0 ~ N(0, P)``) and ``H_s = E xhat_s^2``. From
``Var x_s = lam^(2s) P + sum_{i<s} lam^(2i)`` and the Riccati equation,

    H_s = lam K P sum_{i=0..s-1} lam^(2i)        (lam K P = lam^2 P^2 / S >= 0).

For ``t >= k`` the deviation of any FIR learner splits into independent parts,
``xhat_t - yhat_t = gamma(theta) xhat_{t-k} + sum_{i=1..k} beta_i(theta) e_{t-i}``, with
``gamma = lam^k (1 - sum_j theta_j lam^-j)`` and ``beta = K u - B theta``
(``u_i = lam^(i-1)``, ``B`` unit lower-triangular Toeplitz with symbol
``(1 - a z)/(1 - lam z)``); for ``t < k`` only ``beta_1..beta_t`` appear. Summing,

    T R_T(theta) = C_N gamma^2 + S sum_{i=1..k} (T + 1 - i) beta_i^2,
    C_N = sum_{s=0..N} H_s = lam K P phi2(lam^2, N),   N = T - k,
    phi2(x, N) = sum_{j=0..N-1} (N - j) x^j.

* ``truncated_kalman`` (``theta_j = K a^(j-1)``): ``beta = 0``, ``gamma = a^k``, so
  ``R_T = a^(2k) C_N / T``.
* ``best_fir``: in the coordinates ``beta`` the constraint is
  ``gamma = a^k + v'beta`` with ``v_i = a^(k-i)`` (because ``B^-T l = v`` for
  ``l_j = lam^(k-j)``), so the k x k problem is a ridge problem with a diagonal
  weight and a rank-one term; its minimum is

      R_T = a^(2k) / ( T (1/C_N + mu/S) ),   mu = sum_{i=1..k} a^(2(k-i)) / (T + 1 - i),

  attained at ``beta_i = -a^k a^(k-i) / ((T + 1 - i)(S/C_N + mu))``,
  ``theta = G - B^-1 beta``.

Both are sums and products of positive terms: there is no cancellation anywhere,
``a = lam``, ``a^2 = lam``, ``lam = 1`` and ``|lam| > 1`` are not special (``a`` and
``lam`` always share a sign and ``|a| < |lam|``), and the cost per cell is O(1)
(truncated) or O(k) (best_fir), independent of T. Everything is evaluated in the
log domain (``log10_risk`` stays accurate where ``risk`` overflows to ``+inf`` or
underflows to 0); ``phi2`` is evaluated with ``expm1``-type stable forms.

Accuracy (verified in ``tests/models/test_hidden.py`` against the MATH §2.3
identity evaluated in mpmath, with best_fir from the brute-force k x k normal
equations, at 40 to 4300 digits): ``log10_risk`` relative error <= 2e-15;
``risk = exp(ln R)`` relative error about ``(|ln R| + 10) eps`` (max 4e-14 seen,
at R ~ 1e-87; <= 1e-14 for 1e-20 < R < 1e20); best_fir ``theta`` <= 3e-15 relative
to max |theta|; Kalman ``P, K, a`` <= 5e-14 for noise ratios 1e-6..1e8.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pipeline.models.streams import cell_rng

__all__ = [
    "LEARNERS",
    "best_fir_theta",
    "growth_exponent_theory",
    "kalman",
    "kalman_fir",
    "kstar_slope_theory",
    "kstar_theory",
    "montecarlo_block",
    "risk_block",
]

LEARNERS: tuple[str, ...] = ("truncated_kalman", "best_fir")

_LN10 = math.log(10.0)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ---------------------------------------------------------------------------
# Kalman filter
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Stable special functions
# ---------------------------------------------------------------------------

# 1/(p+2)! for the series of expm1(z) - z = z^2 sum_p z^p / (p+2)!
_E2_COEF = np.array([1.0 / math.factorial(p + 2) for p in range(17)])


def _e2(z: FloatArray) -> FloatArray:
    """``expm1(z) - z`` to a few ulps for every real ``z`` (series for |z| < 0.5)."""
    small = np.abs(z) < 0.5
    zs = np.where(small, z, 0.0)
    acc = np.full(z.shape, _E2_COEF[-1])
    for c in _E2_COEF[-2::-1]:
        acc = acc * zs + c
    series = zs * zs * acc
    with np.errstate(all="ignore"):
        direct = np.expm1(z) - z
    return np.where(small, series, direct)


def _log_phi2(s: FloatArray, n: FloatArray) -> FloatArray:
    """``log phi2(e^s, n)`` where ``phi2(x, n) = sum_{j=0..n-1} (n - j) x^j``.

    ``s`` may be ``-inf`` (x = 0); ``n >= 0`` integer-valued floats (``n = 0``
    gives ``-inf``). Three forms, each accurate to a few ulps in its region:

    * ``s <= -1``: ``(n - x (1 - x^n)/(1 - x)) / (1 - x)`` (nothing cancels by more
      than a factor 2.4);
    * otherwise ``[e2(ns) - n e2(s) + expm1(s) expm1(ns)] / expm1(s)^2`` with
      ``e2(z) = expm1(z) - z`` (the subtracted term is at most half the total),
      and ``n (n + 1) / 2`` for ``|s| < 1e-100``;
    * ``s > 0`` and ``n s > 50``: ``(n + 1) s - 2 log expm1(s)`` (the dropped terms
      are below ``51 e^-50`` relative).
    """
    s, n = (
        np.array(v, order="C")
        for v in np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(n, dtype=np.float64))
    )
    pos = n > 0
    with np.errstate(all="ignore"):
        ns = np.where(pos, n * s, 0.0)
        em = np.expm1(s)
        emn = np.expm1(ns)
        # region A (x <= 1/e)
        x = np.exp(s)
        q = emn / em  # (1 - x^n) / (1 - x)
        phi_a = (n - x * q) / (-em)
        # region B (x > 1/e, moderate)
        num = _e2(ns) - n * _e2(s) + em * emn
        phi_b = num / (em * em)
        phi_b = np.where(np.abs(s) < 1e-100, 0.5 * n * (n + 1.0), phi_b)
        # region C (x > 1, x^n huge)
        log_c = (n + 1.0) * s - 2.0 * np.log(em)
        out = np.where(
            s <= -1.0,
            np.log(phi_a),
            np.where((s > 0.0) & (ns > 50.0), log_c, np.log(phi_b)),
        )
    return np.where(pos, out, -np.inf)


# ---------------------------------------------------------------------------
# Exact risk of a block of cells
# ---------------------------------------------------------------------------


def _check_block(
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


def _log_parts(lam: FloatArray, r: FloatArray) -> dict[str, FloatArray]:
    """Per-(lam, r) logs: ``log|a|``, ``log(lam K P)``, ``log S``, and ``s = 2 log|lam|``."""
    P, K, a = kalman(lam[:, None], r[None, :])
    with np.errstate(divide="ignore"):
        log_abs_lam = np.log(np.abs(lam))
        log_p = np.log(P)
        log_s = np.log(P + r[None, :])
        # |a| = |lam| r / (P + r) = |lam| / (1 + P/r)
        log_abs_a = log_abs_lam[:, None] - np.log1p(P / r[None, :])
        log_lkp = 2.0 * log_abs_lam[:, None] + 2.0 * log_p - log_s
    return {
        "P": P,
        "K": K,
        "a": a,
        "log_abs_a": log_abs_a,
        "log_lkp": log_lkp,
        "log_s": log_s,
        "s": 2.0 * log_abs_lam,
    }


def _log_mu(a: FloatArray, k: int, Tf: FloatArray) -> FloatArray:
    """``log mu`` for one filter length ``k`` (requires ``T > k``); shape (G, N).

    ``mu = sum_{i=1..k} a^(2(k-i)) / (T + 1 - i)``, summed as
    ``sum_{p=0..k-1} (a^2)^p / (T + 1 - k + p)`` in increasing ``p`` (an order fixed by
    the cell alone). ``a`` has shape (G,), ``Tf`` shape (N,). The closed-loop pole
    always satisfies ``|a| < min(|lam|, 1/|lam|) <= 1`` (Riccati: ``P/r > lam^2 - 1``),
    so every term is at most the first and nothing overflows.
    """
    acc = np.zeros((a.shape[0], Tf.shape[0]))
    if k == 0:
        return np.full(acc.shape, -np.inf)
    b = a * a
    base = Tf + (1.0 - k)
    bp = np.ones_like(b)
    with np.errstate(under="ignore"):
        for p in range(k):
            acc += bp[:, None] / (base + p)[None, :]
            bp = bp * b
    return np.log(acc)


def risk_block(
    lam: npt.ArrayLike,
    noise_ratio: npt.ArrayLike,
    learner: str,
    k: npt.ArrayLike,
    T: npt.ArrayLike,
) -> dict[str, FloatArray]:
    """Exact risk ``R_T`` (MATH §2.3) of one learner on a block of cells.

    Parameters
    ----------
    lam : (L,) float
        AR coefficients (finite; ``|lam| > 1`` allowed).
    noise_ratio : (R,) float
        ``r / q``, finite, ``>= 0``.
    learner : ``"truncated_kalman"`` or ``"best_fir"``
    k : (K,) int
        FIR lengths, ``>= 0``.
    T : (N,) int
        Horizons, ``1 <= T <= 2**52``.

    Returns
    -------
    dict with ``"risk"`` and ``"log10_risk"``, each float64 of shape (L, R, K, N);
    ``risk`` in units of the process-noise variance q.

    Notes
    -----
    Closed forms of the module docstring; the cost per cell is O(1) for
    ``truncated_kalman`` and O(k) for ``best_fir``, independent of T. ``risk``
    is ``exp(ln R)``, so it overflows to ``+inf`` (with ``log10_risk`` finite and
    accurate) beyond ~1e308 and underflows to 0 below ~1e-308. ``log10_risk`` is
    ``-inf`` exactly where the risk is exactly 0: ``k >= T`` (both learners: a
    length-T filter reproduces the Kalman predictor on a horizon T), or the
    degenerate ``lam = 0`` / (``noise_ratio = 0`` with ``k >= 1``), where the
    Bayes predictor itself is a filter of length <= 1. Never NaN.

    Every cell is computed by elementwise operations on its own coordinates (and
    an O(k) sum over the model index whose order is fixed), so a cell's bits do
    not depend on the other cells of the block.
    """
    lam, r, k, T = _check_block(lam, noise_ratio, learner, k, T)
    L, R, KK, N = lam.shape[0], r.shape[0], k.shape[0], T.shape[0]
    shape = (L, R, KK, N)
    if min(shape) == 0:
        return {"risk": np.zeros(shape), "log10_risk": np.zeros(shape)}
    parts = _log_parts(lam, r)
    kf = k.astype(np.float64)
    Tf = T.astype(np.float64)
    log_t = np.log(Tf)
    n = Tf[None, :] - kf[:, None]  # (K, N), exact integers
    alive = n > 0
    log_phi = _log_phi2(parts["s"][:, None, None], np.where(alive, n, 0.0)[None, :, :])  # (L, K, N)
    with np.errstate(invalid="ignore"):
        # 2k log|a|; k = 0 gives 0 even for a = 0
        two_k_log_a = np.where(kf[None, None, :] == 0, 0.0, (2.0 * kf)[None, None, :] * parts["log_abs_a"][:, :, None])
    with np.errstate(all="ignore"):
        if learner == "truncated_kalman":
            head = two_k_log_a + parts["log_lkp"][:, :, None]  # (L, R, K)
            tail = log_phi - log_t[None, None, :]  # (L, K, N)
            log_r = head[:, :, :, None] + tail[:, None, :, :]
        else:
            log_c = parts["log_lkp"][:, :, None, None] + log_phi[:, None, :, :]  # (L, R, K, N)
            log_mu = np.empty(shape)
            a_flat = parts["a"].reshape(-1)
            for ki in range(KK):
                kv = int(k[ki])
                ok = kv < T
                lm = np.full((L * R, N), -np.inf)
                if np.any(ok):
                    lm[:, ok] = _log_mu(a_flat, kv, Tf[ok])
                log_mu[:, :, ki, :] = lm.reshape(L, R, N)
            lse = np.logaddexp(-log_c, log_mu - parts["log_s"][:, :, None, None])
            log_r = (two_k_log_a[:, :, :, None] - lse) - log_t[None, None, None, :]
        log_r = np.where(alive[None, None, :, :], log_r, -np.inf)
        risk = np.exp(log_r)
        log10 = log_r / _LN10
    return {"risk": risk, "log10_risk": log10}


def best_fir_theta(lam: float, noise_ratio: float, k: int, T: int) -> FloatArray:
    """The length-``k`` FIR minimising ``R_T`` at horizon ``T`` (MATH §2.2), shape ``(k,)``.

    Closed form ``theta = G - B^-1 beta`` with ``beta_i = -a^k a^(k-i) /
    ((T + 1 - i)(S/C_N + mu))`` (module docstring); for ``T <= k`` the minimiser is
    not unique and the Kalman truncation ``G`` (risk 0) is returned. O(k).
    """
    k = int(k)
    T = int(T)
    if k < 0 or T < 1:
        raise ValueError("need k >= 0 and T >= 1")
    lam_a = np.array([float(lam)])
    r_a = np.array([float(noise_ratio)])
    parts = _log_parts(lam_a, r_a)
    K = float(parts["K"][0, 0])
    a = float(parts["a"][0, 0])
    G = kalman_fir(float(lam), float(noise_ratio), k)
    if k == 0 or k >= T or a == 0.0:
        return G
    log_abs_a = float(parts["log_abs_a"][0, 0])
    log_phi = float(_log_phi2(np.array(parts["s"][0]), np.array(float(T - k))))
    log_c = float(parts["log_lkp"][0, 0]) + log_phi
    log_mu = float(_log_mu(np.array([a]), k, np.array([float(T)]))[0, 0])
    log_z = float(np.logaddexp(float(parts["log_s"][0, 0]) - log_c, log_mu))
    i = np.arange(1, k + 1, dtype=np.float64)
    sign = np.where((np.arange(1, k + 1) % 2 == 1) & (a < 0), -1.0, 1.0)  # sign(a)^(2k - i)
    beta = -sign * np.exp((2.0 * k - i) * log_abs_a - np.log(T + 1.0 - i) - log_z)
    # B^-1 beta: symbol (1 - lam z)/(1 - a z) = 1 - K z / (1 - a z)
    binv_beta = np.empty(k)
    s_acc = 0.0
    for j in range(k):
        binv_beta[j] = beta[j] - K * s_acc
        s_acc = a * s_acc + beta[j]
    return G - binv_beta


# ---------------------------------------------------------------------------
# Monte Carlo
# ---------------------------------------------------------------------------

_MC_BATCH = 128  # trajectories per random stream
_MC_CHUNK = 4096  # time steps per simulation chunk (fixed: partial sums carry across chunks)


def montecarlo_block(
    lam: npt.ArrayLike,
    noise_ratio: npt.ArrayLike,
    learner: str,
    k: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    seed: int,
    samples: int,
    chunk: int = _MC_CHUNK,
) -> dict[str, FloatArray]:
    """Monte Carlo estimate of ``R_T`` (MATH §3) for a block of cells.

    Shapes as :func:`risk_block`: ``lam`` (L,), ``noise_ratio`` (R,), ``k`` (K,),
    ``T`` (N,); returns ``risk``, ``risk_stderr``, ``log10_risk`` of shape
    (L, R, K, N), in units of q.

    For each (lam, r), ``samples`` trajectories of MATH §2.1 (``x_0 ~ N(0, P)``)
    are simulated in batches of 128; batch ``b`` draws from
    ``cell_rng(seed, lam, noise_ratio, b)`` time-major rows ``(z_t, v_t)`` of the
    batch, so the trajectory for horizon T is the prefix of any longer one and
    every learner, k and T of the block sees the same paths (common random
    numbers). The Kalman predictor and the FIR predictions are run with
    ``scipy.signal.lfilter`` (sequential recursions) in fixed time chunks of ``chunk``
    steps (4096; a parameter so that tests reach the multi-chunk path on short
    horizons); per trajectory ``(1/T) sum_{t=1..T} (xhat_t - yhat_t)^2`` is taken
    from a running sum, and ``risk`` / ``risk_stderr`` are its sample mean and
    ``std(ddof=1)/sqrt(samples)`` computed with ``math.fsum``. A cell's bits
    therefore depend only on (seed, lam, r, learner, k, T, samples).

    Cells with ``k >= T`` have risk exactly 0 (the learner equals the Bayes
    predictor there) and are not simulated. For ``|lam| > 1`` the simulated
    states grow like ``lam^T``; results are only meaningful while
    ``lam^T`` is far below 1e308 (and, for ``best_fir``, below ~1e8, because the
    deviation is a small difference of huge predictions).
    """
    lam, r, k, T = _check_block(lam, noise_ratio, learner, k, T)
    samples = int(samples)
    if samples < 2:
        raise ValueError("samples must be >= 2")
    shape = (lam.shape[0], r.shape[0], k.shape[0], T.shape[0])
    risk = np.zeros(shape)
    stderr = np.zeros(shape)
    t_max = int(T.max()) if T.size else 0
    for li, lv in enumerate(lam):
        for ri, rv in enumerate(r):
            _mc_one(
                float(lv),
                float(rv),
                learner,
                k,
                T,
                t_max,
                int(seed),
                samples,
                int(chunk),
                risk[li, ri],
                stderr[li, ri],
            )
    with np.errstate(divide="ignore"):
        log10 = np.log10(risk)
    return {"risk": risk, "risk_stderr": stderr, "log10_risk": log10}


Cells = list[tuple[int, int]]


def _mc_filters(lam: float, r: float, learner: str, k: IntArray, T: IntArray) -> list[tuple[FloatArray, Cells]]:
    """The FIR filters to simulate, each with its cells ``(ki, ni)`` (only cells with T > k)."""
    filters: list[tuple[FloatArray, Cells]] = []
    if learner == "truncated_kalman":
        for ki, kv in enumerate(k):
            cells = [(ki, ni) for ni, tv in enumerate(T) if tv > kv]
            if cells:
                filters.append((kalman_fir(lam, r, int(kv)), cells))
        return filters
    for ki, kv in enumerate(k):
        for ni, tv in enumerate(T):
            if tv > kv:
                filters.append((best_fir_theta(lam, r, int(kv), int(tv)), [(ki, ni)]))
    return filters


def _fir_predictions(theta: FloatArray, y: FloatArray, zi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``yhat_t = sum_j theta_j y_{t-j}`` along axis 0, with the filter state carried in ``zi``."""
    from scipy.signal import lfilter

    th = theta if theta.shape[0] else np.zeros(1)
    b = np.concatenate(([0.0], th))
    den = np.zeros(th.shape[0] + 1)
    den[0] = 1.0  # a = [1, 0, ...]: forces the sequential direct-form path
    yhat, zf = lfilter(b, den, y, axis=0, zi=zi)
    return np.asarray(yhat), np.asarray(zf)


def _mc_one(
    lam: float,
    r: float,
    learner: str,
    k: IntArray,
    T: IntArray,
    t_max: int,
    seed: int,
    samples: int,
    chunk: int,
    risk_out: FloatArray,
    stderr_out: FloatArray,
) -> None:
    """Fill ``risk_out``/``stderr_out`` (K, N) for one (lam, r)."""
    from scipy.signal import lfilter  # imported here: scipy.signal costs ~1 s at startup

    P, K, a = (float(v) for v in kalman(lam, r))
    filters = _mc_filters(lam, r, learner, k, T)
    if not filters:
        return
    n_steps = t_max + 1  # times 0..t_max
    per_traj = [np.empty((samples, len(cells))) for _, cells in filters]
    sq_p = math.sqrt(P)
    sq_r = math.sqrt(r)
    n_batches = -(-samples // _MC_BATCH)
    for bi in range(n_batches):
        lo = bi * _MC_BATCH
        nb = min(_MC_BATCH, samples - lo)
        rng = cell_rng(seed, lam, r, bi)
        zi_x = np.zeros((1, nb))
        zi_k = np.zeros((1, nb))
        zi_f = [np.zeros((max(theta.shape[0], 1), nb)) for theta, _ in filters]
        carry = [np.zeros(nb) for _ in filters]
        for c0 in range(0, n_steps, chunk):
            c1 = min(c0 + chunk, n_steps)
            draws = rng.standard_normal((c1 - c0, 2, nb))
            z = draws[:, 0, :]
            if c0 == 0:
                z = z.copy()
                z[0] *= sq_p  # x_0 ~ N(0, P)
            x, zi_x = lfilter([1.0], [1.0, -lam], z, axis=0, zi=zi_x)
            y = x + sq_r * draws[:, 1, :]
            xhat, zi_k = lfilter([0.0, K], [1.0, -a], y, axis=0, zi=zi_k)
            for fi, (theta, cells) in enumerate(filters):
                yhat, zi_f[fi] = _fir_predictions(theta, y, zi_f[fi])
                d = xhat - yhat
                cs = np.cumsum(d * d, axis=0) + carry[fi][None, :]
                for ci, (_, ni) in enumerate(cells):
                    tv = int(T[ni])
                    if c0 <= tv < c1:
                        per_traj[fi][lo : lo + nb, ci] = cs[tv - c0] / tv
                carry[fi] = cs[-1].copy()
    for fi, (_, cells) in enumerate(filters):
        for ci, (ki, ni) in enumerate(cells):
            risk_out[ki, ni], stderr_out[ki, ni] = _mean_and_stderr(per_traj[fi][:, ci])


def _mean_and_stderr(vals: FloatArray) -> tuple[float, float]:
    """Sample mean and ``std(ddof=1) / sqrt(n)``, summed with ``math.fsum`` (order-exact)."""
    n = vals.shape[0]
    mean = math.fsum(vals.tolist()) / n
    var = math.fsum(((vals - mean) ** 2).tolist()) / (n - 1)
    return mean, math.sqrt(var / n)


# ---------------------------------------------------------------------------
# Theory (MATH §2.4)
# ---------------------------------------------------------------------------


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
