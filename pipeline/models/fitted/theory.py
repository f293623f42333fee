"""Theory of fitted learners (MATH.md section 6.5): critical ``d``, FPE, Dickey-Fuller.

* Critical ``d`` (the bias, ``m -> infinity``): the phase transition of sections 1.4/1.5
  is unchanged. For ``nominal = "zero"`` the learner has to learn ``J`` itself, a single
  matrix rather than a generic member of a family: bounded iff ``J|V_u`` lies in the span
  of the first ``d`` directions restricted to ``V_u``. For ``leading`` that is a support
  condition on matrix units (``k_u^2`` in a Jordan basis, ``k_u`` the last coordinate of an
  unstable Jordan block; ``n^2 - n + n_u`` in a random basis, where every coordinate
  mixes the unstable modes, i.e. ``n^2`` on the grid ``d = k^2``); for a Haar-rotated
  family ``L`` it is ``rank(L|V_u)`` when ``J|V_u`` lies in ``L|V_u`` and never otherwise.
  ``nominal = "perturbed"`` is section 1.5's rule.
* Variance, stable systems, ``full`` family: ``(m T / d) E[R_T - bias] -> 1``
  (:data:`FPE_LIMIT`; Akaike's final prediction error, "learning without mixing").
* Scalar random walk, one trajectory: ``T E[R_T] -> E[Z^2] / 2`` with the Dickey-Fuller
  coefficient ``Z = int W dW / int W^2 = (W(1)^2 - 1) / (2 int W^2)``. Its moments and
  distribution are computed here from the joint Laplace transform of ``(W(1)^2, int W^2)``
  (White 1958; e.g. Tanaka, *Time Series Analysis*, 1996, section 6):

      E exp(u W(1)^2 - s int W^2) = (cosh a - 2 u sinh(a) / a)^(-1/2),   a = sqrt(2 s)

  so ``E Z = int_0^inf E[N e^(-s D)] ds`` and ``E Z^2 = int_0^inf s E[N^2 e^(-s D)] ds``
  (``N = (W(1)^2 - 1)/2``, ``D = int W^2``): ``E Z = -1.781430``, ``Var Z = 10.11217``,
  ``E Z^2 / 2 = 6.642833``; the distribution function by Gil-Pelaez inversion. Fuller's
  table (W. A. Fuller, *Introduction to Statistical Time Series*, 1976, Table 8.5.1; 2nd
  ed. 1996, Table 10.A.1; also J. D. Hamilton, *Time Series Analysis*, 1994, Table B.5,
  case 1, ``T = infinity``) is kept as :data:`FULLER_QUANTILES`; the computed distribution
  reproduces it to its printed digits (tested).
"""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from pipeline.models.fitted.leading import leading_critical_d
from pipeline.models.parametrisation import critical_d as cross_critical_d
from pipeline.models.parametrisation import restricted_family, restriction_rank
from pipeline.models.spectra import parse_spectrum

FloatArray = NDArray[np.float64]

FPE_LIMIT = 1.0  # (m T / d) E[R_T - bias] for stable systems, full family
FULLER_QUANTILES: dict[float, float] = {0.01: -13.8, 0.05: -8.1, 0.10: -5.7}
"""Quantiles of ``T (ahat - 1)``, no constant, ``T = infinity`` (Fuller's table)."""

_RANK_TOL = 1e-9


# ---------------------------------------------------------------------------
# critical d


def _contains(basis: FloatArray, target: FloatArray) -> bool:
    """Whether ``target`` (r, c) lies in the span of the orthonormal ``basis`` (k, r, c)."""
    t = target.reshape(-1)
    if basis.shape[0] == 0:
        return not np.any(t)
    Bf = basis.reshape(basis.shape[0], -1)
    res = t - Bf.T @ (Bf @ t)
    return float(np.linalg.norm(res)) <= _RANK_TOL * max(1.0, float(np.linalg.norm(t)))


def _leading_random(n: int, n_u: int) -> int:
    """``leading`` in a random basis: ``M Q_u = target`` needs, in every row ``r``, ``n_u`` units
    ``E_rc`` among the first ``d`` (generic ``Q``: any ``n_u`` columns of ``Q_u`` are independent).
    The last row gets its ``n_u``-th unit at position ``(n-1)^2 + (n-1) + n_u - 1``, so
    ``critical_d = n^2 - n + n_u``; on the grid ``d = k^2`` that is ``n^2`` (only ``k = n``)."""
    return n * n - n + n_u


