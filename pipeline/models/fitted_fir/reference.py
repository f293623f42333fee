"""The reference filter and the graded regressor basis of MATH §6.4 for hidden-state systems.

For a marginal Jordan block of size ``m_J`` the outputs grow like ``t^(m_J - 1/2)`` and the
Gram matrix of the lags ``y_{t-1} .. y_{t-k}`` has a condition number growing like
``T^(2 m_J)``. Least squares is therefore solved in an exactly equivalent basis:

* **Factors.** ``phi(z) = p_1(z) ... p_q(z)`` has one factor per eigenvalue of modulus
  ``>= 1`` and unit of Jordan size, in the order of the spectrum's blocks: ``1 - lam z`` for a
  real ``lam`` (the float64 value of ``A``: exact), ``1 - 2 Re(mu) z + z^2`` for a pair ``mu``
  of modulus 1 (``2 Re(mu)`` snapped to the integer within ``1e-12``, so ``1@60``, ``1@90``,
  ``1@120`` give integer factors; the pair of the float64 ``A`` then differs from the factor's
  roots by ~1e-16, a negligible, exactly known part of the series below). ``n_u = deg phi``.
* **Series.** ``sigma_0 = y``, ``sigma_i = p_i(L) sigma_(i-1)`` (``y_s = 0`` for ``s < 0``), and
  ``u = sigma_q = phi(L) y`` (stationary: ``phi`` annihilates the unit roots). Their
  polynomials in the lag operator are ``Phi_i = p_1 ... p_i``.
* **Basis for ``k >= n_u`` taps.** Regressors ``sigma_i(t - 1 - s)`` for ``s < deg p_(i+1)``
  (polynomial ``z^(1+s) Phi_i``, degrees ``1 .. n_u``; the *levels*) then ``u(t - j)``,
  ``j = 1 .. k - n_u`` (``z^j phi``, degrees ``n_u + 1 .. k``); target ``u(t)``, i.e. the
  reference filter ``theta_ref = coefficients of 1 - phi``. Ordered by degree with leading
  coefficients ``±1`` (``-lam`` for a real ``|lam| > 1``): an exact triangular change of basis
  of the lags ``1 .. k``, and every filter length is a leading principal block of the next.
* **Basis for ``k < n_u`` taps.** The first ``k`` levels; target ``sigma_i(t)`` for the
  largest ``i`` with ``deg Phi_i <= k`` (reference ``1 - Phi_i``).

A fitted filter is ``theta = theta_ref + M' psi`` where ``psi`` solves the normal equations in
the new basis and row ``a`` of ``M`` (k, k) holds the lag coefficients of regressor ``a``.
All coefficients are exact rationals (``fractions.Fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache

from pipeline.models.spectra import Spectrum

__all__ = ["Design", "Factor", "Reference", "Regressor", "reference"]

SNAP = 1e-12  # 2 Re(mu) within this of an integer is taken as that integer

Poly = tuple[Fraction, ...]


@dataclass(frozen=True)
class Factor:
    """``1 + a1 z + a2 z^2`` (``a2 = 0`` for a real eigenvalue), float64 coefficients."""

    a1: float
    a2: float

    @property
    def degree(self) -> int:
        return 2 if self.a2 != 0.0 else 1

    @property
    def poly(self) -> Poly:
        out = (Fraction(1), Fraction(self.a1), Fraction(self.a2))
        return out[: self.degree + 1]


@dataclass(frozen=True)
class Regressor:
    """Series ``series`` (0 = ``y``, ``q`` = ``u``) at lag ``lag``: the value ``sigma_series(t - lag)``."""

    series: int
    lag: int


@dataclass(frozen=True)
class Design:
    """The graded basis of one filter length ``k`` (``k >= 1`` regressors).

    ``regressors`` (k,); ``target`` the series of the reference residual (at lag 0);
    ``basis`` rows of ``M``: ``basis[a][j - 1]`` the coefficient of ``y_{t-j}`` in regressor
    ``a``; ``theta_ref`` (k,) the reference filter.
    """

    k: int
    regressors: tuple[Regressor, ...]
    target: int
    basis: tuple[Poly, ...]
    theta_ref: Poly


def _mul(p: Poly, q: Poly) -> Poly:
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return tuple(out)


def _shifted(p: Poly, shift: int, k: int) -> Poly:
    """Coefficients of ``z^shift p(z)`` at ``z^1 .. z^k``."""
    out = [Fraction(0)] * k
    for i, c in enumerate(p):
        if 1 <= i + shift <= k:
            out[i + shift - 1] = c
        elif c != 0 and i + shift > k:
            raise ValueError("regressor polynomial exceeds the filter length")
    return tuple(out)


@dataclass(frozen=True)
class Reference:
    """The factors of ``phi`` for one spectrum and the designs built from them."""

    factors: tuple[Factor, ...]

    @property
    def q(self) -> int:
        """Index of ``u`` among the series (the number of factors)."""
        return len(self.factors)

    @property
    def n_u(self) -> int:
        return sum(f.degree for f in self.factors)

    @cached_property
    def partial_products(self) -> tuple[Poly, ...]:
        """``Phi_0 = 1, Phi_1, ..., Phi_q = phi``."""
        out: list[Poly] = [(Fraction(1),)]
        for f in self.factors:
            out.append(_mul(out[-1], f.poly))
        return tuple(out)

    @cached_property
    def levels(self) -> tuple[Regressor, ...]:
        """The level regressors in degree order (``n_u`` of them)."""
        return tuple(Regressor(i, 1 + s) for i, f in enumerate(self.factors) for s in range(f.degree))

    def level_degree(self, a: int) -> int:
        lv = self.levels[a]
        return len(self.partial_products[lv.series]) - 1 + lv.lag

    def design(self, k: int) -> Design:
        """The graded basis of ``k >= 1`` taps (cached)."""
        return _design(self, int(k))


@lru_cache(maxsize=256)
def _design(ref: Reference, k: int) -> Design:
    if k < 1:
        raise ValueError(f"k = {k}: a design needs at least one tap")
    pp = ref.partial_products
    if k >= ref.n_u:
        regs = ref.levels + tuple(Regressor(ref.q, j) for j in range(1, k - ref.n_u + 1))
        target = ref.q
    else:
        regs = ref.levels[:k]
        target = max(i for i, p in enumerate(pp) if len(p) - 1 <= k)
    basis = tuple(_shifted(pp[r.series], r.lag, k) for r in regs)
    R = pp[target]
    theta_ref = tuple(-R[j] if j < len(R) else Fraction(0) for j in range(1, k + 1))
    return Design(k, regs, target, basis, theta_ref)


def _factors(sp: Spectrum) -> tuple[Factor, ...]:
    out: list[Factor] = []
    for b in sp.blocks:
        if sp.groups[b.group].modulus < 1.0:
            continue
        if b.imag == 0.0:
            f = Factor(-b.real, 0.0)
        else:
            a1 = -2.0 * b.real
            if abs(a1 - round(a1)) <= SNAP:
                a1 = float(round(a1))
            f = Factor(a1, 1.0)
        out.extend([f] * b.m)
    return tuple(out)


def reference(sp: Spectrum) -> Reference:
    """The :class:`Reference` of a spectrum (its eigenvalues of modulus ``>= 1``)."""
    return Reference(_factors(sp))
