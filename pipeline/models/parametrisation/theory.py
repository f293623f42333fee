"""Theory of learner families that differ from the adversary's family (MATH.md section 1.5).

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

import numpy as np

from pipeline.models.parametrisation.families import (
    as_spectrum,
    check_family,
    learner_dimension,
    restriction_rank,
)
from pipeline.models.parametrisation.ranks import contained_on
from pipeline.models.spectra import Spectrum

__all__ = [
    "Criticality",
    "adversary_within_learner",
    "critical_d",
    "criticality",
    "learnable",
    "never_growth_exponent",
    "unstable_column_exponents",
]


def _single_real_group(sp: Spectrum) -> bool:
    return len(sp.groups) == 1 and not sp.groups[0].is_pair


def adversary_within_learner(spectrum: Spectrum | str, adversary: str, learner: str) -> bool:
    """Whether ``F|V_u`` is contained in ``L|V_u`` (closed form, module table)."""
    check_family(adversary)
    check_family(learner)
    sp = as_spectrum(spectrum)
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
    sp = as_spectrum(spectrum)
    return restriction_rank(sp, adversary) == 0 or adversary_within_learner(sp, adversary, learner)


def critical_d(spectrum: Spectrum | str, adversary: str, learner: str) -> int | None:
    """Smallest ``d`` with ``lim_T r_T(d) < inf`` for generic draws; ``None`` = never.

    0 if ``F|V_u = {0}``; ``restriction_rank(L)`` if ``F|V_u`` lies in ``L|V_u``;
    ``None`` otherwise.
    """
    sp = as_spectrum(spectrum)
    if restriction_rank(sp, adversary) == 0:
        return 0
    if adversary_within_learner(sp, adversary, learner):
        return restriction_rank(sp, learner)
    return None


def criticality(spectrum: Spectrum | str, adversary: str, learner: str) -> Criticality:
    """All theory of one cell (see :class:`Criticality`)."""
    sp = as_spectrum(spectrum)
    c = critical_d(sp, adversary, learner)
    return Criticality(
        learnable=c is not None,
        critical_d=c,
        restriction_rank=restriction_rank(sp, learner),
        learner_dimension=learner_dimension(sp, learner),
        growth_exponent=never_growth_exponent(sp, adversary, learner),
    )


def unstable_column_exponents(spectrum: Spectrum | str) -> np.ndarray:
    """``e`` (n_u,), aligned with ``spectrum.unstable_indices``: the diagonal of
    ``Sigmabar_T`` at that coordinate grows like ``T^e`` — ``2(m-i)+1`` for coordinate
    ``i = 1..m`` of a Jordan block of size ``m`` with ``|eig| = 1`` (both real
    coordinates of a pair position), ``inf`` if ``|eig| > 1``."""
    sp = as_spectrum(spectrum)
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
    sp = as_spectrum(spectrum)
    if learnable(sp, adversary, learner):
        return None
    u = sp.unstable_indices
    e = unstable_column_exponents(sp)
    for level in sorted(set(e.tolist()), reverse=True):
        if not contained_on(sp, adversary, learner, u[e >= level]):
            return float(level)
    raise ArithmeticError(f"{sp.text!r}: {adversary} vs {learner} is not learnable, yet contained at every level")
