"""Test oracle: the exact fixed-point observed kernel as it was before the fast kernel.

Kept verbatim (python big integers in numpy object arrays) so tests and benchmarks can
compare the new kernel with it side by side. Not used by the pipeline. Original notes:
Fully observed systems: perturbation families, learners and the exact risk.

Numerical method (see MATH.md section 1 and the module README in the report):

* Everything is computed in Jordan coordinates. With ``A = Q J Q'`` (``Q``
  orthogonal) the risk is invariant under ``M -> Q' M Q``, and
  ``Sigmabar_T(J)`` is block diagonal with one block per Jordan block.
* Every family ``F`` splits exactly into ``F_1`` (matrices supported on the
  unstable columns) and ``F_0`` (supported on the stable columns); both are
  built with exact zeros outside their support, so the rank ``d*`` of
  ``M -> M|V_u`` on ``F`` is ``dim F_1`` and ``bounded`` is a well-conditioned
  rank test on the ``F_1`` coefficients, independent of ``T``.
* ``r_T(d)``: with the learner basis ``B = E P`` and ``H = E h`` (``E`` the
  structured orthonormal basis, coefficients ``P``, ``h``), ``g = P^{-1} h`` and
  ``R`` the Cholesky factor of ``M = P' G_T P`` (``G_T`` the Gram matrix of
  ``E`` in the ``Sigmabar_T`` inner product), ``r_T(d) = sum_{i >= d} (R g)_i^2``
  for all ``d`` at once. ``Sigmabar_T`` (by PSD-only doubling), ``G_T``, ``M``
  and ``R`` are computed in exact fixed-point integer arithmetic with
  ``log2 max(Sigmabar) + 128 + 2 log2 T`` fractional bits, which resolves condition
  numbers like ``T^(2m)`` or ``rho^(2T)`` (blocks heavier than
  ``2^LOG2_CAP`` are rescaled, which is exact to relative ``2^-LOG2_CAP``); ``R`` is then stored row-scaled
  (a float mantissa row and a power-of-two exponent per row), so the per-draw
  work is float64 and ``log10_risk`` stays finite where ``risk`` overflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.models.simulation.streams import cell_rng
from pipeline.models.spectra import (
    FAMILIES,
    Spectrum,
    critical_d_theory,
    family_dimension,
    parse_spectrum,
    random_orthogonal,
)

GUARD_BITS = 128
COEF_BITS = 60  # fractional bits for the O(1) coefficient data (E, P)

# ---------------------------------------------------------------------------
# float64 Sigmabar (public; O(n^3 log T))


def sigmabar(A: np.ndarray, T: int) -> np.ndarray:
    """``Sigmabar_T = (1/T) sum_{s<T} (T-1-s) A^s A^s'`` by doubling (float64).

    Only sums of positive semidefinite terms are formed (no cancellation).
    """
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    T = int(T)
    if T < 1:
        raise ValueError("T must be >= 1")
    P, W, V, a = np.eye(n), np.zeros((n, n)), np.zeros((n, n)), 0
    for bit in bin(T)[2:]:
        if a:
            V = V + a * W + P @ V @ P.T
            W = W + P @ W @ P.T
            P = P @ P
            a *= 2
        if bit == "1":
            V = V + W
            W = W + P @ P.T
            P = P @ A
            a += 1
    return V / T


def sigmabar_loop(A: np.ndarray, T: int) -> np.ndarray:
    """O(T) oracle for :func:`sigmabar` (tests only)."""
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    S, acc, P = np.zeros((n, n)), np.zeros((n, n)), np.eye(n)
    for _t in range(T):
        acc = acc + S  # sum_t Sigma_t, Sigma_0 = 0
        S = S + P @ P.T
        P = P @ A
    return acc / T


# ---------------------------------------------------------------------------
# exact fixed-point helpers (python ints in numpy object arrays)


def _fx_scalar(v: float, F: int) -> int:
    v = float(v)
    if v == 0.0:
        return 0
    m, e = math.frexp(v)
    M = int(m * (1 << 53))
    s = F + e - 53
    if s >= 0:
        return M << s
    return (M + (1 << (-s - 1))) >> (-s)


_fx_vec = np.frompyfunc(_fx_scalar, 2, 1)


def to_fixed(x: np.ndarray, F: int) -> np.ndarray:
    """Round float array ``x`` to integers ``x * 2^F`` (object array)."""
    x = np.asarray(x, dtype=float)
    out = _fx_vec(x, F)
    return np.asarray(out, dtype=object).reshape(x.shape)


def _mm(A: np.ndarray, B: np.ndarray, F: int) -> np.ndarray:
    return np.matmul(A, B) >> F


def sigmabar_fixed(Jb: np.ndarray, T: int, F: int) -> np.ndarray:
    """``Sigmabar_T(Jb) * 2^F`` as exact-rounded integers (object array)."""
    s = Jb.shape[0]
    J = to_fixed(Jb, F)
    one = 1 << F
    P = np.zeros((s, s), dtype=object)
    for i in range(s):
        P[i, i] = one
    W = np.zeros((s, s), dtype=object)
    V = np.zeros((s, s), dtype=object)
    a = 0
    for bit in bin(int(T))[2:]:
        if a:
            PT = P.T
            V = V + a * W + _mm(_mm(P, V, F), PT, F)
            W = W + _mm(_mm(P, W, F), PT, F)
            P = _mm(P, P, F)
            a *= 2
        if bit == "1":
            V = V + W
            W = W + _mm(P, P.T, F)
            P = _mm(P, J, F)
            a += 1
    return V // int(T)


def _max_bits(X: np.ndarray) -> int:
    if X.size == 0:
        return 0
    return max(abs(int(v)).bit_length() for v in X.ravel())


def _isqrt_fixed(x: int, F: int) -> int:
    return math.isqrt(x << F)


# ---------------------------------------------------------------------------
# families


@dataclass(frozen=True)
class FamilyBasis:
    """Structured orthonormal basis of a family in Jordan coordinates.

    ``E[:d_star]`` span ``F_1`` (supported on unstable columns), ``E[d_star:]``
    span ``F_0`` (supported on stable columns).
    """

    E: np.ndarray  # (D, n, n)
    d_star: int

    @property
    def D(self) -> int:
        return self.E.shape[0]


def _elementary(n: int, rows, cols) -> list[np.ndarray]:
    out = []
    for r in rows:
        for c in cols:
            M = np.zeros((n, n))
            M[r, c] = 1.0
            out.append(M)
    return out


def _pair_commuting(n: int, idx_rows, idx_cols) -> list[np.ndarray]:
    """Basis of real matrices between two pair-structured index sets that commute
    with the complex structure: 2x2 blocks ``[[x,-y],[y,x]] / sqrt 2``."""
    out = []
    c = 1.0 / math.sqrt(2.0)
    for p in range(0, len(idx_rows), 2):
        for q in range(0, len(idx_cols), 2):
            r0, r1 = idx_rows[p], idx_rows[p + 1]
            c0, c1 = idx_cols[q], idx_cols[q + 1]
            M = np.zeros((n, n))
            M[r0, c0] = c
            M[r1, c1] = c
            out.append(M)
            M = np.zeros((n, n))
            M[r0, c1] = -c
            M[r1, c0] = c
            out.append(M)
    return out


def _ad_range(Jsub: np.ndarray, rank: int) -> np.ndarray:
    """Orthonormal basis (k, s, s) of the range of G -> G J - J G on s x s."""
    s = Jsub.shape[0]
    if rank == 0 or s == 0:
        return np.zeros((0, s, s))
    Ad = np.kron(np.eye(s), Jsub.T) - np.kron(Jsub, np.eye(s))
    U, sv, _ = np.linalg.svd(Ad)
    if rank < s * s:
        gap_ok = sv[rank - 1] > 1e6 * max(sv[rank], 1e-300) or sv[rank] < 1e-12 * sv[0]
        if not gap_ok:
            raise ArithmeticError(
                "similarity family: no clear rank gap in the commutator map "
                f"(singular values {sv[rank - 1]:.3g} vs {sv[rank]:.3g})"
            )
    return U[:, :rank].T.reshape(rank, s, s)


@lru_cache(maxsize=256)
def _family_basis_cached(text: str, family: str) -> FamilyBasis:
    sp = parse_spectrum(text)
    n = sp.n
    u, st = sp.unstable_indices, sp.stable_indices
    if family == "full":
        E1 = _elementary(n, range(n), u)
        E0 = _elementary(n, range(n), st)
    elif family == "block":
        E1, E0 = [], []
        for g in sp.groups:
            idx = list(g.indices)
            mats = _pair_commuting(n, idx, idx) if g.is_pair else _elementary(n, idx, idx)
            (E1 if g.unstable else E0).extend(mats)
    elif family == "similarity":
        J = sp.jordan_matrix()
        E1, E0 = [], []
        for cols, other, target in ((u, st, E1), (st, u, E0)):
            if len(cols) == 0:
                continue
            c = sum(g.centraliser_dim for g in sp.groups if (g.unstable == (cols is u)))
            k = len(cols) ** 2 - c
            Xs = _ad_range(J[np.ix_(cols, cols)], k)
            for X in Xs:
                M = np.zeros((n, n))
                M[np.ix_(cols, cols)] = X
                target.append(M)
            target.extend(_elementary(n, other, cols))
    else:
        raise ValueError(f"family {family!r}: allowed {', '.join(FAMILIES)}")
    mats = E1 + E0
    E = np.array(mats).reshape(len(mats), n, n) if mats else np.zeros((0, n, n))
    E.setflags(write=False)
    fb = FamilyBasis(E, len(E1))
    if family_dimension(sp, family) != fb.D or fb.d_star != critical_d_theory(sp, family):
        raise ArithmeticError(f"family {family!r} of {text!r}: structure mismatch")
    return fb


def family_basis(spectrum: Spectrum | str, family: str) -> FamilyBasis:
    """Structured orthonormal basis of ``family`` in Jordan coordinates."""
    text = spectrum if isinstance(spectrum, str) else spectrum.text
    return _family_basis_cached(text, family)


def basis_change(spectrum: Spectrum | str, basis: str, seed: int) -> np.ndarray:
    """The orthogonal ``Q`` with ``A = Q J Q'`` (identity for ``"jordan"``)."""
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    if basis == "jordan":
        return np.eye(sp.n)
    if basis == "random":
        return random_orthogonal(sp.n, cell_rng(seed, "observed.basis", sp.text))
    raise ValueError(f"basis {basis!r}: allowed 'jordan', 'random'")


