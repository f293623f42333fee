"""Fully observed systems: perturbation families, learners and the exact risk.

Numerical method (MATH.md section 1; the fixed-point method it replaced is kept as the
test oracle ``tests/oracles/observed_fixed_point.py``):

* Everything is computed in Jordan coordinates (the risk is invariant under
  ``M -> Q' M Q`` for ``A = Q J Q'``), where ``Sigmabar_T`` is block diagonal with one
  block per Jordan block. Learners and perturbations are coefficient vectors in a
  *working basis*: the adversary family's structured orthonormal basis when the learner
  lies in that family (this snaps both exactly into it), else the elementary basis of all
  ``n x n`` matrices. Either way its first ``d_star`` elements are supported on the
  unstable columns and the rest on the stable ones (MATH.md 1.4's split).
* Square root of the weight: for every Jordan block, the upper Cholesky factor ``R_b``
  of ``Sigmabar_T`` (``Sigmabar = R_b' R_b``) is computed once per ``T`` in ball
  arithmetic (python-flint; precision raised until every entry is certain to 60 bits
  relative to its row) and stored row-scaled: a float64 mantissa row and a power-of-two
  exponent. Its rows are graded (the heavy coordinates of a marginal or explosive block
  come first), so ``trace(X Sigmabar X') = |vec(X R')|^2`` is a sum of squares of rows
  whose scales span ``T^(m-1/2)`` or ``rho^T``; no float64 ever holds such a scale.
* Exact structure first (cost independent of ``T``): the learner's restrictions to the
  unstable columns are split, in the learner's own order, into *pivots* (a new unstable
  direction; residual > ``PIVOT_TOL`` after projecting out the earlier ones) and the
  others, which are replaced by the prefix-preserving combination whose unstable part is
  **exactly zero** (a unit upper triangular change ``B' = B T``). This is where the
  bounded cells (``d >= d*``) get their exactness: the huge weights never meet a
  roundoff that should have been zero.
* Then one Householder QR of the weighted learner matrix in the learner's order, with
  row pivoting on the absolute magnitude and every row carrying its own power-of-two
  exponent (renormalised as it shrinks or grows): row-wise backward stable, so light
  (stable) rows keep their relative accuracy next to rows ``2^1000`` heavier.
  ``r_T(d) = sum_{i>d} (R' g')_i^2`` for every ``d`` at once when ``H = B g`` lies in
  the learner's span; otherwise ``H`` is split the same way (its unstable part is
  reproduced exactly by the pivots when it lies in their span) and the remainder is
  pushed through the stored reflections. Per-draw work is float64 in fixed shapes, so
  a cell's bits never depend on which draws, ``d`` or ``T`` share the call; results are
  log2 values, finite where ``risk`` overflows float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.models.spectra import (
    FAMILIES,
    Spectrum,
    critical_d_theory,
    family_dimension,
    parse_spectrum,
    random_orthogonal,
)
from pipeline.models.streams import cell_rng

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

PIVOT_TOL = 1e-8  # a learner's unstable restriction adds a direction iff its residual exceeds this
WEIGHT_BITS = 60  # every weight entry is certain to this many bits relative to its row
_RENORM = 2.0**64  # rows are renormalised when their mantissas leave [2^-64, 2^64]

# ---------------------------------------------------------------------------
# float64 Sigmabar (public; O(n^3 log T))


def sigmabar(A: FloatArray, T: int) -> FloatArray:
    """``Sigmabar_T = (1/T) sum_{s<T} (T-1-s) A^s A^s'`` by doubling (float64), (n, n).

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
    out: FloatArray = V / T
    return out


def sigmabar_loop(A: FloatArray, T: int) -> FloatArray:
    """O(T) oracle for :func:`sigmabar` (tests only), (n, n)."""
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    S, acc, P = np.zeros((n, n)), np.zeros((n, n)), np.eye(n)
    for _t in range(T):
        acc = acc + S  # sum_t Sigma_t, Sigma_0 = 0
        S = S + P @ P.T
        P = P @ A
    out: FloatArray = acc / T
    return out


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
        return int(self.E.shape[0])


def _elementary(n: int, rows: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray) -> list[np.ndarray]:
    out = []
    for r in rows:
        for c in cols:
            M = np.zeros((n, n))
            M[r, c] = 1.0
            out.append(M)
    return out


