"""Per-trajectory running means at horizons, and sample means with standard errors.

The statistics of the best-learner Monte Carlo (MATH §3): :class:`HorizonMeans` keeps
per-trajectory running sums and reads them at horizons; :func:`mean_and_stderr` (exactly
rounded sums) and :func:`mean_and_stderr_pairwise` (numpy's) give the sample mean and
standard error. Their bits do not depend on how trajectories are batched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["HorizonMeans", "mean_and_stderr", "mean_and_stderr_pairwise"]

FloatArray = npt.NDArray[np.float64]


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
