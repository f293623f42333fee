"""Monte Carlo risk of fixed learners on a fully observed system (MATH §3 for §1).

The trajectories come from :func:`pipeline.models.simulation.simulate_states`; what is this
experiment's own is the quantity (``||Delta x_t||^2`` for several residual matrices on the
same paths), one stream per cell for all its samples, blocks of 256 steps, and numpy's
pairwise mean and standard error.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.models.simulation import mean_and_stderr_pairwise, simulate_states

__all__ = ["montecarlo_risk"]

FloatArray = NDArray[np.float64]


def montecarlo_risk(
    A: FloatArray,
    Deltas: FloatArray,
    T: int,
    samples: int,
    rng: np.random.Generator,
    chunk: int = 256,
) -> tuple[FloatArray, FloatArray]:
    """Mean over ``samples`` trajectories of ``(1/T) sum_{t<T} ||Delta x_t||^2``.

    ``x_0 = 0``, ``x_{t+1} = A x_t + w_t``, ``w ~ N(0, I)`` (``A`` (n, n)). ``Deltas`` (K, n, n)
    are evaluated on the same trajectories. Returns (mean, stderr), each (K,), in units of
    the process-noise variance. Noise is drawn in time chunks of fixed size, so the result
    depends only on ``rng``'s stream. Explosive systems overflow float64 past ~1e154;
    workflows whose states would exceed 1e100 are refused when read
    (:mod:`pipeline.experiments.simulated_range`).
    """
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    K = Deltas.shape[0]
    acc = np.zeros((K, samples))
    for _, xs in simulate_states(A, np.zeros((samples, n)), rng, int(T), chunk):
        for x in xs:
            y = np.einsum("kij,sj->ksi", Deltas, x)
            acc += np.einsum("ksi,ksi->ks", y, y)
    return mean_and_stderr_pairwise(acc / T)