def system(spectrum: Spectrum | str, basis: str, seed: int) -> np.ndarray:
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    J = sp.jordan_matrix()
    if basis == "jordan":
        return J
    Q = basis_change(sp, basis, seed)
    return Q @ J @ Q.T


def _to_basis(M: np.ndarray, Q: np.ndarray) -> np.ndarray:
    return np.einsum("ij,...jk,lk->...il", Q, M, Q) if Q.shape[0] else M


def family_space(A: np.ndarray, spectrum: Spectrum | str, family: str, Q: np.ndarray | None = None) -> np.ndarray:
    """Orthonormal basis ``(D, n, n)`` of the family of ``A = Q J Q'``.

    ``Q`` defaults to the identity (``A`` must then be the Jordan matrix).
    """
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    J = sp.jordan_matrix()
    Q = np.eye(sp.n) if Q is None else np.asarray(Q, dtype=float)
    if not np.allclose(Q @ J @ Q.T, A, rtol=0, atol=1e-10 * max(1.0, np.abs(A).max(initial=0))):
        raise ValueError("A is not Q J Q' for the given spectrum and basis change")
    return _to_basis(family_basis(sp, family).E, Q)


def learner_coefficients(text: str, family: str, seed: int) -> np.ndarray:
    """``P`` (D x D, Haar orthogonal): ``B_i = sum_j P[j, i] E_j``."""
    D = family_basis(text, family).D
    return random_orthogonal(D, cell_rng(seed, "observed.learner", text, family))