def _pair_commuting(
    n: int, idx_rows: Sequence[int] | np.ndarray, idx_cols: Sequence[int] | np.ndarray
) -> list[np.ndarray]:
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
    """The system matrix ``A = Q J Q'`` (n, n) of a spectrum in the given basis."""
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    J = sp.jordan_matrix()
    if basis == "jordan":
        return J
    Q = basis_change(sp, basis, seed)
    A: np.ndarray = Q @ J @ Q.T
    return A


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


def perturbation_coefficients(text: str, family: str, seed: int, draws: int | np.ndarray) -> np.ndarray:
    """``h`` (N x D): unit vectors with standard Gaussian direction; draw ``i`` depends
    only on ``(seed, spectrum text, family, i)``."""
    draws = np.arange(int(draws)) if isinstance(draws, (int, np.integer)) or np.ndim(draws) == 0 else np.asarray(draws)
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


def perturbations(
    spectrum: Spectrum | str, family: str, seed: int, draws: int | np.ndarray, basis: str = "jordan"
) -> np.ndarray:
    """Adversary directions ``H`` (N, n, n), unit Frobenius norm (zero if D = 0)."""
    text = spectrum if isinstance(spectrum, str) else spectrum.text
    fb = family_basis(text, family)
    h = perturbation_coefficients(text, family, seed, draws)
    HJ = np.zeros((len(h), *fb.E.shape[1:]))
    for q in range(len(h)):  # per draw, so a draw's bits do not depend on how many are drawn
        HJ[q] = np.einsum("j,jkl->kl", h[q], fb.E) if fb.D else HJ[q]
    return _to_basis(HJ, basis_change(text, basis, seed))


# ---------------------------------------------------------------------------
# the weight: row-scaled square roots of Sigmabar, one per Jordan block


def _arb_sigmabar(Jb: FloatArray, T: int) -> Any:
    """Sigmabar of one block as a flint ``arb_mat`` at the current ``flint.ctx.prec``."""
    from flint import arb_mat

    s = Jb.shape[0]
    J = arb_mat([[float(x) for x in row] for row in Jb])
    eye = arb_mat([[1.0 if i == j else 0.0 for j in range(s)] for i in range(s)])
    P, W, V, a = eye, arb_mat(s, s), arb_mat(s, s), 0
    for bit in bin(int(T))[2:]:
        if a:
            PT = P.transpose()
            V = V + W * a + P * V * PT
            W = W + P * W * PT
            P = P * P
            a *= 2
        if bit == "1":
            V = V + W
            W = W + P * P.transpose()
            P = P * J
            a += 1
    return V / int(T)


def _man_exp(x: Any) -> tuple[int, int]:
    m, e = x.mid().man_exp()
    return int(m), int(e)


def _row_scaled(rows: list[list[Any]]) -> tuple[FloatArray, IntArray, bool]:
    """Upper triangular arb rows -> (mantissas (s, s) with row max in [0.5, 1), row
    exponents (s,), whether every entry is certain to WEIGHT_BITS relative to its row)."""
    s = len(rows)
    mant = np.zeros((s, s))
    exps = np.zeros(s, dtype=np.int64)
    ok = True
    for i, row in enumerate(rows):
        me = [_man_exp(x) for x in row]
        top = max((e + m.bit_length() for m, e in me if m), default=None)
        if top is None:
            raise ArithmeticError("Sigmabar block is singular (T >= 2 makes it positive definite)")
        exps[i] = top
        for j, (m, e) in enumerate(me):
            if m:
                shift = max(0, m.bit_length() - 62)
                mant[i, j] = math.ldexp(float(m >> shift), e + shift - top)
        for x in row:
            rad_m, rad_e = _man_exp(x.rad())
            if rad_m and rad_e + rad_m.bit_length() > top - WEIGHT_BITS:
                ok = False
    return mant, exps, ok


@lru_cache(maxsize=1024)
def _block_weight(text: str, index: int, T: int) -> tuple[FloatArray, IntArray]:
    """Row-scaled upper Cholesky factor of block ``index``'s Sigmabar_T: ``R[i, :] =
    mant[i, :] 2^exps[i]`` with ``Sigmabar = R' R``."""
    from flint import arb, ctx

    sp = parse_spectrum(text)
    b = sp.blocks[index]
    Jb = sp.jordan_matrix()[b.start : b.start + b.dim, b.start : b.start + b.dim]
    s = b.dim
    prec = 96 + WEIGHT_BITS + 3 * b.m * int(T).bit_length()
    old = ctx.prec
    try:
        for _attempt in range(6):
            ctx.prec = prec
            S = _arb_sigmabar(Jb, T)
            R: list[list[Any]] = [[arb(0) for _ in range(s)] for _ in range(s)]
            for i in range(s):
                d = S[i, i] - sum((R[k][i] * R[k][i] for k in range(i)), arb(0))
                if not d > 0:
                    break
                R[i][i] = d.sqrt()
                for j in range(i + 1, s):
                    R[i][j] = (S[i, j] - sum((R[k][i] * R[k][j] for k in range(i)), arb(0))) / R[i][i]
            else:
                mant, exps, ok = _row_scaled(R)
                if ok:
                    mant.setflags(write=False)
                    exps.setflags(write=False)
                    return mant, exps
            prec *= 2
    finally:
        ctx.prec = old
    raise ArithmeticError(f"{text!r}: Sigmabar_{T} of block {index} not resolved at {prec} bits")


