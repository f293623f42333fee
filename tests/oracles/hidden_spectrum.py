"""Test oracles for pipeline.models.hidden_spectrum (MATH.md §5), independent of its derivation.

The production kernel splits the deviation at ``xhat_{t-k}`` in innovations coordinates and
minimises over ``beta`` by a Woodbury ``n x n`` form. These oracles use none of that:

* :func:`float_covariance_risk` — float64, O(T): propagates the covariance of the joint
  Gaussian state ``(x_t, xhat_t, y_{t-1}, .., y_{t-k})`` and sums ``E (C xhat_t - theta'y)^2``.
  Kalman gain from ``scipy.linalg.solve_discrete_are``.
* :func:`mp_kalman` — the filter Riccati equation in mpmath by Newton (Hewer) iterations,
  each a Stein equation solved through its Kronecker form.
* :func:`mp_quadratic_loop` / :func:`mp_quadratic_closed` — ``T R_T(theta)`` as an explicit
  quadratic ``theta' H theta - 2 b' theta + c0`` in the FIR coefficients themselves, from the
  literal deviation ``yhat*_t - yhat_t = sum_{j<=t} c_j y_{t-j}`` (``c_j = G_j - theta_j``):
  with ``D_u = sum_{j<=u} c_j (A')^(u-j) C'``,

      T R_T = sum_{u=1..T} D_u' (P + (T - u) I) D_u + r sum_{j=1..T} (T - j + 1) c_j^2

  (the MATH §2.3 identity for general ``A``, from ``x_0 ~ N(0, P)`` and white ``w``, ``v``).
  ``_loop`` sums it term by term (O(T)); ``_closed`` sums the tail ``u >= k`` by matrix
  doubling of ``sum_i (N - i) X^i M Y^i'`` for ``X, Y`` in ``{A, F}``, which needs
  ``D^G_u = (A')^u C' - (F')^u C'`` (checked against the loop in the tests).
  ``best_fir`` is then the brute-force ``k x k`` normal equations ``H theta = b`` in mpmath.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
from scipy.linalg import solve_discrete_are

from pipeline.models.spectra import parse_spectrum


def system(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``(A, C)``: the real Jordan matrix and the "sum" observation row, built here from the spectrum's blocks."""
    sp = parse_spectrum(text)
    C = np.zeros(sp.n)
    for b in sp.blocks:
        C[b.start] = 1.0
    return sp.jordan_matrix(), C


# ---------------------------------------------------------------------------
# float64 oracle
# ---------------------------------------------------------------------------


def float_kalman(A: np.ndarray, C: np.ndarray, r: float):
    n = A.shape[0]
    P = solve_discrete_are(A.T, C[:, None], np.eye(n), np.array([[r]]))
    S = float(C @ P @ C + r)
    K = A @ P @ C / S
    return P, K, S, A - np.outer(K, C)


def float_kalman_fir(A, C, r, k):
    _P, K, _S, F = float_kalman(A, C, r)
    out, v = [], K.copy()
    for _ in range(k):
        out.append(float(C @ v))
        v = F @ v
    return np.array(out)


def float_covariance_risk(A: np.ndarray, C: np.ndarray, r: float, theta, T: int) -> float:
    """``R_T`` of the FIR ``theta`` by covariance propagation of the joint state (float64, O(T))."""
    total, _, _ = _covariance_sums(A, C, r, theta, T)
    return total / T


def float_covariance_risk_rtol(A: np.ndarray, C: np.ndarray, r: float, theta, T: int) -> float:
    """The relative error ``float_covariance_risk`` can honour: its result sums ``h' Sigma_t h``
    over terms ``kappa`` times larger in absolute value (``kappa = sum |h|'|Sigma_t||h| / sum
    h' Sigma_t h``: the state's covariance grows like a power of t while the risk stays O(1)), and
    each term is a dot product of length ``d`` over entries right to their last bits, so the
    result is right to about ``d * eps * kappa`` (a first-order bound, not a guarantee; errors the
    recursion carries from step to step are assumed no larger than one step's rounding)."""
    total, magnitude, d = _covariance_sums(A, C, r, theta, T)
    return d * float(np.finfo(np.float64).eps) * magnitude / total