def perturbation_coefficients(text: str, family: str, seed: int, draws) -> np.ndarray:
    """``h`` (N x D): unit vectors with standard Gaussian direction; draw ``i`` depends
    only on ``(seed, spectrum text, family, i)``."""
    draws = np.arange(draws) if np.ndim(draws) == 0 else np.asarray(draws)
    D = family_basis(text, family).D
    out = np.zeros((len(draws), D))
    if D == 0:
        return out
    for k, i in enumerate(draws):
        z = cell_rng(seed, "observed.perturbation", text, family, int(i)).standard_normal(D)
        out[k] = z / np.linalg.norm(z)
    return out


def learner_basis(spectrum: Spectrum | str, family: str, seed: int, basis: str = "jordan") -> np.ndarray:
    """The learner's orthonormal basis ``B_1..B_D`` (D, n, n): a Haar-random
    orthonormal basis of the family (generic, so ``critical_d = d*``)."""
    text = spectrum if isinstance(spectrum, str) else spectrum.text
    fb = family_basis(text, family)
    P = learner_coefficients(text, family, seed)
    BJ = np.einsum("ji,jkl->ikl", P, fb.E) if fb.D else fb.E
    return _to_basis(BJ, basis_change(text, basis, seed))


def perturbations(spectrum: Spectrum | str, family: str, seed: int, draws, basis: str = "jordan") -> np.ndarray:
    """Adversary directions ``H`` (N, n, n), unit Frobenius norm (zero if D = 0)."""
    text = spectrum if isinstance(spectrum, str) else spectrum.text
    fb = family_basis(text, family)
    h = perturbation_coefficients(text, family, seed, draws)
    HJ = np.zeros((len(h), *fb.E.shape[1:]))
    for q in range(len(h)):  # per draw, so a draw's bits do not depend on how many are drawn
        HJ[q] = np.einsum("j,jkl->kl", h[q], fb.E) if fb.D else HJ[q]
    return _to_basis(HJ, basis_change(text, basis, seed))