@dataclass(frozen=True)
class Weight:
    """``vec(X R')`` for Jordan-coordinate matrices ``X``: rows ``(block, row r, k)``."""

    blocks: tuple[tuple[int, int, FloatArray], ...]  # (start, dim, mant (dim, dim))
    exps: IntArray  # (n*n,) row exponents

    def apply(self, X: FloatArray) -> FloatArray:
        """Mantissas ``(..., n*n)`` of the weighted rows of ``X`` (``(..., n, n)``)."""
        parts = [
            np.einsum("...rl,kl->...rk", X[..., :, start : start + dim], mant).reshape(
                (*X.shape[:-2], X.shape[-2] * dim)
            )
            for start, dim, mant in self.blocks
        ]
        out: FloatArray = np.concatenate(parts, axis=-1)
        return out


def _weight(sp: Spectrum, T: int) -> Weight:
    n = sp.n
    blocks = []
    exps = []
    for i, b in enumerate(sp.blocks):
        mant, ex = _block_weight(sp.text, i, int(T))
        blocks.append((b.start, b.dim, mant))
        exps.append(np.tile(ex, n))
    return Weight(tuple(blocks), np.concatenate(exps).astype(np.int64))


# ---------------------------------------------------------------------------
# exact structure: pivots of the learner's unstable restriction


@dataclass(frozen=True)
class PivotSplit:
    """Learner directions split by their restriction to the unstable columns.

    ``pivot[j]``: direction ``j`` adds a new unstable direction. ``X[k, j]`` (pivot
    ``k`` before ``j``, ``j`` not a pivot): ``C[:, j] = sum_k X[k, j] C[:, k]``, so
    ``B'_j = B_j - sum_k X[k, j] B_k`` has an exactly zero unstable part. ``Qc`` (Ku, r)
    is an orthonormal basis of the pivots' span in pivot order, ``Rc`` (r, r) with
    ``C[:, pivots] = Qc Rc``.
    """

    pivot: NDArray[np.bool_]  # (D,)
    X: FloatArray  # (D, D)
    Qc: FloatArray  # (Ku, r)
    Rc: FloatArray  # (r, r)

    @property
    def order(self) -> IntArray:
        out: IntArray = np.flatnonzero(self.pivot).astype(np.int64)
        return out


def _dot(a: FloatArray, b: FloatArray) -> float:
    return float(np.einsum("i,i->", a, b))


_SPLITS: dict[tuple[bytes, tuple[int, ...], float], PivotSplit] = {}


def pivot_split(C: FloatArray, tol: float = PIVOT_TOL) -> PivotSplit:
    """Cached :func:`pivot_split_uncached` (the split does not depend on ``T``)."""
    C = np.ascontiguousarray(C, dtype=float)
    key = (C.tobytes(), C.shape, float(tol))
    hit = _SPLITS.get(key)
    if hit is None:
        if len(_SPLITS) > 64:
            _SPLITS.clear()
        hit = _SPLITS[key] = pivot_split_uncached(C, tol)
    return hit


