"""mpmath oracles of the scalar experiment (MATH §2).

Independent of the closed forms in :mod:`pipeline.models.hidden.risk`.
"""

from __future__ import annotations

import math

import mpmath as mp

from pipeline.models.hidden import (
    kalman,
)


def mp_kalman(lam, r):
    lam, r = mp.mpf(lam), mp.mpf(r)
    b = r * (1 - lam**2) - 1
    P = (-b + mp.sqrt(b * b + 4 * r)) / 2
    K = lam * P / (P + r)
    return P, K, lam - K


def mp_identity(lam, r, theta, T):
    """Literal O(T) evaluation of the MATH §2.3 identity at the current mp precision."""
    lam, r = mp.mpf(lam), mp.mpf(r)
    P, K, a = mp_kalman(lam, r)
    theta = [mp.mpf(t) for t in theta]
    tot_d = mp.mpf(0)
    tot_c = mp.mpf(0)
    D = mp.mpf(0)
    g = K
    for j in range(1, T + 1):
        c = g - (theta[j - 1] if j <= len(theta) else 0)
        D = lam * D + c
        tot_d += (P + (T - j)) * D * D
        tot_c += (T - j + 1) * c * c
        g *= a
    return (tot_d + r * tot_c) / T


def _phi2(y, n):
    """sum_{i=0..n-1} (n - i) y^i in mp."""
    if n <= 0:
        return mp.mpf(0)
    if y == 1:
        return mp.mpf(n) * (n + 1) / 2
    return (n - (n + 1) * y + y ** (n + 1)) / (1 - y) ** 2


def _g1(x, n):
    """sum_{m=1..n} x^m."""
    if x == 1:
        return mp.mpf(n)
    return x * (1 - x**n) / (1 - x)


def _F(x, P, n):
    """sum_{m=1..n} (P + n - m) x^m."""
    return P * _g1(x, n) + x * _phi2(x, n - 1)


def mp_quadratic(lam, r, k, T):
    """T R_T(theta) = theta' A theta - 2 b' theta + c0, built from the MATH §2.3 identity.

    Terms u <= k summed explicitly; for u > k the rows are lam^(u-k) times row k
    and the sums are geometric (closed forms in mp). Requires T > k.
    """
    lam, r = mp.mpf(lam), mp.mpf(r)
    P, K, a = mp_kalman(lam, r)
    G = [K * a**j for j in range(k)]
    A = mp.matrix(k, k)
    bv = mp.matrix(k, 1)
    c0 = mp.mpf(0)
    d = mp.mpf(0)
    h = [mp.mpf(0)] * k
    for u in range(1, k + 1):
        d = lam * d + G[u - 1]
        h = [lam * x for x in h]
        h[u - 1] = mp.mpf(1)
        w = P + (T - u)
        for i in range(k):
            bv[i] += w * d * h[i]
            for j in range(k):
                A[i, j] += w * h[i] * h[j]
        c0 += w * d * d
    N = T - k
    s_hh = _F(lam**2, P, N)
    s_dh = lam**k * _F(lam**2, P, N) - a**k * _F(lam * a, P, N)
    s_dd = lam ** (2 * k) * _F(lam**2, P, N) - 2 * (lam * a) ** k * _F(lam * a, P, N) + a ** (2 * k) * _F(a * a, P, N)
    for i in range(k):
        bv[i] += s_dh * h[i]
        for j in range(k):
            A[i, j] += s_hh * h[i] * h[j]
        A[i, i] += r * (T - i)
        bv[i] += r * (T - i) * G[i]
        c0 += r * (T - i) * G[i] ** 2
    c0 += s_dd + r * K**2 * a ** (2 * k) * _phi2(a * a, N)
    return A, bv, c0, G


def _dps(lam, r, k, T):
    """Digits covering the cancellation: lam^(2T) (lam > 1), T^3 (lam = 1), a^(2k) (tiny risks)."""
    a = abs(float(kalman(lam, r)[2]))
    return 40 + int(2 * T * math.log10(max(abs(lam), 1.0))) + int(4 * math.log10(T)) + int(2 * k * -math.log10(a))


def mp_risks(lam, r, k, T):
    """(truncated risk, best_fir risk, best theta) in mp, from the brute-force normal equations."""
    with mp.workdps(_dps(lam, r, k, T)):
        A, bv, c0, G = mp_quadratic(lam, r, k, T)
        Gm = mp.matrix(G)
        trunc = ((Gm.T * A * Gm)[0] - 2 * (bv.T * Gm)[0] + c0) / T
        th = mp.lu_solve(A, bv)
        best = (c0 - (bv.T * th)[0]) / T
        return +trunc, +best, [+t for t in th]


def mp_truncated_closed(lam, r, k, T):
    """Truncated-Kalman R_T from the §2.3 identity with c_j = 0 (j <= k), K a^(j-1) else:
    D_{k+m} = a^k (lam^m - a^m), all sums geometric. mp handles huge exponents."""
    with mp.workdps(60):
        lam, r = mp.mpf(lam), mp.mpf(r)
        P, K, a = mp_kalman(lam, r)
        N = T - k
        tot = _F(lam**2, P, N) - 2 * _F(lam * a, P, N) + _F(a * a, P, N) + r * K**2 * _phi2(a * a, N)
        return a ** (2 * k) * tot / T
