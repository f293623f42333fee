"""One simulation per (system, noise ratio, fit) serving every ``k``, ``T`` and ``m`` of a block.

A fitted-filter cell is (system, noise ratio, ``k``, ``T``, ``m`` trajectories, fit). Its cost
is the simulation of its training set (:mod:`.statistics`, shared by every ``k``, ``T``, ``m``
on the grid: MATH §6.3); after that each cell is a small certified solve (:mod:`.least_squares`)
and an exact risk (:mod:`.risk`). A cell's numbers depend on the run seed, its own coordinates
and ``k``'s place below the block's largest ``k`` not at all: the running sums a cell reads are
the same whatever grid or ``k_max`` they were accumulated for (the sums of a smaller ``k_max``
are a subset, accumulated identically), so its bits never depend on the block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.models.fitted_fir.least_squares import fit_cells
from pipeline.models.fitted_fir.risk import FilterRisk
from pipeline.models.fitted_fir.statistics import check_grid, training_statistics
from pipeline.models.fitted_fir.system import FittedSystem, fitted_system
from pipeline.models.hidden_spectrum.risk import risk_block

__all__ = ["FittedFilters", "fit_training_set", "fitted_fir_block"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FittedFilters:
    """The fitted filters of one training set over a grid ``k`` (K,), ``T`` (N,), ``m`` (M,).

    ``theta`` (K, N, M, k_max) float64 taps (NaN beyond ``k``; zero for taps ``> T``) and
    ``theta_lo`` the remainder, so ``theta + theta_lo`` is the fitted filter to ~1e-32 relative
    (the float64 ``theta`` alone does not determine the risk of a marginal system at large
    ``T``); ``underdetermined`` (K, N, M) ``k > T`` (minimum-norm fit); ``theta_bits``
    (K, N, M) certified relative accuracy of ``theta`` given the data (bits); ``risk`` and
    ``log10_risk`` (K, N, M) the exact ``R_T`` of the fitted filter (units of the process-noise
    variance; ``risk = inf`` where it overflows float64, ``log10_risk`` stays exact).
    """

    k: IntArray
    T: IntArray
    m: IntArray
    theta: FloatArray
    theta_lo: FloatArray
    underdetermined: BoolArray
    theta_bits: FloatArray
    risk: FloatArray
    log10_risk: FloatArray


def fit_training_set(
    system: FittedSystem,
    *,
    seed: int,
    fit: int,
    k: Sequence[int] | npt.ArrayLike,
    T: Sequence[int] | npt.ArrayLike,
    trajectories: Sequence[int] | npt.ArrayLike,
    risks: FilterRisk | None = None,
) -> FittedFilters:
    """Simulate training set ``fit`` of ``system`` and fit and evaluate every cell of the grid.

    ``k`` (K,) filter lengths ``>= 1``, ``T`` (N,) horizons ``>= 1``, ``trajectories`` (M,)
    counts ``m >= 1``, each strictly increasing. ``risks`` may be shared between the fits of
    one (system, noise ratio) in one thread.
    """
    kg = check_grid("k", k, 1)
    stats = training_statistics(system, seed=seed, fit=fit, T=T, trajectories=trajectories, k_max=int(kg[-1]))
    Tg, mg = stats.T, stats.m
    shape = (kg.size, Tg.size, mg.size)
    theta = np.full((*shape, int(kg[-1])), np.nan)
    theta_lo = np.full(theta.shape, np.nan)
    under = np.zeros(shape, dtype=bool)
    bits = np.zeros(shape)
    risk = np.zeros(shape)
    log10 = np.zeros(shape)
    fr = risks if risks is not None else FilterRisk(system)
    for iT, tv in enumerate(Tg.tolist()):
        for im in range(mg.size):
            fits = fit_cells(stats, iT, im, kg.tolist())
            done: dict[int, tuple[float, float]] = {}
            for ik, kv in enumerate(kg.tolist()):
                f = fits[kv]
                hi, lo = f.as_float()
                theta[ik, iT, im, :kv] = hi
                theta_lo[ik, iT, im, :kv] = lo
                under[ik, iT, im] = f.underdetermined
                bits[ik, iT, im] = f.bits
                key = min(kv, tv)
                if key not in done:
                    done[key] = fr.risk(f.theta, tv)
                risk[ik, iT, im], log10[ik, iT, im] = done[key]
    return FittedFilters(kg, Tg, mg, theta, theta_lo, under, bits, risk, log10)


def fitted_fir_block(
    system: str | float,
    noise_ratio: npt.ArrayLike,
    k: npt.ArrayLike,
    T: npt.ArrayLike,
    trajectories: npt.ArrayLike,
    fits: npt.ArrayLike,
    *,
    seed: int,
    observation: str = "sum",
) -> dict[str, FloatArray]:
    """Least-squares FIR filters of a block of cells of one system (MATH §6.2), and their risks.

    Parameters
    ----------
    system : str or float
        A spectrum text (experiment ``hidden``, ``spectrum`` axis) or a scalar ``lam``
        (``lam`` axis; the one-term spectrum ``repr(float(lam))``, MATH §5.2).
    noise_ratio : (R,) float, ``> 0``
    k : (K,) int, strictly increasing, ``>= 1``
    T : (N,) int, strictly increasing, ``>= 1``
    trajectories : (M,) int, strictly increasing, ``>= 1`` (``m``, trajectories per training set)
    fits : (F,) int, ``>= 0`` (training-set indices; a fit's data depend on its index only)
    seed : int, the run seed

    Returns
    -------
    dict of float64 arrays: ``risk``, ``log10_risk``, ``theta_bits``, ``underdetermined``
    (0/1) of shape (R, K, N, M, F); ``theta``, ``theta_lo`` (R, K, N, M, F, k_max) NaN-padded;
    ``bias``, ``bias_log10`` (R, K, N): the exact ``best_fir`` risk at ``T`` (the ``m -> inf``
    limit, MATH §6.5; 0 and ``-inf`` for ``k >= T``). Never NaN in ``risk``/``log10_risk``.
    """
    r = np.atleast_1d(np.asarray(noise_ratio, dtype=np.float64))
    fg = np.atleast_1d(np.asarray(fits))
    if r.ndim != 1 or fg.ndim != 1:
        raise ValueError("noise_ratio and fits must be 1-D")
    if not np.issubdtype(fg.dtype, np.integer) or np.any(fg < 0):
        raise ValueError(f"fits = {fg.tolist()}: must be integers >= 0")
    kg = check_grid("k", k, 1)
    Tg = check_grid("T", T, 1)
    mg = check_grid("trajectories", trajectories, 1)
    K, N, M, F, R = kg.size, Tg.size, mg.size, fg.size, r.size
    out: dict[str, FloatArray] = {
        name: np.zeros((R, K, N, M, F)) for name in ("risk", "log10_risk", "theta_bits", "underdetermined")
    }
    out["theta"] = np.full((R, K, N, M, F, int(kg[-1])), np.nan)
    out["theta_lo"] = np.full(out["theta"].shape, np.nan)
    for ri, rv in enumerate(r.tolist()):
        sysr = fitted_system(system, rv, observation)
        fr = FilterRisk(sysr)
        for fi, fv in enumerate(fg.tolist()):
            got = fit_training_set(sysr, seed=seed, fit=int(fv), k=kg, T=Tg, trajectories=mg, risks=fr)
            out["risk"][ri, ..., fi] = got.risk
            out["log10_risk"][ri, ..., fi] = got.log10_risk
            out["theta_bits"][ri, ..., fi] = got.theta_bits
            out["underdetermined"][ri, ..., fi] = got.underdetermined
            out["theta"][ri, :, :, :, fi] = got.theta
            out["theta_lo"][ri, :, :, :, fi] = got.theta_lo
    text = fitted_system(system, float(r[0]), observation).text
    bias = risk_block(text, r, "best_fir", kg, Tg, observation)
    out["bias"] = bias["risk"]
    out["bias_log10"] = bias["log10_risk"]
    return out
