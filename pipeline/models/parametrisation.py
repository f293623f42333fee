"""Learner families that differ from the adversary's family (MATH.md section 1.5).

Setting. In Jordan coordinates (the risk is invariant under the orthogonal change
``A = Q J Q'``), the adversary's direction ``H`` is drawn generically from a family
``F`` and the learner's Haar-rotated orthonormal basis ``B_1 .. B_D`` spans a family
``L``. ``V_u`` is spanned by the unstable coordinates ``u`` (``|eig| >= 1``), so
``M|V_u = M[:, u]`` (``n x n_u``). ``lim_T r_T(d) < inf`` iff
``H|V_u in span(B_1|V_u .. B_d|V_u)``.

Rule (corrected form of MATH section 1.5). Let ``r_L = rank(M -> M|V_u on L)``.
A generic (Haar) ``d``-dimensional subspace of ``L`` has a restriction of dimension
``min(d, r_L)``, and for ``d < r_L`` it is a generic proper subspace of ``L|V_u``,
which misses any fixed non-zero vector; a generic ``H`` has ``H|V_u`` in ``L|V_u``
iff ``F|V_u`` is contained in ``L|V_u`` (otherwise the bad ``H`` form a proper
subspace of ``F``). Hence, for generic draws::

    critical_d = 0      if F|V_u = {0}               (H|V_u = 0: bounded at d = 0)
               = r_L    if {0} != F|V_u within L|V_u
               = never  otherwise (every d <= D diverges)

MATH section 1.5 states only the last two lines; as written it gives ``r_L`` for
``F|V_u = {0}`` as well, which is wrong whenever ``r_L > 0``. With ``F`` in
{block, full, similarity} this happens exactly for the similarity adversary of a
spectrum made of one unstable real eigenvalue with only 1x1 blocks and nothing
else (``"1.0"``, ``"1.0^[1,1]"``, ``"-1.2^[1,1,1]"``): its similarity family is
``{0}``, ``H = 0``, ``r_T(d) = 0`` for every ``d``, so ``critical_d = 0``, while the
rule as written gives ``n_u`` (diagonal), ``n^2`` (block, full). (For ``n_u = 0``
both forms give 0.)

Two consequences for a kernel: ``r_T(D_L) = 0`` (MATH section 1.3) holds only when
``H`` lies in ``L``; for ``L != F`` the bounded cells keep a positive limit. The
pipeline's adversaries are the families of MATH section 1.3; every function here
also accepts ``diagonal`` as the adversary (an SSM-style truth).

Restrictions to ``V_u`` (rows: all ``n`` coordinates, columns ``u``; ``g``, ``h``
unstable eigen-groups, ``J_g`` the Jordan matrix of ``g``):

* ``full|V_u``: all ``n x n_u`` matrices; rank ``n n_u``.
* ``block|V_u``: only the diagonal group blocks ``[g, g]``, arbitrary (real ``g``)
  or commuting with the complex structure (pair ``g``); rank ``sum m_g^2``
  (pairs ``2 m_g^2``).
* ``similarity|V_u = { X J_uu - J X : X in R^(n x n_u) }`` (``(GJ - JG)[:, u]``,
  ``u`` being ``J``-invariant): rows of other groups (stable, or a different
  unstable group) are arbitrary because those Sylvester maps are invertible; the
  block ``[g, g]`` is ``range(ad J_g)``, traceless, and for a pair it contains every
  matrix anticommuting with the complex structure. Rank
  ``n n_u - sum centraliser dims`` (spectra.critical_d_theory).
* ``diagonal|V_u``: the diagonal at ``u`` (rotation-scaling 2x2 for pairs); rank
  ``n_u``.

Containment ``F|V_u within L|V_u`` per pair (``z``: ``F|V_u = {0}``). "single real
group": the whole spectrum is one real eigenvalue (any Jordan structure).

==========  ==========  ==================================================
adversary   learner     contained iff
==========  ==========  ==================================================
any         same        always
any         full        always
block       diagonal    every unstable eigenvalue has multiplicity 1
block       similarity  n_u = 0 (block has the identity on V_u; traceless)
full        block       n_u = 0 or single real group
full        similarity  n_u = 0
full        diagonal    n_u = 0 or n = 1
similarity  block       z or single real group (stable rows, cross-group
                        entries and the pairs' anticommuting part escape)
similarity  diagonal    z (the off-diagonal E_12 = [E_11, J] of any Jordan
                        block of size >= 2, or escapes as above)
diagonal    block       always
diagonal    similarity  n_u = 0 (traceless again)
==========  ==========  ==================================================

Growth at ``d = D_L`` for "never" pairs. ``Sigmabar_T`` is block diagonal per Jordan
block; for a block with ``|eig| = 1`` of size ``m`` its coordinate ``i = 1..m``
(``i = 1`` the top, the first column) has ``Sigmabar_T = D_T (C + O(1/T)) D_T`` with
``D_T = diag(T^((2(m-i)+1)/2))`` and ``C`` positive definite (a Hilbert-type
matrix, conjugated by rotations for a pair), and ``|eig| > 1`` gives ``rho^(2T)``.
So ``r_T(D_L)`` is, up to constants, ``min_{M in L} sum_c T^(e_c) |(H - M)[:, c]|^2``
with ``e_c = 2(m-i)+1`` (``inf`` if ``|eig| > 1``). The top segments
``W_e = span{c : e_c >= e}`` are ``J``-invariant, and by the usual lexicographic
argument for weighted least squares (minimisers stay bounded: G. W. Stewart,
Linear Algebra Appl. 112, 1989)
``r_T(D_L) ~ T^g`` with ``g`` the largest level ``e`` at which ``F|W_e`` is not
contained in ``L|W_e`` (``g = inf``: exponential, ``rho_min^(2T)`` at least). That
containment is decided by a rank test on the explicit structured bases restricted
to the columns ``W_e`` (exact zeros and O(1) entries; singular values between
``1e-12`` and ``1e-6`` are refused as an unclear rank). Closed forms for the simple
pairs: full vs diagonal (``n > 1``) and full vs block (not a single real group):
``g = max_c e_c``; block vs diagonal: ``g = max e_c`` over the columns of groups of
multiplicity >= 2. The similarity pairs
have no such simple form: the similarity adversary of ``"1.0^2"`` against the
diagonal learner grows like ``T^1``, not ``T^3``, because
``similarity|W_3 = span(E_11)`` is diagonal.

Everything here is pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.models.observed.draws import basis_change, learner_basis
from pipeline.models.observed.factor import risk_factor
from pipeline.models.observed.families import FamilyBasis, family_basis
from pipeline.models.observed.problems import Problem
from pipeline.models.observed.ranks import bounded_table
from pipeline.models.observed.risk import log2_risk
from pipeline.models.spectra import (
    Spectrum,
    critical_d_theory,
    family_dimension,
    parse_spectrum,
    random_orthogonal,
)
from pipeline.models.streams import cell_rng

LEARNER_FAMILIES = ("block", "full", "similarity", "diagonal")

# Structured bases have O(1) entries and exact zeros, so restricted singular values
# are either structural constants (>= ~1e-3) or roundoff (~1e-15); anything in
# between means the rank is not well defined and is refused.
_RANK_TOL = 1e-9
_RANK_BAND = (1e-12, 1e-6)


def _spectrum(spectrum: Spectrum | str) -> Spectrum:
    return parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum


def _check_family(family: str) -> None:
    if family not in LEARNER_FAMILIES:
        raise ValueError(f"family {family!r}: allowed {', '.join(LEARNER_FAMILIES)}")


# ---------------------------------------------------------------------------
# the diagonal family


@lru_cache(maxsize=256)
def _diagonal_basis_cached(text: str) -> FamilyBasis:
    sp = parse_spectrum(text)
    n = sp.n
    c = 1.0 / math.sqrt(2.0)
    unstable: list[np.ndarray] = []
    stable: list[np.ndarray] = []
    for g in sp.groups:
        target = unstable if g.unstable else stable
        idx = list(g.indices)
        if not g.is_pair:
            for i in idx:
                M = np.zeros((n, n))
                M[i, i] = 1.0
                target.append(M)
            continue
        for p in range(0, len(idx), 2):
            r0, r1 = idx[p], idx[p + 1]
            M = np.zeros((n, n))
            M[r0, r0] = M[r1, r1] = c
            target.append(M)
            M = np.zeros((n, n))
            M[r0, r1], M[r1, r0] = -c, c
            target.append(M)
    mats = unstable + stable
    E = np.array(mats).reshape(len(mats), n, n) if mats else np.zeros((0, n, n))
    E.setflags(write=False)
    return FamilyBasis(E, len(unstable))


def diagonal_basis(spectrum: Spectrum | str) -> FamilyBasis:
    """Structured orthonormal basis of the ``diagonal`` family in Jordan coordinates.

    ``E`` is ``(n, n, n)``: ``E_cc`` for every real coordinate ``c`` and, for every
    complex-pair coordinate pair ``(c, c+1)``, ``(E_cc + E_{c+1,c+1}) / sqrt 2`` and
    ``(E_{c+1,c} - E_{c,c+1}) / sqrt 2`` (the rotation-scaling ``[[x, -y], [y, x]]``).
    ``E[:d_star]`` (``d_star = n_u``) are supported on unstable columns, the rest on
    stable columns; exact zeros elsewhere.
    """
    return _diagonal_basis_cached(_spectrum(spectrum).text)


def learner_basis_structured(spectrum: Spectrum | str, family: str) -> FamilyBasis:
    """Structured orthonormal basis ``E`` (D, n, n) of any learner family (Jordan
    coordinates; ``E[:d_star]`` on unstable columns, ``E[d_star:]`` on stable ones)."""
    _check_family(family)
    sp = _spectrum(spectrum)
    if family == "diagonal":
        return diagonal_basis(sp)
    return family_basis(sp, family)


def learner_dimension(spectrum: Spectrum | str, family: str) -> int:
    """Dimension ``D`` of the family: ``n`` for ``diagonal``, MATH section 1.3 otherwise."""
    _check_family(family)
    sp = _spectrum(spectrum)
    return sp.n if family == "diagonal" else family_dimension(sp, family)


def restriction_rank(spectrum: Spectrum | str, family: str) -> int:
    """Rank of ``M -> M|V_u`` on the family: ``n_u`` for ``diagonal``, ``d*`` of MATH
    section 1.4 otherwise."""
    _check_family(family)
    sp = _spectrum(spectrum)
    return sp.n_unstable if family == "diagonal" else critical_d_theory(sp, family)


# ---------------------------------------------------------------------------
# closed-form rules


def _single_real_group(sp: Spectrum) -> bool:
    return len(sp.groups) == 1 and not sp.groups[0].is_pair


def adversary_within_learner(spectrum: Spectrum | str, adversary: str, learner: str) -> bool:
    """Whether ``F|V_u`` is contained in ``L|V_u`` (closed form, module table)."""
    _check_family(adversary)
    _check_family(learner)
    sp = _spectrum(spectrum)
    if sp.n_unstable == 0 or adversary == learner or learner == "full":
        return True
    if restriction_rank(sp, adversary) == 0:
        return True
    pair = (adversary, learner)
    if pair == ("block", "diagonal"):
        return all(g.multiplicity == 1 for g in sp.groups if g.unstable)
    if pair in (("full", "block"), ("similarity", "block")):
        return _single_real_group(sp)
    if pair == ("full", "diagonal"):
        return sp.n == 1
    # diagonal lies in block; a similarity learner is traceless on an unstable group (block,
    # full and diagonal are not), and similarity escapes diagonal once its restriction is non-zero
    return pair == ("diagonal", "block")


@dataclass(frozen=True)
class Criticality:
    """Theory of one (spectrum, adversary, learner) cell.

    ``learnable``: some ``d <= learner_dimension`` makes ``r_T(d)`` bounded in ``T``;
    ``critical_d``: the smallest such ``d`` (``None`` iff not learnable);
    ``growth_exponent``: ``g`` with ``r_T(learner_dimension) ~ T^g`` when not
    learnable (``inf``: exponential), ``None`` when learnable.
    """

    learnable: bool
    critical_d: int | None
    restriction_rank: int
    learner_dimension: int
    growth_exponent: float | None

    def cube_fields(self) -> tuple[bool, float]:
        """``(learnable, critical_d_theory)`` as a cube stores them: the count as a float,
        ``+inf`` where ``learnable`` is False (never a count a plot could mistake)."""
        return self.learnable, (math.inf if self.critical_d is None else float(self.critical_d))


def learnable(spectrum: Spectrum | str, adversary: str, learner: str) -> bool:
    """Whether a generic ``H`` in ``F`` is learnt (bounded risk) by some ``d <= D_L``."""
    sp = _spectrum(spectrum)
    return restriction_rank(sp, adversary) == 0 or adversary_within_learner(sp, adversary, learner)


def critical_d(spectrum: Spectrum | str, adversary: str, learner: str) -> int | None:
    """Smallest ``d`` with ``lim_T r_T(d) < inf`` for generic draws; ``None`` = never.

    0 if ``F|V_u = {0}``; ``restriction_rank(L)`` if ``F|V_u`` lies in ``L|V_u``;
    ``None`` otherwise.
    """
    sp = _spectrum(spectrum)
    if restriction_rank(sp, adversary) == 0:
        return 0
    if adversary_within_learner(sp, adversary, learner):
        return restriction_rank(sp, learner)
    return None


def criticality(spectrum: Spectrum | str, adversary: str, learner: str) -> Criticality:
    """All theory of one cell (see :class:`Criticality`)."""
    sp = _spectrum(spectrum)
    c = critical_d(sp, adversary, learner)
    return Criticality(
        learnable=c is not None,
        critical_d=c,
        restriction_rank=restriction_rank(sp, learner),
        learner_dimension=learner_dimension(sp, learner),
        growth_exponent=never_growth_exponent(sp, adversary, learner),
    )


# ---------------------------------------------------------------------------
# structural rank tests on the explicit bases


def _rank(rows: np.ndarray) -> int:
    if rows.size == 0:
        return 0
    sv = np.linalg.svd(rows, compute_uv=False)
    lo, hi = _RANK_BAND
    unclear = sv[(sv > lo) & (sv < hi)]
    if unclear.size:
        raise ArithmeticError(f"no clear rank gap: singular value {unclear[0]:.3g}")
    return int(np.sum(sv > _RANK_TOL))


def restricted_family(spectrum: Spectrum | str, family: str, columns: ArrayLike) -> np.ndarray:
    """Orthonormal basis ``(k, n, len(columns))`` of ``{ M[:, columns] : M in family }``
    (Jordan coordinates), from the structured basis; ``k`` is its rank."""
    sp = _spectrum(spectrum)
    cols = np.asarray(columns, dtype=np.int64)
    E = learner_basis_structured(sp, family).E
    n = sp.n
    if E.shape[0] == 0 or cols.size == 0:
        return np.zeros((0, n, cols.size))
    R = E[:, :, cols].reshape(E.shape[0], -1)
    k = _rank(R)
    _, _, Vt = np.linalg.svd(R, full_matrices=False)
    out: np.ndarray = Vt[:k].reshape(k, n, cols.size)
    return out


def contained_on(spectrum: Spectrum | str, adversary: str, learner: str, columns: ArrayLike) -> bool:
    """Whether ``F|W`` lies in ``L|W`` for ``W = span{e_c : c in columns}`` (rank test)."""
    Fw = restricted_family(spectrum, adversary, columns)
    Lw = restricted_family(spectrum, learner, columns)
    if Fw.shape[0] == 0:
        return True
    width = Fw.shape[1] * Fw.shape[2]
    stacked = np.vstack([Lw.reshape(Lw.shape[0], width), Fw.reshape(Fw.shape[0], width)])
    return _rank(stacked) == int(Lw.shape[0])


def structural_critical_d(spectrum: Spectrum | str, adversary: str, learner: str) -> int | None:
    """``critical_d`` from rank tests on the explicit bases (cross-check of the closed
    form)."""
    sp = _spectrum(spectrum)
    u = sp.unstable_indices
    if restricted_family(sp, adversary, u).shape[0] == 0:
        return 0
    if contained_on(sp, adversary, learner, u):
        return int(restricted_family(sp, learner, u).shape[0])
    return None


def unstable_column_exponents(spectrum: Spectrum | str) -> np.ndarray:
    """``e`` (n_u,), aligned with ``spectrum.unstable_indices``: the diagonal of
    ``Sigmabar_T`` at that coordinate grows like ``T^e`` — ``2(m-i)+1`` for coordinate
    ``i = 1..m`` of a Jordan block of size ``m`` with ``|eig| = 1`` (both real
    coordinates of a pair position), ``inf`` if ``|eig| > 1``."""
    sp = _spectrum(spectrum)
    e = np.zeros(sp.n)
    for b in sp.blocks:
        g = sp.groups[b.group]
        if not g.unstable:
            continue
        per = b.dim // b.m
        for i in range(b.m):
            val = math.inf if g.modulus > 1.0 else float(2 * (b.m - 1 - i) + 1)
            e[b.start + per * i : b.start + per * (i + 1)] = val
    out: np.ndarray = e[sp.unstable_indices]
    return out


def never_growth_exponent(spectrum: Spectrum | str, adversary: str, learner: str) -> float | None:
    """``g`` with ``r_T(D_L) ~ T^g`` for a generic ``H`` of a "never" pair (``math.inf``:
    exponential growth, some ``|eig| > 1`` is hit); ``None`` when the pair is learnable.

    ``g`` is the largest level ``e`` of :func:`unstable_column_exponents` such that
    ``F|W_e`` is not in ``L|W_e``, ``W_e`` the columns with exponent ``>= e``.
    """
    sp = _spectrum(spectrum)
    if learnable(sp, adversary, learner):
        return None
    u = sp.unstable_indices
    e = unstable_column_exponents(sp)
    for level in sorted(set(e.tolist()), reverse=True):
        if not contained_on(sp, adversary, learner, u[e >= level]):
            return float(level)
    raise ArithmeticError(f"{sp.text!r}: {adversary} vs {learner} is not learnable, yet contained at every level")


# ---------------------------------------------------------------------------
# the exact risk of a learner family apart from the adversary's
#
# The exact kernel of pipeline.models.observed takes any learner basis in the
# elementary working basis of all n x n matrices (its general path: the pivots of the
# learner's unstable restriction reproduce ``H|V_u`` exactly when it lies in their
# span, the rest goes through the weighted QR). Here both the learner's basis (in
# ``L``) and the adversary's directions (in ``F``) are first snapped onto their
# families' structured bases in Jordan coordinates, so exact zeros and pair
# symmetries are exact, whatever the stored basis change ``Q``.


@dataclass(frozen=True)
class CrossProblem:
    """One (spectrum, adversary family ``F``, learner family ``L``) in Jordan coordinates.

    ``problem``: the observed kernel's problem in the elementary working basis
    (``P`` (n^2, D_L), ``h`` (N, n^2), ``Pinv`` None: the general path). ``whole``:
    ``F`` lies in ``L`` on every column, so ``r_T(D_L) = 0`` exactly.
    """

    problem: Problem
    whole: bool

    @property
    def D(self) -> int:
        """The learner's dimension ``D_L``."""
        return self.problem.D


