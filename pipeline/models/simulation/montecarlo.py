"""Trajectories of linear state-space systems for the best-learner Monte Carlo (MATH §3).

* **Streams.** Random numbers come from generators keyed by the run seed and plain values
  (:mod:`.streams`), never by where a cell sits in a block plan; :func:`simulate_states`
  and :func:`simulate_outputs` take one stream per batch or one per trajectory.
* **Time blocks.** Noise is drawn in fixed blocks of ``chunk`` steps from ``t = 0``
  (:func:`~.streams.time_blocks`), time-major within a block, so a horizon ``T`` consumes
  only a prefix of the stream: the trajectory up to ``T`` is the prefix of any longer one.
* **Systems.** :func:`simulate_states`: ``x_{t+1} = A x_t + w_t`` (fully observed);
  :func:`simulate_outputs`: ``y_t = C x_t + v_t`` with a hidden ``x``; both iterate over
  time blocks from a given start (:func:`stationary_start` draws ``x_0 ~ N(0, P)``);
  :func:`kalman_predictions` runs a predictor over a block of outputs;
  :func:`scalar_outputs` is the scalar system (MATH §2.1) in its own stream layout.
* **Statistics** of the trajectories are in :mod:`.estimates`.

Units: ``w ~ N(0, I_n)`` and ``v ~ N(0, r)``, so states and outputs are in units of the
process-noise standard deviation and every variance in units of the process-noise variance.
Every function's arithmetic is a fixed sequence for the trajectory's own inputs: its bits do
not depend on how many trajectories, cells or blocks share a call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from pipeline.models.simulation.streams import Batch, Streams, block_normals, time_blocks

__all__ = [
    "kalman_predictions",
    "propagate",
    "scalar_outputs",
    "simulate_outputs",
    "simulate_states",
    "stationary_start",
]

FloatArray = npt.NDArray[np.float64]


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
        xs, x = propagate(A, x, block_normals(streams, c1 - c0, (m, n), 0))
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
        draws = block_normals(streams, c1 - c0, (n + 1, m), 1)
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


def scalar_outputs(
    lam: float, r: float, P: float, K: float, a: float, batch: Batch, n_steps: int, chunk: int
) -> Iterator[tuple[int, FloatArray, FloatArray]]:
    """Outputs and Kalman predictions of the scalar system (MATH §2.1) in time blocks.

    ``x_{t+1} = lam x_t + w_t``, ``y_t = x_t + v_t``, ``w ~ N(0, 1)``, ``v ~ N(0, r)``, from
    ``x_0 ~ N(0, P)``; ``K``, ``a`` the steady Kalman gain and closed loop
    (``xhat_{t+1} = a xhat_t + K y_t``, ``xhat_0 = 0``). Per time block of ``chunk`` steps the
    batch draws ``(steps, 2, m)`` from ``batch.rng``, rows ``(z_t, v_t / sqrt(r))``, with
    ``x_t = lam x_{t-1} + z_t`` from ``x_{-1} = 0`` and ``z_0`` scaled by ``sqrt(P)``; the
    state and the predictor run as ``scipy.signal.lfilter`` recursions. Yields
    ``(t0, y, xhat)``, each (steps, m), for ``t = 0 .. n_steps - 1``.
    """
    from scipy.signal import lfilter  # imported here: scipy.signal costs ~1 s at startup

    nb = batch.size
    sq_p = math.sqrt(P)
    sq_r = math.sqrt(r)
    zi_x = np.zeros((1, nb))
    zi_k = np.zeros((1, nb))
    for c0, c1 in time_blocks(n_steps, chunk):
        draws = batch.rng.standard_normal((c1 - c0, 2, nb))
        z = draws[:, 0, :]
        if c0 == 0:
            z = z.copy()
            z[0] *= sq_p  # x_0 ~ N(0, P)
        x, zi_x = lfilter([1.0], [1.0, -lam], z, axis=0, zi=zi_x)
        y = x + sq_r * draws[:, 1, :]
        xhat, zi_k = lfilter([0.0, K], [1.0, -a], y, axis=0, zi=zi_k)
        yield c0, y, xhat