# ---------------------------------------------------------------------------
# the exact risk


@dataclass
class Factor:
    """Row-scaled Cholesky factor: ``R[i, :] = mant[i, :] * 2^exp2[i]`` (upper)."""

    mant: np.ndarray  # (D, D) float64
    exp2: np.ndarray  # (D,) int64
    zero: bool = False  # Sigmabar == 0 (T = 1): every risk is 0
    shift: int = 0  # blocks above 2^LOG2_CAP were scaled by 2^-shift


LOG2_CAP = 4096  # blocks whose Sigmabar exceeds 2^LOG2_CAP are rescaled (see risk_factor)


def _mp_sigmabar(Jb: np.ndarray, T: int, prec: int):
    """Sigmabar of one block in mpmath floating point (unbounded exponent)."""
    import mpmath

    ctx = mpmath.MPContext()
    ctx.prec = prec
    s = Jb.shape[0]
    J = ctx.matrix(Jb.tolist())
    P, W, V, a = ctx.eye(s), ctx.zeros(s), ctx.zeros(s), 0
    for bit in bin(int(T))[2:]:
        if a:
            V = V + a * W + P * V * P.T
            W = W + P * W * P.T
            P = P * P
            a *= 2
        if bit == "1":
            V = V + W
            W = W + P * P.T
            P = P * J
            a += 1
    return ctx, V / T


@lru_cache(maxsize=256)
def _block_log2_scales(text: str, T: int) -> tuple[int, ...]:
    """log2 of the largest entry of each block's Sigmabar (>= 0)."""
    sp = parse_spectrum(text)
    out = []
    for b in sp.blocks:
        ctx, S = _mp_sigmabar(_block(sp, b), T, 64)
        big = max(abs(S[i, j]) for i in range(S.rows) for j in range(S.cols))
        out.append(max(0, int(ctx.floor(ctx.log(big, 2))) + 1) if big > 0 else 0)
    return tuple(out)