def critical_d_theory(
    spectrum: str, learner: str, nominal: str = "zero", adversary: str | None = None, basis: str = "jordan"
) -> int | None:
    """Smallest ``d`` with bounded bias for generic draws; ``None`` = never (MATH.md 6.5)."""
    sp = parse_spectrum(spectrum)
    u = sp.unstable_indices
    n = sp.n
    J = sp.jordan_matrix()
    if nominal == "perturbed":
        if adversary is None:
            raise ValueError("nominal 'perturbed' needs the adversary's family")
        if learner != "leading":
            return cross_critical_d(sp, adversary, learner)
        Fu = restricted_family(sp, adversary, u)
        if Fu.shape[0] == 0:
            return 0
        if basis == "random":
            return _leading_random(n, u.size)
        support = np.zeros((n, n), dtype=bool)
        support[:, u] = np.any(Fu != 0.0, axis=0)
        return leading_critical_d(support)
    if u.size == 0:
        return 0
    if learner == "leading":
        if basis == "random":
            return _leading_random(n, u.size)
        support = np.zeros((n, n), dtype=bool)
        support[:, u] = J[:, u] != 0.0
        return leading_critical_d(support)
    if _contains(restricted_family(sp, learner, u), J[:, u]):
        return restriction_rank(sp, learner)
    return None


# ---------------------------------------------------------------------------
# Dickey-Fuller coefficient distribution


def _laplace_parts(s: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
    a = mpmath.sqrt(2 * s)
    c = mpmath.cosh(a)
    sig = mpmath.sinh(a) / a if a != 0 else mpmath.mpf(1)
    return c, sig


@lru_cache(maxsize=1)
def dickey_fuller_moments() -> tuple[float, float]:
    """``(E Z, E Z^2)`` of the Dickey-Fuller coefficient, by quadrature of the Laplace transform."""

    def first(s: mpmath.mpf) -> mpmath.mpf:
        c, sig = _laplace_parts(s)
        return (sig * c ** mpmath.mpf(-1.5) - c ** mpmath.mpf(-0.5)) / 2

    def second(s: mpmath.mpf) -> mpmath.mpf:
        c, sig = _laplace_parts(s)
        return s * (3 * sig**2 * c ** mpmath.mpf(-2.5) - 2 * sig * c ** mpmath.mpf(-1.5) + c ** mpmath.mpf(-0.5)) / 4

    with mpmath.workdps(30):
        pts = [0, 1, 10, 100, mpmath.inf]
        return float(mpmath.quad(first, pts)), float(mpmath.quad(second, pts))


def random_walk_constant() -> float:
    """``lim T E[R_T] = E[Z^2] / 2`` for the scalar random walk learnt from one trajectory."""
    return dickey_fuller_moments()[1] / 2.0


def dickey_fuller_cdf(x: float, theta_max: float = 400.0, step: float = 0.01) -> float:
    """``P(Z <= x)`` by Gil-Pelaez inversion of ``E exp(i t (N - x D))``, with the square
    root's branch followed continuously along ``t`` (composite 8-point Gauss-Legendre on
    panels growing with ``t``; accurate to ~1e-4)."""
    nodes, weights = np.polynomial.legendre.leggauss(8)
    total = 0.0
    prev = 1.0 + 0.0j
    a = 0.0
    while a < theta_max:
        b = a + step * (1.0 + a)
        ts = (a + b) / 2 + (b - a) / 2 * nodes
        for t, w in zip(ts, weights, strict=True):
            r = np.sqrt(complex(2j * t * x))
            g = np.cosh(r) - 1j * t * (np.sinh(r) / r if r != 0 else 1.0)
            root = np.sqrt(g)
            if abs(root - prev) > abs(root + prev):
                root = -root
            prev = root
            total += w * (b - a) / 2 * (np.exp(-0.5j * t) / root).imag / t
        a = b
    return 0.5 - total / math.pi


def dickey_fuller_quantile(p: float) -> float:
    """The ``p``-quantile of ``Z`` (root of :func:`dickey_fuller_cdf`)."""
    return float(brentq(lambda x: dickey_fuller_cdf(x) - p, -60.0, 10.0, xtol=1e-4))