def _covariance_sums(A: np.ndarray, C: np.ndarray, r: float, theta, T: int) -> tuple[float, float, int]:
    """``(sum_t h' Sigma_t h, sum_t |h|' |Sigma_t| |h|, d)`` over t = 1..T, d the joint state's size."""
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    P, K, _S, F = float_kalman(A, C, r)
    n, k = A.shape[0], theta.shape[0]
    d = 2 * n + k
    Phi = np.zeros((d, d))
    Phi[:n, :n] = A
    Phi[n : 2 * n, :n] = np.outer(K, C)
    Phi[n : 2 * n, n : 2 * n] = F
    Gam = np.zeros((d, n + 1))
    Gam[:n, :n] = np.eye(n)
    Gam[n : 2 * n, n] = K
    if k:
        Phi[2 * n, :n] = C
        Gam[2 * n, n] = 1.0
        for j in range(1, k):
            Phi[2 * n + j, 2 * n + j - 1] = 1.0
    Q = np.diag(np.concatenate([np.ones(n), [r]]))
    GQG = Gam @ Q @ Gam.T
    h = np.zeros(d)
    h[n : 2 * n] = C
    h[2 * n :] = -theta
    Sig = np.zeros((d, d))
    Sig[:n, :n] = P
    total = magnitude = 0.0
    for _t in range(T):
        Sig = Phi @ Sig @ Phi.T + GQG
        total += h @ Sig @ h
        magnitude += np.abs(h) @ np.abs(Sig) @ np.abs(h)
    return total, magnitude, d


# ---------------------------------------------------------------------------
# mpmath oracles
# ---------------------------------------------------------------------------


def _mpm(X) -> mp.matrix:
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    return mp.matrix([[mp.mpf(float(v)) for v in row] for row in X])


def mp_kalman(A: np.ndarray, C: np.ndarray, r: float, iterations: int = 60):
    """``(P, K, S, F)`` in mpmath at the current precision (Newton-Hewer from the scipy solution)."""
    n = A.shape[0]
    Am, Cm = _mpm(A), _mpm(C[None, :])
    rm = mp.mpf(r)
    P = _mpm(float_kalman(A, C, r)[0])
    I = mp.eye(n)
    tol = mp.mpf(10) ** (-mp.mp.dps + 5)
    for _ in range(iterations):
        S = (Cm * P * Cm.T)[0] + rm
        K = Am * P * Cm.T / S
        F = Am - K * Cm
        Q = I + K * K.T * rm
        # Stein: P = F P F' + Q  <=>  (I - F kron F) vec P = vec Q
        M = mp.eye(n * n)
        for a in range(n):
            for b in range(n):
                for c in range(n):
                    for e in range(n):
                        M[a * n + b, c * n + e] -= F[a, c] * F[b, e]
        v = mp.lu_solve(M, mp.matrix([Q[a, b] for a in range(n) for b in range(n)]))
        Pn = mp.matrix(n, n)
        for a in range(n):
            for b in range(n):
                Pn[a, b] = (v[a * n + b] + v[b * n + a]) / 2
        diff = max(abs(Pn[a, b] - P[a, b]) for a in range(n) for b in range(n))
        P = Pn
        if diff <= tol * max(abs(P[a, a]) for a in range(n)):
            break
    S = (Cm * P * Cm.T)[0] + rm
    K = Am * P * Cm.T / S
    return P, K, S, Am - K * Cm


def _mat_pow_list(X, n_pow):
    out = [mp.eye(X.rows)]
    for _ in range(n_pow):
        out.append(X * out[-1])
    return out


def mp_quadratic_loop(A: np.ndarray, C: np.ndarray, r: float, k: int, T: int):
    """``(H, b, c0, G)`` with ``T R_T(theta) = theta'H theta - 2 b'theta + c0``: literal O(T) sum in mp."""
    n = A.shape[0]
    P, K, _S, F = mp_kalman(A, C, r)
    Am, Cm = _mpm(A), _mpm(C[None, :])
    AT, CT = Am.T, Cm.T
    rm = mp.mpf(r)
    H = mp.matrix(k, k)
    b = mp.matrix(k, 1)
    c0 = mp.mpf(0)
    DG = mp.matrix(n, 1)
    E = mp.matrix(n, k)
    fk = K  # F^(u-1) K
    G = []
    for u in range(1, T + 1):
        g = (Cm * fk)[0]
        fk = F * fk
        DG = AT * DG + CT * g
        E = AT * E
        if u <= k:
            G.append(g)
            for a in range(n):
                E[a, u - 1] = CT[a, 0]
        W = P + mp.eye(n) * (T - u)
        WE = W * E
        WD = W * DG
        H += E.T * WE
        b += E.T * WD
        c0 += (DG.T * WD)[0]
        c0 += rm * (T - u + 1) * g * g
    for j in range(k):
        H[j, j] += rm * (T - j)
        b[j] += rm * (T - j) * G[j]
    return H, b, c0, G


def mp_risk_at(A: np.ndarray, C: np.ndarray, r: float, theta, T: int) -> mp.mpf:
    """``R_T`` of the FIR ``theta`` (its float64 values taken exactly) in mp at the current
    precision, from the quadratic of :func:`mp_quadratic_loop`."""
    th = mp.matrix([mp.mpf(float(x)) for x in np.asarray(theta, dtype=np.float64).reshape(-1)])
    H, b, c0, _G = mp_quadratic_loop(A, C, r, len(th), T)
    return ((th.T * H * th)[0] - 2 * (b.T * th)[0] + c0) / T