def _plan(text: str, T: int) -> tuple[int, int, tuple[int, ...]]:
    """Fractional bits F, rescaling shift s and per-block scales for horizon T."""
    scales = _block_log2_scales(text, int(T))
    lmax = max(min(l, LOG2_CAP) for l in scales)
    # errors in the O(1) Schur complements are ~2^(lmax - F): F = lmax + guard
    # resolves them (verified against +300 bits in the tests)
    F = lmax + GUARD_BITS + 2 * int(T).bit_length()
    shift = max(0, max(scales) - LOG2_CAP)
    return F, shift, scales


def _block(sp: Spectrum, b) -> np.ndarray:
    return sp.jordan_matrix()[b.start : b.start + b.dim, b.start : b.start + b.dim]


@lru_cache(maxsize=64)
def _sigmabar_blocks(text: str, T: int, F: int) -> tuple:
    """Per-block ``Sigmabar * 2^F`` as integers; blocks above the cap scaled by 2^-shift."""
    sp = parse_spectrum(text)
    _, shift, scales = _plan(text, T)
    out = []
    for b, lb in zip(sp.blocks, scales, strict=False):
        if shift == 0 or lb <= LOG2_CAP:
            out.append(sigmabar_fixed(_block(sp, b), T, F))
            continue
        # only the block's shape matters once it is this heavy (its weight is
        # >= 2^LOG2_CAP); its internal condition is ~T^(2m-2), resolved here
        prec = GUARD_BITS + 4 * b.m * int(T).bit_length() + 64
        ctx, S = _mp_sigmabar(_block(sp, b), T, prec)
        k = b.dim
        X = np.zeros((k, k), dtype=object)
        for i in range(k):
            for j in range(k):
                X[i, j] = int(ctx.nint(ctx.ldexp(S[i, j], F - shift)))
        out.append(X)
    return tuple(out)


def risk_factor(text: str, family: str, P: np.ndarray, T: int, extra_bits: int = 0) -> Factor:
    """Cholesky factor of ``P' G_T P`` in exact fixed point, returned row-scaled."""
    sp = parse_spectrum(text)
    fb = family_basis(text, family)
    D = fb.D
    if D == 0:
        return Factor(np.zeros((0, 0)), np.zeros(0, dtype=np.int64))
    if T == 1:
        return Factor(np.zeros((D, D)), np.zeros(D, dtype=np.int64), zero=True)
    F, shift, _ = _plan(text, int(T))
    F += extra_bits
    S_blocks = _sigmabar_blocks(text, int(T), F)
    E60 = to_fixed(fb.E, COEF_BITS)
    G = np.zeros((D, D), dtype=object)
    G[...] = 0
    for b, Sk in zip(sp.blocks, S_blocks, strict=False):
        c = b.indices
        Ek = E60[:, :, c]  # (D, n, s)
        # skip basis elements that vanish on these columns
        live = np.array([any(v != 0 for v in Ek[j].ravel()) for j in range(D)])
        if not live.any():
            continue
        li = np.nonzero(live)[0]
        Ekl = Ek[li]
        Y = np.matmul(Ekl, Sk)  # scale F + 60
        Gk = np.matmul(Y.reshape(len(li), -1), Ekl.reshape(len(li), -1).T) >> (2 * COEF_BITS)
        G[np.ix_(li, li)] += Gk
    P60 = to_fixed(P, COEF_BITS)
    M = np.matmul(np.matmul(P60.T, G), P60) >> (2 * COEF_BITS)
    M = (M + M.T) // 2  # the Cholesky below reads the upper triangle only
    # Cholesky, right-looking, exact integer arithmetic
    R = np.zeros((D, D), dtype=object)
    R[...] = 0
    S = M.copy()
    for k in range(D):
        piv = int(S[k, k])
        if piv <= 0:
            raise ArithmeticError(f"{text!r}/{family}: Gram matrix not positive definite at T={T}")
        rkk = _isqrt_fixed(piv, F)
        R[k, k] = rkk
        if k + 1 < D:
            row = (S[k, k + 1 :] << F) // rkk
            R[k, k + 1 :] = row
            for i in range(k + 1, D):  # upper triangle only
                S[i, i:] -= (row[i - k - 1] * row[i - k - 1 :]) >> F
    mant = np.zeros((D, D))
    exp2 = np.zeros(D, dtype=np.int64)
    for i in range(D):
        bits = max(abs(int(v)).bit_length() for v in R[i, i:])
        shift = bits - 60
        row = [int(v) >> shift if shift >= 0 else int(v) << -shift for v in R[i]]
        mant[i] = np.array([float(v) for v in row])
        exp2[i] = shift - F
    return Factor(mant, exp2, shift=_plan(text, int(T))[1])