def pivot_split_uncached(C: FloatArray, tol: float = PIVOT_TOL) -> PivotSplit:
    """Split the columns of ``C`` (Ku, D) in order (Gram-Schmidt, twice) into pivots and
    combinations of earlier pivots (see :class:`PivotSplit`)."""
    Ku, D = C.shape
    pivot = np.zeros(D, dtype=bool)
    X = np.zeros((D, D))
    Q = np.zeros((Ku, min(Ku, D)))
    Rc = np.zeros((min(Ku, D), min(Ku, D)))
    piv_idx: list[int] = []
    r = 0
    for j in range(D):
        v = C[:, j].copy()
        coef = np.zeros(r)
        for _pass in range(2):
            if r == 0:
                break
            c = np.einsum("kr,k->r", Q[:, :r], v)
            v = v - np.einsum("kr,r->k", Q[:, :r], c)
            coef += c
        nv = math.sqrt(_dot(v, v))
        if nv > tol and r < Ku:
            Q[:, r] = v / nv
            Rc[:r, r] = coef
            Rc[r, r] = nv
            pivot[j] = True
            piv_idx.append(j)
            r += 1
        elif r:
            from scipy.linalg import solve_triangular

            x = solve_triangular(Rc[:r, :r], coef, lower=False)
            X[piv_idx, j] = x
    return PivotSplit(pivot, X, Q[:, :r].copy(), Rc[:r, :r].copy())


# ---------------------------------------------------------------------------
# Householder QR with per-row exponents


@dataclass(frozen=True)
class Reflection:
    """One Householder step: rows ``rows`` (with exponents ``exps`` then), scaled
    vector ``sv`` (units ``2^emax``), denominator ``den``, local vector ``vloc``."""

    rows: IntArray
    exps: IntArray
    emax: int
    sv: FloatArray
    den: float
    vloc: FloatArray
    pivot_row: int


def _renormalise(Y: FloatArray, e: IntArray, rows: IntArray, start: int) -> None:
    if rows.size == 0 or start >= Y.shape[1]:
        return
    blk = Y[rows, start:]
    mx = np.max(np.abs(blk), axis=1)
    bad = (mx > _RENORM) | ((mx < 1.0 / _RENORM) & (mx > 0))
    if not bad.any():
        return
    sel = rows[bad]
    _, ex = np.frexp(mx[bad])
    Y[sel, start:] = np.ldexp(Y[sel, start:], -ex[:, None])
    e[sel] += ex.astype(np.int64)


def householder(Y0: FloatArray, e0: IntArray) -> tuple[FloatArray, IntArray, IntArray, list[Reflection]]:
    """QR of ``Y = diag(2^e0) Y0`` (m, D) in column order with row pivoting.

    Returns ``mant`` (D, D) and ``exp2`` (D,) with ``R[i, :] = mant[i, :] 2^exp2[i]``
    (upper, ``Y' Y = R' R``), the pivot row of every step (D,), and the reflections.
    """
    Y = np.array(Y0, dtype=float)
    e = np.array(e0, dtype=np.int64)
    m, D = Y.shape
    active = np.ones(m, dtype=bool)
    mant = np.zeros((D, D))
    exp2 = np.zeros(D, dtype=np.int64)
    prow = np.zeros(D, dtype=np.int64)
    refl: list[Reflection] = []
    for j in range(D):
        col = Y[:, j]
        rows = np.flatnonzero(active & (col != 0.0)).astype(np.int64)
        if rows.size == 0:
            raise ArithmeticError(f"learner direction {j} is dependent on the earlier ones in the Sigmabar metric")
        cI = col[rows]
        _, ex = np.frexp(cI)
        emax = int(np.max(ex.astype(np.int64) + e[rows]))
        s = np.ldexp(cI, (e[rows] - emax).astype(np.int64))
        ip = int(np.argmax(np.abs(s)))
        p = int(rows[ip])
        sig = math.copysign(math.sqrt(_dot(s, s)), float(s[ip]))
        sv = s.copy()
        sv[ip] += sig
        den = sig * float(sv[ip])
        vloc = cI.copy()
        vloc[ip] = math.ldexp(float(sv[ip]), emax - int(e[p]))
        if j + 1 < D:
            sub = Y[rows, j + 1 :]
            w = sv * np.ldexp(1.0, (e[rows] - emax).astype(np.int64))
            if np.all(np.isfinite(w)):
                gam = np.einsum("i,ij->j", w, sub) / den
            else:  # rows far heavier than this column's entries: scale the block instead
                t = sub * np.ldexp(1.0, (e[rows] - emax).astype(np.int64))[:, None]
                gam = np.einsum("i,ij->j", sv, t) / den
            sub -= np.multiply.outer(vloc, gam)
            Y[rows, j + 1 :] = sub
        Y[rows, j] = 0.0
        Y[p, j] = math.ldexp(-sig, emax - int(e[p]))
        refl.append(Reflection(rows, e[rows].copy(), emax, sv, den, vloc, p))
        row = Y[p, j:]
        mx = float(np.max(np.abs(row)))
        _, rex = math.frexp(mx)
        mant[j, j:] = np.ldexp(row, -rex)
        exp2[j] = int(e[p]) + rex
        prow[j] = p
        active[p] = False
        _renormalise(Y, e, rows[rows != p], j + 1)
    if not (np.all(np.isfinite(mant)) and np.all(np.isfinite(Y))):
        raise ArithmeticError("weighted QR over- or underflowed")
    return mant, exp2, prow, refl


