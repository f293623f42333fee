"""Boundedness in ``T`` (MATH §5.4): the exact rank test of the vanishing conditions, and ``critical_k``."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from flint import fmpz_mat

from pipeline.models.hidden_spectrum.system import as_spectrum, check_learner, check_observable
from pipeline.models.spectra import Spectrum

__all__ = ["bounded", "critical_k"]


def _cpow(z: tuple[Fraction, Fraction], q: int) -> tuple[Fraction, Fraction]:
    re, im = Fraction(1), Fraction(0)
    a, b = z
    base_re, base_im = a, b
    while q:
        if q & 1:
            re, im = re * base_re - im * base_im, re * base_im + im * base_re
        base_re, base_im = base_re * base_re - base_im * base_im, 2 * base_re * base_im
        q >>= 1
    return re, im


def _integer_row(vals: list[Fraction]) -> list[int]:
    den = 1
    for v in vals:
        den = den * v.denominator // math.gcd(den, v.denominator)
    return [int(v * den) for v in vals]


@lru_cache(maxsize=4096)
def _hermite_entry(lam: tuple[Fraction, Fraction], p: int, q: int) -> tuple[Fraction, Fraction]:
    """``binom(q, p) lam^(q-p)`` as (real, imaginary) parts; 0 for ``q < p``."""
    if q < p:
        return Fraction(0), Fraction(0)
    re, im = _cpow(lam, q - p)
    c = math.comb(q, p)
    return re * c, im * c


def _hermite_ranks(text: str, k: int) -> tuple[int, int]:
    """``(rank M, rank [M | b])`` of the vanishing conditions of the error transfer, exactly.

    The best_fir deviation stays bounded iff ``x^k - sum_j theta_j x^(k-j)`` vanishes to order
    ``m_lam`` at every eigenvalue with ``|lam| >= 1`` (``C A_u^k (I - sum theta_j A_u^-j) = 0``
    with ``(A_u, C_u)`` observable and cyclic): rows ``binom(k-j, p) lam^(k-j-p)``,
    right-hand side ``binom(k, p) lam^(k-p)``, ``p < m_lam``; a complex pair contributes the
    real and imaginary parts of its condition. ``lam`` is taken as the exact rational value
    of the float entries of ``A`` (``a``, ``b`` of the pair block); ranks over the rationals
    (python-flint ``fmpz_mat.rank`` on integer-scaled rows).
    """
    sp = as_spectrum(text)
    rows_m: list[list[int]] = []
    rows_a: list[list[int]] = []
    for blk in sp.blocks:
        g = sp.groups[blk.group]
        if not g.unstable:
            continue
        lam = (Fraction(blk.real), Fraction(blk.imag))
        for p in range(blk.m):
            ents = [_hermite_entry(lam, p, k - j) for j in range(1, k + 1)] + [_hermite_entry(lam, p, k)]
            parts = [0, 1] if blk.is_pair else [0]
            for part in parts:
                vals = [e[part] for e in ents]
                row = _integer_row(vals)
                rows_a.append(row)
                rows_m.append(row[:-1])
    if not rows_a:
        return 0, 0
    rank_a = fmpz_mat(rows_a).rank()
    rank_m = fmpz_mat(rows_m).rank() if k > 0 else 0
    return rank_m, rank_a


def bounded(spectrum: Spectrum | str, learner: str, k: npt.ArrayLike, observation: str = "sum") -> np.ndarray:
    """Whether ``R_T`` stays bounded as ``T -> inf``, per filter length; bool, shape (K,).

    ``best_fir``: the exact rank test of the ``n_u`` vanishing conditions (:func:`_hermite_ranks`),
    which involves only the eigenvalues with ``|lam| >= 1``: independent of ``T`` and of the
    noise ratio. ``truncated_kalman``: bounded iff ``n_u = 0`` — its error ``C F^k xhat_{t-k}``
    vanishes on the unstable modes only if the Kalman tail ``sum_{j>k} G_j lam^-j`` vanishes at
    every unstable eigenvalue, which no Kalman filter of an observable system does generically
    (MATH §5.4); the tests check ``|C F^k|`` on the unstable coordinates is far from 0.
    """
    sp = as_spectrum(spectrum)
    check_learner(learner)
    check_observable(sp, observation)
    ks = np.atleast_1d(np.asarray(k)).astype(np.int64)
    if learner == "truncated_kalman":
        return np.full(ks.shape, sp.n_unstable == 0)
    out = np.empty(ks.shape, dtype=bool)
    for i, kv in enumerate(ks):
        if kv < 0:
            raise ValueError("k must be >= 0")
        rm, ra = _hermite_ranks(sp.text, int(kv))
        out[i] = rm == ra
    return out


def critical_k(spectrum: Spectrum | str, learner: str, observation: str = "sum") -> int | None:
    """``min {k : bounded}`` measured by the rank test (``None``: no ``k <= n + 16`` is bounded)."""
    sp = as_spectrum(spectrum)
    for kv in range(0, sp.n + 17):
        if bounded(sp, learner, [kv], observation)[0]:
            return kv
    return None
