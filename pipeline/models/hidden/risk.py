"""Exact risk of FIR learners on the scalar model, in closed form (MATH §2.3).

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

Accuracy (verified in ``tests/models/hidden/test_risk.py`` against the MATH §2.3
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

from pipeline.models.hidden.kalman import kalman, kalman_fir
from pipeline.models.hidden.system import check_block

__all__ = ["best_fir_theta", "risk_block"]

_LN10 = math.log(10.0)
FloatArray = npt.NDArray[np.float64]


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
    lam, r, k, T = check_block(lam, noise_ratio, learner, k, T)
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