def _apply_reflections(refl: list[Reflection], y: FloatArray, ey: IntArray) -> None:
    """Apply the reflections to one vector ``diag(2^ey) y`` in place (renormalised)."""
    for rf in refl:
        yI = y[rf.rows]
        t = np.ldexp(yI, (ey[rf.rows] - rf.emax).astype(np.int64))
        gam = _dot(rf.sv, t) / rf.den
        if gam == 0.0:
            continue
        new = yI - gam * np.ldexp(rf.vloc, (rf.exps - ey[rf.rows]).astype(np.int64))
        fr, ex = np.frexp(new)
        y[rf.rows] = fr
        ey[rf.rows] += ex.astype(np.int64)


# ---------------------------------------------------------------------------
# the exact risk


@dataclass
class Factor:
    """Row-scaled Cholesky factor of the learner Gram matrix for one (spectrum, family,
    learner, T), with what the per-draw work needs.

    ``R[i, :] = mant[i, :] * 2^exp2[i]`` (upper, D x D) is the factor for the
    pivot-snapped learner ``B' = B T``; ``tinv = T^-1`` maps learner coefficients to
    ``B'`` coefficients (``B g = B' (tinv g)``).
    """

    mant: FloatArray  # (D, D)
    exp2: IntArray  # (D,)
    zero: bool = False  # Sigmabar == 0 (T = 1): every risk is 0
    shift: int = 0  # kept for callers of the fixed-point factor; always 0
    tinv: FloatArray | None = None  # (D, D) unit upper triangular
    split: PivotSplit | None = None
    Pp: FloatArray | None = None  # (K, D) working-basis coefficients of B'
    E: FloatArray | None = None  # (K, n, n) working basis
    d_star: int = 0
    weight: Weight | None = None
    kept: IntArray | None = None  # weighted rows the QR works on
    refl: list[Reflection] = field(default_factory=list)
    prow: IntArray | None = None  # (D,) pivot row of every step, indices into kept


def _working_basis(text: str, family: str, K: int) -> FamilyBasis:
    fb = family_basis(text, family)
    if K == fb.D:
        return fb
    n = parse_spectrum(text).n
    if n * n == K:
        return family_basis(text, "full")
    raise ValueError(f"{K} learner coefficients fit neither the {family} family ({fb.D}) nor all matrices ({n * n})")


def risk_factor(text: str, family: str, P: FloatArray, T: int, extra_bits: int = 0) -> Factor:
    """Factor of the learner Gram matrix ``P' G_T P`` at horizon ``T``.

    ``P`` (K, D): the learner basis ``B_i = sum_k P[k, i] E_k`` in the working basis
    ``E`` (the family's structured basis if ``K`` is its dimension, else all ``n x n``
    matrices). ``extra_bits`` is accepted for the callers of the fixed-point factor
    and ignored (the weight's precision is raised until certain).
    """
    sp = parse_spectrum(text)
    P = np.asarray(P, dtype=float)
    K, D = P.shape
    fb = _working_basis(text, family, K)
    Ku = fb.d_star
    T = int(T)
    if T < 1:
        raise ValueError("T must be >= 1")
    split = (
        pivot_split(P[:Ku, :])
        if D
        else PivotSplit(np.zeros(0, bool), np.zeros((0, 0)), np.zeros((Ku, 0)), np.zeros((0, 0)))
    )
    Pp = P - P @ split.X if D else P.copy()
    Pp[:Ku, ~split.pivot] = 0.0
    tinv = np.eye(D) + split.X
    if T == 1:
        return Factor(
            np.zeros((D, D)),
            np.zeros(D, dtype=np.int64),
            zero=True,
            tinv=tinv,
            split=split,
            Pp=Pp,
            E=np.asarray(fb.E),
            d_star=Ku,
        )
    weight = _weight(sp, T)
    E = np.asarray(fb.E)
    # rows that vanish on the whole working basis never enter the QR
    used = np.any(weight.apply(E) != 0.0, axis=0)
    kept = np.flatnonzero(used).astype(np.int64)
    if D == 0:
        return Factor(
            np.zeros((0, 0)),
            np.zeros(0, dtype=np.int64),
            tinv=tinv,
            split=split,
            Pp=Pp,
            E=E,
            d_star=Ku,
            weight=weight,
            kept=kept,
            prow=np.zeros(0, dtype=np.int64),
        )
    BJ = np.einsum("kd,kij->dij", Pp, E)
    Y = np.ascontiguousarray(weight.apply(BJ)[:, kept].T)  # (m, D)
    mant, exp2, prow, refl = householder(Y, weight.exps[kept])
    return Factor(
        mant, exp2, tinv=tinv, split=split, Pp=Pp, E=E, d_star=Ku, weight=weight, kept=kept, refl=refl, prow=prow
    )