def _snap(E: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``sum_j <E_j, M> E_j`` (n, n) for one matrix ``M`` (n, n): the orthogonal projection
    onto the span of the orthonormal structured basis ``E`` (k, n, n); fixed-shape products,
    so a matrix's bits never depend on how many share the call."""
    k, n, _ = E.shape
    if k == 0:
        return np.zeros((n, n))
    Et = E.reshape(k, n * n)
    c = Et @ M.reshape(n * n)
    out: np.ndarray = (c @ Et).reshape(n, n)
    return out


def cross_problem(
    spectrum: Spectrum | str, adversary: str, learner: str, B: np.ndarray, H: np.ndarray, Q: np.ndarray
) -> CrossProblem:
    """The problem of a learner basis ``B`` (D_L, n, n) of family ``learner`` against
    adversary directions ``H`` (N, n, n) of family ``adversary``, both stored in the
    coordinates of ``A = Q J Q'`` (``Q`` orthogonal (n, n)): each matrix is rotated to
    Jordan coordinates and projected onto its family's structured basis, then written in
    the elementary working basis of :func:`pipeline.models.observed.family_basis`
    ``(spectrum, "full")`` (a permutation of the entries, exact)."""
    _check_family(adversary)
    _check_family(learner)
    sp = _spectrum(spectrum)
    n = sp.n
    Q = np.asarray(Q, dtype=float)
    EL = learner_basis_structured(sp, learner).E
    EF = learner_basis_structured(sp, adversary).E
    fw = family_basis(sp.text, "full")
    Ew = np.asarray(fw.E).reshape(n * n, n * n)
    DL, N = int(B.shape[0]), int(H.shape[0])
    P = np.zeros((n * n, DL))
    for i in range(DL):
        P[:, i] = Ew @ _snap(EL, Q.T @ B[i] @ Q).reshape(n * n)
    h = np.zeros((N, n * n))
    for q in range(N):
        h[q] = Ew @ _snap(EF, Q.T @ H[q] @ Q).reshape(n * n)
    whole = contained_on(sp, adversary, learner, np.arange(n)) if EF.shape[0] else True
    return CrossProblem(Problem(sp.text, "full", P, None, h, fw.d_star, Q), whole)


def cross_bounded(problem: CrossProblem) -> NDArray[np.bool_]:
    """``bounded[d, draw]`` (D_L + 1, N): ``H|V_u`` in ``span(B_1|V_u .. B_d|V_u)``
    (the rank criterion of MATH section 1.4, decided as the observed kernel does)."""
    return bounded_table(problem.problem.P, problem.problem.h, problem.problem.d_star)


def cross_log2_risk(problem: CrossProblem, T: int) -> NDArray[np.float64]:
    """``log2 r_T(d)`` for d = 0..D_L, shape (N, D_L + 1); ``-inf`` where the risk is
    exactly 0 (``T = 1``, ``H = 0``, or ``d = D_L`` when ``F`` lies in ``L``)."""
    p = problem.problem
    fac = risk_factor(p.text, "full", p.P, int(T))
    out = np.array(log2_risk(fac, None, p.h), dtype=np.float64)
    if problem.whole and p.D:
        out[:, p.D] = -np.inf
    return out


def learner_matrices(spectrum: Spectrum | str, learner: str, seed: int, basis: str = "jordan") -> np.ndarray:
    """The learner's orthonormal basis ``B_1 .. B_D`` (D, n, n) in the coordinates of
    ``A``: a Haar-random orthonormal basis of the family (MATH section 1.5), from the
    stream ``("observed.learner", spectrum, learner)`` — for ``block``, ``full`` and
    ``similarity`` exactly :func:`pipeline.models.observed.learner_basis`."""
    _check_family(learner)
    sp = _spectrum(spectrum)
    if learner != "diagonal":
        return learner_basis(sp.text, learner, seed, basis)
    E = diagonal_basis(sp).E
    P = random_orthogonal(E.shape[0], cell_rng(seed, "observed.learner", sp.text, learner))
    BJ = np.einsum("ji,jkl->ikl", P, E)
    Q = basis_change(sp, basis, seed)
    return np.asarray(np.einsum("ij,...jk,lk->...il", Q, BJ, Q)) if basis != "jordan" else BJ