def _sums(X, Y, M, L):
    """``(U, V) = (sum_{i<L} X^i M Y^i', sum_{i<L} (L-1-i) X^i M Y^i')`` by doubling (mp)."""
    n = X.rows
    U, V = mp.matrix(n, n), mp.matrix(n, n)
    Xp, Yp = mp.eye(n), mp.eye(n)
    cur = 0
    for bit in bin(L)[2:]:
        if cur:
            V = V + U * cur + Xp * V * Yp.T
            U = U + Xp * U * Yp.T
            Xp, Yp = Xp * Xp, Yp * Yp
            cur *= 2
        if bit == "1":
            V = V + U
            U = U + Xp * M * Yp.T
            Xp, Yp = X * Xp, Y * Yp
            cur += 1
    return U, V


def mp_quadratic_closed(A: np.ndarray, C: np.ndarray, r: float, k: int, T: int):
    """Same quadratic as :func:`mp_quadratic_loop`, with the tail ``u >= k`` in closed form (any T)."""
    if k >= T:
        raise ValueError("need T > k")
    n = A.shape[0]
    P, K, _S, F = mp_kalman(A, C, r)
    Am, Cm = _mpm(A), _mpm(C[None, :])
    AT, CT = Am.T, Cm.T
    rm = mp.mpf(r)
    H = mp.matrix(k, k)
    b = mp.matrix(k, 1)
    c0 = mp.mpf(0)
    fk = K
    G = []
    for _ in range(k):
        G.append((Cm * fk)[0])
        fk = F * fk
    # explicit u = 1 .. k-1
    DG = mp.matrix(n, 1)
    E = mp.matrix(n, k)
    for u in range(1, k):
        DG = AT * DG + CT * G[u - 1]
        E = AT * E
        for a in range(n):
            E[a, u - 1] = CT[a, 0]
        W = P + mp.eye(n) * (T - u)
        H += E.T * W * E
        b += E.T * W * DG
        c0 += (DG.T * W * DG)[0]
    # tail u = k + i, i = 0..N: D_u = (A')^i alpha - (F')^i phi, alpha = (A')^k C' - E_k theta
    E = AT * E
    for a in range(n):
        E[a, k - 1] = CT[a, 0]
    a0 = _mat_pow_list(AT, k)[-1] * CT
    phi = _mat_pow_list(F.T, k)[-1] * CT
    N = T - k
    L = N + 1
    I = mp.eye(n)

    def weighted(X, Y):
        U, _ = _sums(X, Y, P, L)
        _, V1 = _sums(X, Y, I, L)
        return U + V1

    S_AA = weighted(Am, Am)
    S_AF = weighted(Am, F)
    S_FF = weighted(F, F)
    H += E.T * S_AA * E
    b += E.T * (S_AA * a0 - S_AF * phi)
    c0 += (a0.T * S_AA * a0)[0] - 2 * (a0.T * S_AF * phi)[0] + (phi.T * S_FF * phi)[0]
    # r sum_j (T - j + 1) c_j^2: j <= k explicit, tail j = k+1+i: (N - i) (C F^(k+i) K)^2
    KK = K * K.T
    U, V = _sums(F, F, KK, N)
    c0 += rm * (phi.T * (U + V) * phi)[0]
    for j in range(k):
        H[j, j] += rm * (T - j)
        b[j] += rm * (T - j) * G[j]
        c0 += rm * (T - j) * G[j] ** 2
    return H, b, c0, G


def mp_risks(A, C, r, k, T, closed: bool | None = None):
    """``(truncated R_T, best_fir R_T, best theta)`` in mp from the brute-force normal equations."""
    if closed is None:
        closed = T > 3000
    H, b, c0, G = (mp_quadratic_closed if closed else mp_quadratic_loop)(A, C, r, k, T)
    Gm = mp.matrix(G)
    trunc = ((Gm.T * H * Gm)[0] - 2 * (b.T * Gm)[0] + c0) / T
    th = mp.lu_solve(H, b)
    best = (c0 - (b.T * th)[0]) / T
    return trunc, best, [th[i] for i in range(k)]


def oracle_dps(text: str, r: float, k: int, T: int) -> int:
    """Decimal digits covering the cancellation in the brute-force quadratic (generous)."""
    sp = parse_spectrum(text)
    A, C = system(text)
    _, _, _, F = float_kalman(A, C, r)
    rho_f = max(abs(np.linalg.eigvals(F)))
    nf = np.max(np.sum(np.abs(F), axis=1))
    unstable = [g for g in sp.groups if g.unstable]
    rho = max([g.modulus for g in sp.groups])
    mods = [g.modulus for g in unstable] or [1.0]
    digits = (
        40
        + 3 * sum(g.multiplicity for g in unstable) * math.log10(T + 1)
        + 2 * T * math.log10(max(rho, 1.0))
        + 2 * T * math.log10(max(mods) / min(mods))
        + 3 * k * math.log10(max(nf / rho_f, 1.0 / rho_f, 1.0))
    )
    return int(digits)
