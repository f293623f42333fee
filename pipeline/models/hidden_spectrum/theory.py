"""Theory of the hidden-state experiment (MATH §5.4): counts, growth exponents, critical lengths, slopes."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pipeline.models.hidden_spectrum.kalman import kalman_filter
from pipeline.models.hidden_spectrum.system import as_spectrum, check_learner
from pipeline.models.spectra import Spectrum

__all__ = [
    "closed_loop_period",
    "critical_k_theory",
    "growth_exponent_theory",
    "kstar_slope_theory",
    "max_marginal_block",
    "n_unstable",
]

FloatArray = npt.NDArray[np.float64]


def n_unstable(spectrum: Spectrum | str) -> int:
    """``n_u``: total algebraic multiplicity of the eigenvalues with ``|lam| >= 1`` (a pair counts twice)."""
    return as_spectrum(spectrum).n_unstable


def max_marginal_block(spectrum: Spectrum | str) -> int:
    """``m``: the largest Jordan block (in eigenvalues) among ``|lam| = 1``; 0 if there is none."""
    sp = as_spectrum(spectrum)
    return max((max(g.sizes) for g in sp.groups if g.modulus == 1.0), default=0)


def growth_exponent_theory(spectrum: Spectrum | str, learner: str, k: int | None = None) -> float:
    """Theory of ``g = d ln R_T / d ln T`` for large ``T`` (MATH §5.4).

    ``truncated_kalman``: ``0`` if ``n_u = 0``; ``2m - 1`` if ``rho(A) = 1`` (every ``k``);
    ``+inf`` if ``rho(A) > 1`` (convention: ``inf`` marks exponential growth, faster than
    every power of ``T``).

    ``best_fir``: without ``k`` the exponent at ``k >= n_u``, i.e. ``0`` (bounded). With
    ``k``: ``0`` if ``k >= n_u``; otherwise the ``k`` taps are spent on the ``n_u``
    vanishing conditions where they remove the fastest growth: if they cannot cover every
    eigenvalue with ``|lam| > 1`` the growth is exponential (``inf``); the rest lower the
    deficits ``m_lam - k_lam`` of the marginal eigenvalues (a complex pair costs two taps
    per order), and the exponent is ``2 max(m_lam - k_lam) - 1`` — for one marginal block
    of size ``m`` and ``k < m``: ``2(m - k) - 1``.
    """
    sp = as_spectrum(spectrum)
    check_learner(learner)
    nu = sp.n_unstable
    if nu == 0:
        return 0.0
    if learner == "truncated_kalman":
        return math.inf if sp.spectral_radius > 1.0 else float(2 * max_marginal_block(sp) - 1)
    if k is None or int(k) >= nu:
        return 0.0
    k = int(k)
    outside = sum(len(g.indices) for g in sp.groups if g.modulus > 1.0)
    if k < outside:
        return math.inf
    left = k - outside
    deficits = [[g.multiplicity, 2 if g.is_pair else 1] for g in sp.groups if g.modulus == 1.0]
    while True:  # water-filling: lower the largest deficit while a tap pays for it
        deficits.sort(key=lambda d: -d[0])
        top = deficits[0]
        if top[0] == 0 or top[1] > left:
            break
        top[0] -= 1
        left -= top[1]
    worst = max(d[0] for d in deficits)
    return float(2 * worst - 1) if worst > 0 else 0.0


def critical_k_theory(spectrum: Spectrum | str, learner: str) -> int | None:
    """Theory of the critical filter length (MATH §5.4).

    ``best_fir``: ``n_u`` (0 when ``n_u = 0``). ``truncated_kalman``: ``0`` if ``n_u = 0``,
    else ``None`` (never bounded).
    """
    sp = as_spectrum(spectrum)
    check_learner(learner)
    if learner == "best_fir":
        return sp.n_unstable
    return 0 if sp.n_unstable == 0 else None


def kstar_slope_theory(spectrum: Spectrum | str, noise_ratio: npt.ArrayLike, observation: str = "sum") -> FloatArray:
    """Slope of ``k*(T; tau)`` in ``ln T`` for ``truncated_kalman`` (MATH §5.4), shape (R,).

    ``(2m - 1) / (2 ln(1 / rho(F)))`` at ``rho(A) = 1``; ``0`` if ``n_u = 0``; ``+inf`` if
    ``rho(A) > 1`` (``k*`` then grows linearly in ``T``). Dimensionless.
    """
    sp = as_spectrum(spectrum)
    r = np.atleast_1d(np.asarray(noise_ratio, dtype=np.float64))
    if r.ndim != 1:
        raise ValueError("noise_ratio must be 1-D")
    if sp.n_unstable == 0:
        return np.zeros(r.shape)
    if sp.spectral_radius > 1.0:
        return np.full(r.shape, np.inf)
    m = max_marginal_block(sp)
    rho = np.array([kalman_filter(sp, float(v), observation).closed_loop_radius for v in r])
    return (2 * m - 1) / (2.0 * np.log(1.0 / rho))


def closed_loop_period(F: npt.ArrayLike, k_max: int) -> float:
    """Longest oscillation period, in taps, of the dominant modes of the closed loop ``F`` (n, n).

    A mode ``mu`` is dominant when it stays within a factor 2 of the slowest one over the
    filter lengths ``k <= k_max``: ``(|mu| / rho(F))^k_max >= 1/2``. With ``theta`` the
    arguments of the dominant modes in ``(0, pi]``, the periods are ``2 pi / theta`` and, where
    dominant modes beat against each other, ``2 pi / |theta_i - theta_j|``; the result is the
    longest, ``0`` when every dominant eigenvalue is a positive real (no oscillation). The
    truncation risk of a length-``k`` filter carries the factor ``|sum_i c_i mu_i^k|^2``, whose
    near-zeros recur with this period, so ``k*(T; tau)`` is a staircase that deviates from its
    ``ln T`` asymptote by about one period (docs/theory.md §5).
    """
    mu = np.linalg.eigvals(np.asarray(F, dtype=np.float64))
    mod = np.abs(mu)
    rho = float(mod.max()) if mu.size else 0.0
    if rho == 0.0:
        return 0.0
    theta = np.abs(np.angle(mu[mod >= rho * 0.5 ** (1.0 / max(int(k_max), 1))]))
    theta = np.unique(np.round(theta[theta > 1e-9], 12))
    gaps = np.abs(theta[:, None] - theta[None, :])[np.triu_indices(theta.size, 1)]
    freqs = np.concatenate([theta, gaps[gaps > 1e-9]])
    return float(2.0 * np.pi / freqs.min()) if freqs.size else 0.0