def _rowdot(Mat: FloatArray, vecs: FloatArray) -> FloatArray:
    """``out[k, i] = sum_j Mat[i, j] vecs[k, j]`` reduced along a contiguous last axis
    (bitwise independent of how many vectors are passed)."""
    out: FloatArray = np.sum(Mat[None, :, :] * vecs[:, None, :], axis=-1)
    return out


def _tail_log2(terms: FloatArray, rest: float) -> FloatArray:
    """``log2(2^rest + sum_{i >= d} 2^terms[i])`` for d = 0..D (D+1,)."""
    D = terms.shape[0]
    out = np.empty(D + 1)
    acc = rest
    out[D] = acc
    for i in range(D - 1, -1, -1):
        acc = float(np.logaddexp2(acc, terms[i]))
        out[i] = acc
    return out


def log2_risk(factor: Factor, Pinv: FloatArray | None, h: FloatArray) -> FloatArray:
    """``log2 r_T(d)`` for d = 0..D, shape (N, D+1); ``-inf`` where the risk is exactly 0.

    ``h`` (N, K): the perturbations in the working basis. ``Pinv`` (D, K): when given,
    every ``H = B g`` with ``g = Pinv h`` lies in the learner's span; ``None`` for any
    other learner (the general path, see :func:`log2_risk_general`).
    """
    if Pinv is None:
        return log2_risk_general(factor, h)
    N = h.shape[0]
    D = factor.mant.shape[0]
    out = np.full((N, D + 1), -np.inf)
    if D == 0 or factor.zero:
        return out
    g = _rowdot(Pinv, h)  # coordinates of H in the learner basis
    if factor.tinv is not None:
        g = _rowdot(factor.tinv, g)
    v = _rowdot(factor.mant, g)  # (N, D), row i scaled by 2^exp2[i]
    with np.errstate(divide="ignore"):
        terms = 2.0 * factor.exp2[None, :] + np.log2(v * v)
    out[:, :D] = np.logaddexp2.accumulate(terms[:, ::-1], axis=1)[:, ::-1]
    return out


def log2_risk_general(factor: Factor, h: FloatArray) -> FloatArray:
    """``log2 r_T(d)`` (N, D+1) for perturbations ``h`` (N, K) in the working basis that
    need not lie in the learner's span (a learner from another family).

    ``H|V_u`` in the span of the pivots' restrictions (decided with ``PIVOT_TOL``, as in
    :func:`bounded_table`) is reproduced by them exactly: ``H = sum_j alpha_j B'_{p_j}
    + H'`` with ``H'`` exactly zero on the unstable columns; ``H'`` goes through the
    reflections and the ``alpha`` part through ``R'``.
    """
    N = h.shape[0]
    D = factor.mant.shape[0]
    out = np.full((N, D + 1), -np.inf)
    if factor.zero:
        return out
    assert factor.split is not None and factor.Pp is not None and factor.E is not None
    assert factor.weight is not None and factor.kept is not None and factor.prow is not None
    split, Ku = factor.split, factor.d_star
    order = split.order
    m_all = factor.weight.exps.shape[0]
    outside = np.ones(m_all, dtype=bool)
    outside[factor.kept] = False
    for q in range(N):
        hq = np.array(h[q], dtype=float)
        alpha = np.zeros(D)
        if order.size:
            hu = hq[:Ku]
            a = np.einsum("kr,k->r", split.Qc, hu)
            res = hu - np.einsum("kr,r->k", split.Qc, a)
            if math.sqrt(_dot(res, res)) <= PIVOT_TOL:
                from scipy.linalg import solve_triangular

                alpha[order] = solve_triangular(split.Rc, a, lower=False)
                hq = hq - np.einsum("kd,d->k", factor.Pp[:, order], alpha[order])
                hq[:Ku] = 0.0
        elif Ku and not np.any(hq[:Ku]):
            pass
        HJ = np.einsum("k,kij->ij", hq, factor.E)
        yall = factor.weight.apply(HJ)
        fr, ex = np.frexp(yall)
        y = fr[factor.kept].copy()
        ey = (ex[factor.kept] + factor.weight.exps[factor.kept]).astype(np.int64)
        _apply_reflections(factor.refl, y, ey)
        # components along the learner directions (pivot rows), plus the alpha part
        zy = y[factor.prow]
        ze = ey[factor.prow]
        za = np.einsum("ij,j->i", factor.mant, alpha)
        with np.errstate(divide="ignore", over="ignore"):
            l1 = 2.0 * ze + np.log2(zy * zy)
        if order.size and np.any(alpha):
            # z = za 2^exp2 + zy 2^ze, summed at the larger exponent
            top = np.maximum(factor.exp2, ze)
            z = np.ldexp(za, (factor.exp2 - top).astype(np.int64)) + np.ldexp(zy, (ze - top).astype(np.int64))
            with np.errstate(divide="ignore"):
                terms = 2.0 * top + np.log2(z * z)
        else:
            terms = l1
        restmask = np.ones(y.shape[0], dtype=bool)
        restmask[factor.prow] = False
        with np.errstate(divide="ignore"):
            rterms = np.concatenate(
                [
                    2.0 * ey[restmask] + np.log2(y[restmask] ** 2),
                    2.0 * (ex[outside] + factor.weight.exps[outside]) + np.log2(fr[outside] ** 2),
                ]
            )
        rest = -np.inf
        for t_ in np.sort(rterms):
            rest = float(np.logaddexp2(rest, t_))
        out[q] = _tail_log2(terms, rest)
    return out