def _rowdot(Mat: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """``out[k, i] = sum_j Mat[i, j] vecs[k, j]`` reduced along a contiguous last axis
    (bitwise independent of how many vectors are passed)."""
    return np.sum(Mat[None, :, :] * vecs[:, None, :], axis=-1)


def log2_risk(factor: Factor, Pinv: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``log2 r_T(d)`` for d = 0..D (N, D+1); ``-inf`` where the risk is exactly 0."""
    N, D = h.shape
    out = np.full((N, D + 1), -np.inf)
    if D == 0 or factor.zero:
        return out
    g = _rowdot(Pinv, h)  # coordinates of H in the learner basis
    v = _rowdot(factor.mant, g)  # (N, D), row i scaled by 2^exp2[i]
    with np.errstate(divide="ignore"):
        terms = 2.0 * factor.exp2[None, :] + np.log2(v * v)
    out[:, :D] = np.logaddexp2.accumulate(terms[:, ::-1], axis=1)[:, ::-1]
    if factor.shift:
        # cells whose risk is dominated by the rescaled blocks scale back exactly
        # (relative error ~2^-LOG2_CAP); the others are unaffected to that order
        out = np.where(out > LOG2_CAP / 2, out + factor.shift, out)
    return out


def best_coefficients(factor: Factor, Pinv: np.ndarray, h: np.ndarray, d: int) -> np.ndarray:
    """Residual coefficients ``c`` (N, D) in the learner basis for ``d`` parameters:
    ``Delta = sum_i c_i B_i`` with ``Delta = H - sum_{i<=d} phi_i B_i`` optimal."""
    g = _rowdot(Pinv, h)
    c = g.copy()
    if d == 0:
        return c
    if factor.zero:  # any phi is optimal when Sigmabar = 0: take phi = 0
        return c
    R11 = factor.mant[:d, :d]
    R12 = factor.mant[:d, d:]
    from scipy.linalg import solve_triangular

    corr = solve_triangular(R11, R12 @ g[:, d:].T, lower=False).T if d < g.shape[1] else 0 * g
    c[:, :d] = -corr
    return c


def bounded_table(P: np.ndarray, h: np.ndarray, d_star: int, tol: float = 1e-8) -> np.ndarray:
    """``bounded[d, draw]`` for d = 0..D: the rank criterion of MATH.md 1.4.

    ``P`` (D x D) learner coefficients, ``h`` (N x D) perturbation coefficients
    in the structured basis whose first ``d_star`` elements span ``F_1``.
    """
    N, D = h.shape
    out = np.ones((D + 1, N), dtype=bool)
    if d_star == 0:
        return out
    P1 = P[:d_star, :]
    h1 = h[:, :d_star]
    for d in range(D + 1):
        Pd = P1[:, :d]
        r0 = np.linalg.matrix_rank(Pd, tol=tol) if d else 0
        aug = np.concatenate([np.broadcast_to(Pd, (N, *Pd.shape)), h1[:, :, None]], axis=2)
        r1 = np.linalg.matrix_rank(aug, tol=tol)
        out[d] = r1 == r0
    return out


# ---------------------------------------------------------------------------
# a problem assembled from stored matrices


@dataclass
class Problem:
    """One (spectrum, family): coefficients recovered from stored matrices."""

    text: str
    family: str
    P: np.ndarray  # (D, D)
    Pinv: np.ndarray
    h: np.ndarray  # (N, D)
    d_star: int
    Q: np.ndarray

    @property
    def D(self) -> int:
        return self.P.shape[0]


def problem_from_matrices(text: str, family: str, B: np.ndarray, H: np.ndarray, Q: np.ndarray) -> Problem:
    """Project stored learner basis ``B`` (D, n, n) and perturbations ``H`` (N, n, n)
    onto the structured family basis (this snaps them exactly into the family)."""
    fb = family_basis(text, family)
    D = fb.D
    n = fb.E.shape[-1]
    Et = fb.E.reshape(D, n * n)
    BJ = np.einsum("ji,...jk,kl->...il", Q, B, Q).reshape(B.shape[0], n * n)
    P = (Et @ BJ.T) if D else np.zeros((0, 0))  # P[j, i] = <E_j, B_i>
    # one fixed-shape product per draw: a draw's bits never depend on how many draws
    # share the block (BLAS picks kernels, and so summation orders, by matrix size)
    h = np.zeros((H.shape[0], D))
    for q in range(H.shape[0]):
        h[q] = Et @ (Q.T @ H[q] @ Q).reshape(n * n) if D else h[q]
    Pinv = np.linalg.inv(P) if D else P
    return Problem(text, family, P, Pinv, h, fb.d_star, Q)


def problem_from_seed(text: str, family: str, seed: int, draws) -> Problem:
    fb = family_basis(text, family)
    P = learner_coefficients(text, family, seed)
    h = perturbation_coefficients(text, family, seed, draws)
    Pinv = P.T.copy() if fb.D else P
    return Problem(text, family, P, Pinv, h, fb.d_star, np.eye(parse_spectrum(text).n))


def exact_log2_risk(problem: Problem, T_values) -> np.ndarray:
    """``log2 r_T(d)``, shape (len(T), D+1, N)."""
    out = []
    for T in T_values:
        fac = risk_factor(problem.text, problem.family, problem.P, int(T))
        out.append(log2_risk(fac, problem.Pinv, problem.h).T)
    return np.array(out).reshape(len(T_values), problem.D + 1, problem.h.shape[0])


def bounded(problem: Problem) -> np.ndarray:
    """``bounded[d, draw]`` (D+1, N)."""
    return bounded_table(problem.P, problem.h, problem.d_star)


# ---------------------------------------------------------------------------
# Monte Carlo


def montecarlo_risk(
    A: np.ndarray,
    Deltas: np.ndarray,
    T: int,
    samples: int,
    rng: np.random.Generator,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``samples`` trajectories of ``(1/T) sum_{t<T} ||Delta x_t||^2``.

    ``x_0 = 0``, ``x_{t+1} = A x_t + w_t``, ``w ~ N(0, I)``. ``Deltas`` (K, n, n) are
    evaluated on the same trajectories. Returns (mean, stderr), each (K,).
    Noise is drawn in time chunks of fixed size, so the result depends only on
    ``rng``'s stream.
    """
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    K = Deltas.shape[0]
    x = np.zeros((samples, n))
    acc = np.zeros((K, samples))
    t = 0
    while t < T:
        steps = min(chunk, T - t)
        w = rng.standard_normal((steps, samples, n))
        for s in range(steps):
            y = np.einsum("kij,sj->ksi", Deltas, x)
            acc += np.einsum("ksi,ksi->ks", y, y)
            x = x @ A.T + w[s]
        t += steps
    per = acc / T
    mean = per.mean(axis=1)
    stderr = per.std(axis=1, ddof=1) / math.sqrt(samples) if samples > 1 else np.full(K, np.nan)
    return mean, stderr


def residual_matrices(problem: Problem, B: np.ndarray, T: int, draw_index: int) -> np.ndarray:
    """``Delta(d)`` for d = 0..D (D+1, n, n) with the exact best-in-class ``phi``."""
    D = problem.D
    n = B.shape[-1] if D else problem.Q.shape[0]
    if D == 0:
        return np.zeros((1, n, n))
    fac = risk_factor(problem.text, problem.family, problem.P, int(T))
    h = problem.h[draw_index : draw_index + 1]
    out = np.zeros((D + 1, n, n))
    for d in range(D + 1):
        c = best_coefficients(fac, problem.Pinv, h, d)[0]
        out[d] = np.einsum("i,ikl->kl", c, B)
    return out
