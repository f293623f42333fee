"""Test oracle for observed systems in mpmath: ``Sigmabar_T`` by doubling and ``r_T(d)`` for
every ``d`` from the Gram matrix and the normal equations, at ``dps`` decimal digits.

Slow and independent of the kernel's method (no Jordan coordinates, no fixed point)."""

import mpmath as mp
import numpy as np

from pipeline.models.precision.doubling import sigmabar_loop


def mp_sigmabar(A, T):
    """Sigmabar_T = (1/T) sum_{s=0..T-2} (T-1-s) A^s A^s' (MATH §1.2) of an mpmath matrix ``A``, by doubling."""
    n = A.rows
    P, W, V, a = mp.eye(n), mp.zeros(n), mp.zeros(n), 0
    for bit in bin(T)[2:]:
        if a:
            V = V + a * W + P * V * P.T
            W = W + P * W * P.T
            P = P * P
            a *= 2
        if bit == "1":
            V = V + W
            W = W + P * P.T
            P = P * A
            a += 1
    return V / T


def snap_to_similarity(A, mats, dps):
    """Project matrices onto range(G -> GA - AG) computed in mpmath from A."""
    n = A.rows
    Ad = mp.matrix(n * n, n * n)
    for i in range(n):
        for j in range(n):
            for k in range(n):
                Ad[i * n + j, i * n + k] += A[k, j]
                Ad[i * n + j, k * n + j] -= A[i, k]
    U, S, _ = mp.svd_r(Ad)
    r = sum(1 for s in S if s > mp.mpf(10) ** (-dps // 3))
    Ur = U[:, :r]
    out = []
    for M in mats:
        v = mp.matrix([M[i, j] for i in range(n) for j in range(n)])
        w = Ur * (Ur.T * v)
        out.append(mp.matrix([[w[i * n + j] for j in range(n)] for i in range(n)]))
    return out


def mp_oracle(A, B, H, T, dps, snap=False):
    """r_T(d), d = 0..D, for every H: mpmath Gram / normal equations at high dps."""
    with mp.workdps(dps):
        Am = mp.matrix(A.tolist())
        S = mp_sigmabar(Am, T)
        Bm = [mp.matrix(b.tolist()) for b in B]
        Hm = [mp.matrix(h.tolist()) for h in H]
        if snap:
            Bm = snap_to_similarity(Am, Bm, dps)
            Hm = snap_to_similarity(Am, Hm, dps)
        n = Am.rows

        def tr(X, Y):
            return mp.fsum(X[i, j] * Y[i, j] for i in range(n) for j in range(n))

        BS = [b * S for b in Bm]
        D = len(Bm)
        Z = mp.matrix(D, D)
        for i in range(D):
            for j in range(D):
                Z[i, j] = tr(BS[i], Bm[j])
        out = []
        for Hk in Hm:
            c = tr(Hk * S, Hk)
            z = mp.matrix([tr(BS[i], Hk) for i in range(D)])
            row = [c]
            for d in range(1, D + 1):
                row.append(c - (z[:d, 0].T * mp.lu_solve(Z[:d, :d], z[:d, 0]))[0])
            out.append(row)
        return out


def brute_force(A, B, H, T):
    """float64 O(T) oracle, fine for small T."""
    S = sigmabar_loop(A, T)
    w, V = np.linalg.eigh(S)
    L = V * np.sqrt(np.maximum(w, 0))
    X = np.array([(Bi @ L).ravel() for Bi in B]).T.reshape(-1, len(B))
    b = (H @ L).ravel()
    out = [b @ b]
    for d in range(1, len(B) + 1):
        phi = np.linalg.lstsq(X[:, :d], b, rcond=None)[0]
        r = b - X[:, :d] @ phi
        out.append(r @ r)
    return np.array(out)
