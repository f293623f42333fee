"""Simulated trajectories of linear state-space systems, for every experiment's Monte Carlo.

MATH §3 (Monte Carlo risk) and the training data of MATH §6 (fitted learners) draw from here.

* **Streams.** Random numbers come from generators keyed by the run seed and plain values
  (:func:`pipeline.models.streams.cell_rng`), never by where a cell sits in a block plan.
  :func:`trajectory_batches` cuts ``samples`` trajectories into batches with one stream
  each; :func:`simulate_states` and :func:`simulate_outputs` also take one stream per
  trajectory.
* **Time blocks.** Noise is drawn in fixed blocks of ``chunk`` steps from ``t = 0``
  (:func:`time_blocks`), time-major within a block, so a horizon ``T`` consumes only a
  prefix of the stream: the trajectory up to ``T`` is the prefix of any longer one.
* **Systems.** :func:`simulate_states`: ``x_{t+1} = A x_t + w_t`` (fully observed);
  :func:`simulate_outputs`: ``y_t = C x_t + v_t`` with a hidden ``x``; both iterate over
  time blocks from a given start (:func:`stationary_start` draws ``x_0 ~ N(0, P)``);
  :func:`kalman_predictions` runs a predictor over a block of outputs.
* **Statistics.** :class:`HorizonMeans` keeps per-trajectory running sums and reads them at
  horizons; :func:`mean_and_stderr` (exactly rounded sums) and
  :func:`mean_and_stderr_pairwise` (numpy's) give the sample mean and standard error.

Units: ``w ~ N(0, I_n)`` and ``v ~ N(0, r)``, so states and outputs are in units of the
process-noise standard deviation and every variance in units of the process-noise variance.
Every function's arithmetic is a fixed sequence for the trajectory's own inputs: its bits do
not depend on how many trajectories, cells or blocks share a call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.models.streams import cell_rng

__all__ = [
    "Batch",
    "HorizonMeans",
    "Streams",
    "kalman_predictions",
    "mean_and_stderr",
    "mean_and_stderr_pairwise",
    "propagate",
    "simulate_outputs",
    "simulate_states",
    "stationary_start",
    "time_blocks",
    "trajectory_batches",
]

FloatArray = npt.NDArray[np.float64]

Streams = np.random.Generator | Sequence[np.random.Generator]
"""One generator for a batch of trajectories, or one generator per trajectory."""


# ---------------------------------------------------------------------------
# streams and time blocks


@dataclass(frozen=True)
class Batch:
    """Trajectories ``start .. start + size - 1`` of a sample, drawn from one stream ``rng``
    (keyed by the sample's key and ``index``)."""

    index: int
    start: int
    size: int
    rng: np.random.Generator


def trajectory_batches(seed: int, key: tuple[object, ...], samples: int, size: int) -> Iterator[Batch]:
    """``samples`` trajectories in batches of ``size`` (the last may be smaller); batch ``b``
    draws from ``cell_rng(seed, *key, b)``. ``key`` holds plain values (str, int, float)."""
    for index in range(-(-int(samples) // int(size))):
        start = index * size
        yield Batch(index, start, min(size, samples - start), cell_rng(seed, *key, index))


def time_blocks(n_steps: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of the fixed blocks of ``chunk`` steps covering times ``0 .. n_steps - 1``
    (the last block may be shorter)."""
    for start in range(0, int(n_steps), int(chunk)):
        yield start, min(start + chunk, n_steps)


def _normals(streams: Streams, steps: int, shape: tuple[int, ...], axis: int) -> FloatArray:
    """Standard normals for one time block: ``(steps, *shape)`` from one generator, or, from
    one generator per trajectory, each trajectory's ``(steps, *shape without axis)`` placed at
    index ``i`` of ``axis`` (the trajectory axis of ``shape``)."""
    if isinstance(streams, np.random.Generator):
        out: FloatArray = streams.standard_normal((steps, *shape))
        return out
    own = (steps, *shape[:axis], *shape[axis + 1 :])
    return np.stack([rng.standard_normal(own) for rng in streams], axis=axis + 1)


# ---------------------------------------------------------------------------
# fully observed: x_{t+1} = A x_t + w_t


def propagate(A: FloatArray, x: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``x_{t+1} = A x_t + w_t`` over one block, trajectories as rows.

    ``A`` (n, n); ``x`` (m, n) the states at the block's first time ``t0``; ``w`` (steps, m, n)
    the process noise ``w_{t0} .. w_{t0+steps-1}``. Returns the states ``x_{t0} ..
    x_{t0+steps-1}`` (steps, m, n) and ``x_{t0+steps}`` (m, n).
    """
    xs = np.empty(w.shape)
    for s in range(w.shape[0]):
        xs[s] = x
        x = x @ A.T + w[s]
    return xs, x


def simulate_states(
    A: npt.ArrayLike, x0: npt.ArrayLike, streams: Streams, n_steps: int, chunk: int
) -> Iterator[tuple[int, FloatArray]]:
    """Trajectories of ``x_{t+1} = A x_t + w_t``, ``w_t ~ N(0, I_n)``, for ``t = 0 .. n_steps - 1``.

    ``A`` (n, n); ``x0`` (m, n) the states at ``t = 0`` (``x_0 = 0`` in MATH §1.2 and §6.1),
    one trajectory per row; ``streams`` one generator (block noise drawn as
    ``(steps, m, n)``) or ``m`` generators (each trajectory's block drawn as ``(steps, n)``).
    Yields ``(t0, x)`` per time block of ``chunk`` steps, ``x[s] = x_{t0+s}`` (steps, m, n).
    """
    A = np.asarray(A, dtype=float)
    x = np.asarray(x0, dtype=float)
    m, n = x.shape
    for c0, c1 in time_blocks(n_steps, chunk):
        xs, x = propagate(A, x, _normals(streams, c1 - c0, (m, n), 0))
        yield c0, xs


# ---------------------------------------------------------------------------
# hidden state: x_{t+1} = A x_t + w_t, y_t = C x_t + v_t


def stationary_start(P: FloatArray, streams: Streams, m: int) -> FloatArray:
    """``m`` draws of ``x_0 ~ N(0, P)`` as columns (n, m): ``chol(P) z`` with ``z`` drawn as
    ``(n, m)`` from one generator, or as ``(n,)`` from each of ``m`` generators."""
    n = P.shape[0]
    if isinstance(streams, np.random.Generator):
        z = streams.standard_normal((n, m))
    else:
        z = np.stack([rng.standard_normal(n) for rng in streams], axis=1)
    x: FloatArray = np.linalg.cholesky(P) @ z
    return x


def simulate_outputs(
    A: FloatArray,
    C: FloatArray,
    noise_ratio: float,
    x0: FloatArray,
    streams: Streams,
    n_steps: int,
    chunk: int,
) -> Iterator[tuple[int, FloatArray]]:
    """Outputs of ``x_{t+1} = A x_t + w_t``, ``y_t = C x_t + v_t``, ``w ~ N(0, I_n)``,
    ``v ~ N(0, noise_ratio)``, for ``t = 0 .. n_steps - 1``.

    ``A`` (n, n); ``C`` (n,) the observation row; ``x0`` (n, m) the states at ``t = 0``, one
    trajectory per column. Per time block of ``chunk`` steps the noise is drawn as
    ``(steps, n + 1, m)`` from one generator (``[s, :n]`` is ``w_{t0+s}``, ``[s, n]`` is
    ``v_{t0+s} / sqrt(noise_ratio)``), or as ``(steps, n + 1)`` from each of ``m``
    generators. Yields ``(t0, y)`` with ``y[s] = y_{t0+s}`` (steps, m).
    """
    n, m = x0.shape
    sq_r = math.sqrt(noise_ratio)
    x = x0
    for c0, c1 in time_blocks(n_steps, chunk):
        draws = _normals(streams, c1 - c0, (n + 1, m), 1)
        y = np.empty((c1 - c0, m))
        for s in range(c1 - c0):
            y[s] = C @ x + sq_r * draws[s, n]
            x = A @ x + draws[s, :n]
        yield c0, y


def kalman_predictions(
    F: FloatArray, K: FloatArray, C: FloatArray, xhat: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The predictor ``yhat_t = C xhat_t``, ``xhat_{t+1} = F xhat_t + K y_t`` over one block.

    ``F`` (n, n), ``K`` (n,), ``C`` (n,); ``xhat`` (n, m) at the block's first time; ``y``
    (steps, m). Returns the predictions (steps, m) and ``xhat`` after the block (n, m).
    """
    pred = np.empty(y.shape)
    for s in range(y.shape[0]):
        pred[s] = C @ xhat
        xhat = F @ xhat + np.outer(K, y[s])
    return pred, xhat


# ---------------------------------------------------------------------------
# statistics


class HorizonMeans:
    """Per-trajectory time averages ``(1/T) sum_{t=0..T} q_t`` of a per-step quantity, at horizons.

    Feed the blocks of ``q`` (steps, m) in time order with :meth:`add`; the running sums
    are carried across blocks (``cumsum`` within a block, plus the carry), so the value at
    ``T`` does not depend on the block size's relation to ``T``. ``values`` (m, len(horizons))
    holds the averages of the horizons passed so far.
    """

    def __init__(self, horizons: Sequence[int], m: int) -> None:
        self.horizons = [int(t) for t in horizons]
        self.values: FloatArray = np.empty((m, len(self.horizons)))
        self._carry: FloatArray = np.zeros(m)

    def add(self, start: int, q: FloatArray) -> None:
        """Add the block ``q`` (steps, m) of times ``start .. start + steps - 1``."""
        cs = np.cumsum(q, axis=0) + self._carry[None, :]
        stop = start + q.shape[0]
        for ci, tv in enumerate(self.horizons):
            if start <= tv < stop:
                self.values[:, ci] = cs[tv - start] / tv
        self._carry = cs[-1].copy()


def mean_and_stderr(values: FloatArray) -> tuple[float, float]:
    """Sample mean and ``std(ddof=1) / sqrt(m)`` of ``values`` (m,), ``m >= 2``, with
    exactly rounded sums (``math.fsum``: independent of the order of the values)."""
    m = values.shape[0]
    mean = math.fsum(values.tolist()) / m
    var = math.fsum(((values - mean) ** 2).tolist()) / (m - 1)
    return mean, math.sqrt(var / m)


def mean_and_stderr_pairwise(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Sample means and ``std(ddof=1) / sqrt(m)`` along the last axis of ``values`` (K, m)
    with numpy's pairwise sums (NaN standard errors for ``m = 1``), shapes (K,)."""
    m = values.shape[-1]
    mean = values.mean(axis=-1)
    stderr = values.std(axis=-1, ddof=1) / math.sqrt(m) if m > 1 else np.full(values.shape[:-1], np.nan)
    return mean, stderr