def best_coefficients(factor: Factor, Pinv: FloatArray, h: FloatArray, d: int) -> FloatArray:
    """Residual coefficients ``c`` (N, D) in the learner basis for ``d`` parameters:
    ``Delta = H - sum_{i<=d} phi_i B_i = sum_i c_i B_i`` with ``phi`` optimal (learners
    whose span holds ``H``)."""
    g = _rowdot(Pinv, h)
    c = g.copy()
    if d == 0 or factor.zero:  # any phi is optimal when Sigmabar = 0: take phi = 0
        return c
    D = g.shape[1]
    tinv = factor.tinv if factor.tinv is not None else np.eye(D)
    Rm = np.einsum("ij,jk->ik", factor.mant, tinv)  # R = R' T^-1, rows still scaled by 2^exp2
    from scipy.linalg import solve_triangular

    if d < D:
        rhs = np.stack([np.einsum("ij,j->i", Rm[:d, d:], g[q, d:]) for q in range(g.shape[0])])
        corr = solve_triangular(Rm[:d, :d], rhs.T, lower=False).T
    else:
        corr = np.zeros_like(g)
    c[:, :d] = -corr
    return c


def bounded_table(P: FloatArray, h: FloatArray, d_star: int, tol: float = PIVOT_TOL) -> NDArray[np.bool_]:
    """``bounded[d, draw]`` for d = 0..D (D+1, N): the rank criterion of MATH.md 1.4.

    ``P`` (K, D) learner coefficients, ``h`` (N, K) perturbation coefficients in a
    working basis whose first ``d_star`` elements are supported on the unstable columns
    (the rest on the stable ones): ``H|V_u`` lies in the span of ``B_1|V_u .. B_d|V_u``.
    One pivot split serves every ``d`` and draw.
    """
    N = h.shape[0]
    D = P.shape[1]
    out = np.ones((D + 1, N), dtype=bool)
    if d_star == 0:
        return out
    split = pivot_split(np.asarray(P[:d_star, :], dtype=float), tol)
    order = split.order
    for q in range(N):
        hu = np.array(h[q, :d_star], dtype=float)
        a = np.einsum("kr,k->r", split.Qc, hu) if order.size else np.zeros(0)
        res = hu - np.einsum("kr,r->k", split.Qc, a) if order.size else hu
        perp = _dot(res, res)
        # residual after d directions: perp + sum of a_k^2 over pivots not yet taken
        tail = np.zeros(D + 1)
        for k in range(order.size - 1, -1, -1):
            tail[: order[k] + 1] += a[k] * a[k]
        out[:, q] = np.sqrt(perp + tail) <= tol
    return out


# ---------------------------------------------------------------------------
# a problem assembled from stored matrices


