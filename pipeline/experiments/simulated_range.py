"""How large a Monte Carlo's simulated states grow, and the grids ``method = "montecarlo"`` refuses.

The Monte Carlo of every experiment (MATH §3) simulates float64 trajectories of
``x_{t+1} = A x_t + w_t`` (``w ~ N(0, I)``, in units of the process noise). For an explosive
system (``rho(A) > 1``, or a marginal Jordan block over a long horizon) the states grow
without bound: past ~1e154 their squares overflow to ``inf`` and a risk becomes ``inf`` or
NaN, and long before that a quantity that is a small difference of state-sized numbers has
lost every digit. A workflow whose states would grow past a bound is therefore refused up
front, when the workflow is read (one line, exit 2, nothing written), rather than writing
garbage. The bound, and its measure:

* ``s(T) = sqrt(E ||x_T||^2) = sqrt(tr Sigma_T)``, the root-mean-square state norm at the
  grid's largest horizon ``T``, ``Sigma_T = A^T P0 A^T' + sum_{i<T} A^i A^i'`` (``x_0 ~ N(0, P0)``;
  ``P0 = 0`` for the observed experiment, the Kalman ``P`` for the hidden ones). An
  orthogonal change of basis leaves it unchanged.
* :data:`STATE_BOUND` = 1e100: ``s(T) <= 1e100`` for every simulated system. Squares of the
  states and their sums over ``2^52`` steps stay below 1e216, far from overflow.
* :data:`DIFFERENCE_BOUND` = 1e8 where a result is a small difference of state-sized
  numbers: ``best_fir``'s deviation ``yhat* - yhat`` (two predictions as large as the
  states, whose difference stays O(1)), and the normal equations a fitted learner forms from
  simulated states. Rounding leaves such a difference ~``s * 2^-53 <= 1e-8`` of the noise.

Exact methods are not affected (they never simulate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import ConfigError

__all__ = ["DIFFERENCE_BOUND", "STATE_BOUND", "check_simulated_range", "montecarlo_bound", "rms_state"]

FloatArray = npt.NDArray[np.float64]

STATE_BOUND = 1e100
DIFFERENCE_BOUND = 1e8


def rms_state(A: npt.ArrayLike, T: int, P0: npt.ArrayLike | None = None) -> float:
    """``sqrt(E ||x_T||^2)`` for ``x_{t+1} = A x_t + w_t``, ``w ~ N(0, I)``, ``x_0 ~ N(0, P0)``.

    ``A`` (n, n), ``P0`` (n, n) or None (``x_0 = 0``), ``T >= 0`` steps; in units of the
    process-noise standard deviation. By binary doubling of ``(A^s, sum_{i<s} A^i A^i')``
    in float64, ``O(n^3 log T)``; ``inf`` where it overflows float64 (a partial sum, a lower
    bound of ``Sigma_T``, overflows only if ``Sigma_T`` does).
    """
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[0]
    T = int(T)
    if T < 0:
        raise ValueError(f"T must be >= 0, got {T}")
    with np.errstate(over="ignore", invalid="ignore"):
        acc_M, acc_S = np.eye(n), np.zeros((n, n))  # A^a, sum_{i<a} A^i A^i' for the bits done
        pow_M, pow_S = A.copy(), np.eye(n)  # the same for a = 2^j
        bits = T
        while bits:
            if bits & 1:
                acc_S = acc_S + acc_M @ pow_S @ acc_M.T
                acc_M = acc_M @ pow_M
            bits >>= 1
            if bits:
                pow_S = pow_S + pow_M @ pow_S @ pow_M.T
                pow_M = pow_M @ pow_M
                if not np.isfinite(np.trace(pow_S)):  # 2^j <= T: Sigma_T overflows too
                    return math.inf
        if P0 is not None:
            acc_S = acc_S + acc_M @ np.asarray(P0, dtype=np.float64) @ acc_M.T
        tr = float(np.trace(acc_S))
    return math.sqrt(tr) if math.isfinite(tr) else math.inf  # NaN: inf - inf of an overflow


def montecarlo_bound(learners: Iterable[str]) -> tuple[float, str]:
    """``(bound, reason)`` for a FIR Monte Carlo running ``learners``: :data:`DIFFERENCE_BOUND`
    if ``best_fir`` is among them (its deviation is a small difference of state-sized
    predictions), else :data:`STATE_BOUND`."""
    if "best_fir" in learners:
        return DIFFERENCE_BOUND, "best_fir's deviation is a small difference of state-sized predictions"
    return STATE_BOUND, "squares and sums of states stay finite"


def check_simulated_range(
    systems: Iterable[tuple[str, npt.ArrayLike, npt.ArrayLike | None]],
    T: npt.ArrayLike,
    bound: float,
    reason: str,
) -> None:
    """ConfigError on ``grid.T`` unless every system's :func:`rms_state` at ``max(T)`` is ``<= bound``.

    ``systems``: ``(label, A (n, n), P0 (n, n) or None)`` per simulated system, the label
    naming it in the message (e.g. ``"lam = 1.5, noise_ratio = 2.0"``); ``bound`` one of
    :data:`STATE_BOUND`, :data:`DIFFERENCE_BOUND`; ``reason`` says why that bound (one clause).
    """
    T_max = int(np.max(np.asarray(T)))
    for label, A, P0 in systems:
        s = rms_state(A, T_max, P0)
        if not s <= bound:
            size = "beyond float64" if math.isinf(s) else f"{s:.3g}"
            raise ConfigError(
                "grid.T",
                T_max,
                f'method = "montecarlo" would simulate states of root-mean-square norm {size} at T = {T_max} '
                f'for {label}; allowed while at most {bound:g} ({reason}): use method = "exact" or a smaller T',
            )
