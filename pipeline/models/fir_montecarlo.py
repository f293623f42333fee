"""Monte Carlo risk of FIR learners on a hidden-state system (MATH §3, for §2 and §5).

A learner is a length-``k`` FIR filter ``yhat_t = sum_{j<=min(k,t)} theta_j y_{t-j}`` and its
risk ``R_T = (1/T) sum_{t=1..T} E (yhat*_t - yhat_t)^2``, ``yhat*`` the Bayes (Kalman)
predictor. An experiment supplies its filters (:func:`fir_plan`), its batches of
trajectories (:func:`pipeline.models.simulation.trajectory_batches`) and, per batch, the
time blocks of outputs ``y`` and Bayes predictions; :func:`fir_montecarlo` runs every filter
over the same paths (common random numbers for every learner, ``k`` and ``T``), keeps each
trajectory's running mean of the squared deviation at the horizons
(:class:`~pipeline.models.simulation.HorizonMeans`) and stores the sample mean and standard
error of each cell. Risks are in units of the process-noise variance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.models.simulation import Batch, HorizonMeans, mean_and_stderr

__all__ = ["Cell", "FirFilter", "OutputBlocks", "fir_deviations", "fir_montecarlo", "fir_plan", "fir_predictions"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Cell = tuple[int, int]
"""A cell of a block's (k, T) plane: (index into k, index into T)."""

OutputBlocks = Iterable[tuple[int, FloatArray, FloatArray]]
"""Time blocks ``(t0, y, yhat*)`` of one batch, in time order: outputs and Bayes predictions (steps, m)."""


@dataclass(frozen=True)
class FirFilter:
    """The taps ``theta`` (k,) of one FIR learner and the block cells it serves."""

    theta: FloatArray
    cells: tuple[Cell, ...]


def fir_plan(
    learner: str,
    k: IntArray,
    T: IntArray,
    truncated: Callable[[int], FloatArray],
    best: Callable[[int, int], FloatArray],
) -> list[FirFilter]:
    """The filters a block's Monte Carlo runs, each with the cells (``k < T`` only) it serves.

    ``truncated_kalman``: one filter ``truncated(k)`` per ``k`` (K,), serving every horizon;
    ``best_fir``: one filter ``best(k, T)`` per cell (it depends on the horizon ``T`` (N,)).
    """
    filters: list[FirFilter] = []
    if learner == "truncated_kalman":
        for ki, kv in enumerate(k):
            cells = tuple((ki, ni) for ni, tv in enumerate(T) if tv > kv)
            if cells:
                filters.append(FirFilter(truncated(int(kv)), cells))
        return filters
    for ki, kv in enumerate(k):
        for ni, tv in enumerate(T):
            if tv > kv:
                filters.append(FirFilter(best(int(kv), int(tv)), ((ki, ni),)))
    return filters


def fir_predictions(theta: FloatArray, y: FloatArray, zi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``yhat_t = sum_j theta_j y_{t-j}`` along axis 0 of ``y`` (steps, m), with the filter
    state ``zi`` (max(k, 1), m) carried from the previous block; returns predictions and state."""
    from scipy.signal import lfilter  # imported here: scipy.signal costs ~1 s at startup

    th = theta if theta.shape[0] else np.zeros(1)
    b = np.concatenate(([0.0], th))
    den = np.zeros(th.shape[0] + 1)
    den[0] = 1.0  # a = [1, 0, ...]: forces the sequential direct-form path
    yhat, zf = lfilter(b, den, y, axis=0, zi=zi)
    return np.asarray(yhat), np.asarray(zf)


def fir_deviations(filters: list[FirFilter], T: IntArray, blocks: OutputBlocks, m: int) -> list[FloatArray]:
    """Per trajectory, ``(1/T) sum_{t=1..T} (yhat*_t - yhat_t)^2`` of every filter at its cells:
    one (m, len(cells)) array per filter, from the time blocks of one batch of ``m`` paths."""
    zi = [np.zeros((max(f.theta.shape[0], 1), m)) for f in filters]
    means = [HorizonMeans([int(T[ni]) for _, ni in f.cells], m) for f in filters]
    for c0, y, pred in blocks:
        for fi, f in enumerate(filters):
            yhat, zi[fi] = fir_predictions(f.theta, y, zi[fi])
            d = pred - yhat
            means[fi].add(c0, d * d)
    return [mf.values for mf in means]


def fir_montecarlo(
    filters: list[FirFilter],
    T: IntArray,
    samples: int,
    batches: Iterable[Batch],
    simulate: Callable[[Batch], OutputBlocks],
    risk_out: FloatArray,
    stderr_out: FloatArray,
) -> None:
    """Fill ``risk_out`` and ``stderr_out`` (K, N) at the filters' cells with the sample mean and
    standard error over ``samples`` trajectories; ``simulate(batch)`` gives a batch's blocks."""
    per_traj = [np.empty((samples, len(f.cells))) for f in filters]
    for batch in batches:
        for fi, vals in enumerate(fir_deviations(filters, T, simulate(batch), batch.size)):
            per_traj[fi][batch.start : batch.start + batch.size] = vals
    for fi, f in enumerate(filters):
        for ci, (ki, ni) in enumerate(f.cells):
            risk_out[ki, ni], stderr_out[ki, ni] = mean_and_stderr(per_traj[fi][:, ci])