@dataclass
class Problem:
    """One (spectrum, family, learner): coefficients in the working basis.

    ``P`` (K, D) learner basis, ``h`` (N, K) perturbations; ``Pinv`` (D, K) the inverse of
    ``P`` when the learner spans the adversary's family (``None`` otherwise); ``d_star``
    working-basis elements on the unstable columns.
    """

    text: str
    family: str
    P: FloatArray  # (K, D)
    Pinv: FloatArray | None
    h: FloatArray  # (N, K)
    d_star: int
    Q: FloatArray

    @property
    def D(self) -> int:
        return int(self.P.shape[1])


def problem_from_matrices(text: str, family: str, B: FloatArray, H: FloatArray, Q: FloatArray) -> Problem:
    """Project stored learner basis ``B`` (D, n, n) and perturbations ``H`` (N, n, n) of
    the adversary's ``family`` into Jordan coordinates (``A = Q J Q'``).

    ``H`` is snapped exactly into the family. ``B`` is snapped into it too when it lies
    in it (residual <= 1e-8); any other real learner basis (another family, any span) is
    kept as it is, in the elementary basis of all matrices.
    """
    fb = family_basis(text, family)
    DF = fb.D
    n = fb.E.shape[-1]
    Q = np.asarray(Q, dtype=float)
    Et = np.asarray(fb.E).reshape(DF, n * n)
    DL = B.shape[0]
    BJ = np.zeros((DL, n * n))
    for i in range(DL):  # per matrix: a matrix's bits never depend on how many share the call
        BJ[i] = (Q.T @ B[i] @ Q).reshape(n * n)
    h = np.zeros((H.shape[0], DF))
    for q in range(H.shape[0]):
        h[q] = Et @ (Q.T @ H[q] @ Q).reshape(n * n) if DF else h[q]
    P = np.zeros((DF, DL))
    for i in range(DL):
        P[:, i] = Et @ BJ[i] if DF else P[:, i]
    inside = DL == 0 or (DF > 0 and float(np.max(np.abs(BJ - P.T @ Et))) <= 1e-8)
    if inside:
        Pinv: FloatArray | None = None
        if DL == DF:
            Pinv = np.linalg.inv(P).astype(np.float64) if DF else P.T.copy()
        return Problem(text, family, P, Pinv, h, fb.d_star, Q)
    fw = family_basis(text, "full")
    Ew = np.asarray(fw.E).reshape(n * n, n * n)
    Pw = np.zeros((n * n, DL))
    for i in range(DL):
        Pw[:, i] = Ew @ BJ[i]
    hw = np.zeros((H.shape[0], n * n))
    for q in range(H.shape[0]):
        hw[q] = Ew @ (Et.T @ h[q]) if DF else hw[q]
    return Problem(text, family, Pw, None, hw, fw.d_star, Q)


def problem_from_seed(text: str, family: str, seed: int, draws: int | NDArray[np.int64]) -> Problem:
    """The pipeline's learner and draws for (spectrum, family, seed), in Jordan coordinates."""
    fb = family_basis(text, family)
    P = learner_coefficients(text, family, seed)
    h = perturbation_coefficients(text, family, seed, draws)
    Pinv = P.T.copy() if fb.D else P
    return Problem(text, family, P, Pinv, h, fb.d_star, np.eye(parse_spectrum(text).n))


def exact_log2_risk(problem: Problem, T_values: Any) -> FloatArray:
    """``log2 r_T(d)``, shape (len(T), D+1, N)."""
    out = []
    for T in T_values:
        fac = risk_factor(problem.text, problem.family, problem.P, int(T))
        out.append(log2_risk(fac, problem.Pinv, problem.h).T)
    return np.array(out).reshape(len(T_values), problem.D + 1, problem.h.shape[0])


def bounded(problem: Problem) -> NDArray[np.bool_]:
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


def residual_matrices(problem: Problem, B: FloatArray, T: int, draw_index: int) -> FloatArray:
    """``Delta(d)`` for d = 0..D (D+1, n, n) with the exact best-in-class ``phi``."""
    D = problem.D
    n = B.shape[-1] if D else problem.Q.shape[0]
    if D == 0:
        return np.zeros((1, n, n))
    if problem.Pinv is None:
        raise NotImplementedError("residual matrices need a learner whose span holds H")
    fac = risk_factor(problem.text, problem.family, problem.P, int(T))
    h = problem.h[draw_index : draw_index + 1]
    out = np.zeros((D + 1, n, n))
    for d in range(D + 1):
        c = best_coefficients(fac, problem.Pinv, h, d)[0]
        out[d] = np.einsum("i,ikl->kl", c, B)
    return out
