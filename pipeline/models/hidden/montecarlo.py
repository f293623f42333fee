"""Monte Carlo risk of the scalar experiment (MATH §3 for §2).

The shared machinery (batches, FIR learners, running means, mean and standard error) is in
:mod:`pipeline.models.fir_montecarlo` and :mod:`pipeline.models.simulation`; what is this
experiment's own is its stream key ``(lam, noise_ratio)`` and its stream layout
(:func:`~pipeline.models.simulation.montecarlo.scalar_outputs`, older than the generic one of
:func:`~pipeline.models.simulation.simulate_outputs`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.models.fir_montecarlo import OutputBlocks, fir_montecarlo, fir_plan
from pipeline.models.hidden.kalman import kalman, kalman_fir
from pipeline.models.hidden.risk import best_fir_theta
from pipeline.models.hidden.system import check_block
from pipeline.models.simulation import Batch, scalar_outputs, trajectory_batches

__all__ = ["montecarlo_block"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_MC_BATCH = 128  # trajectories per random stream
_MC_CHUNK = 4096  # time steps per simulation chunk (fixed: partial sums carry across chunks)


def montecarlo_block(
    lam: npt.ArrayLike,
    noise_ratio: npt.ArrayLike,
    learner: str,
    k: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    seed: int,
    samples: int,
    chunk: int = _MC_CHUNK,
) -> dict[str, FloatArray]:
    """Monte Carlo estimate of ``R_T`` (MATH §3) for a block of cells.

    Shapes as :func:`~pipeline.models.hidden.risk.risk_block`: ``lam`` (L,),
    ``noise_ratio`` (R,), ``k`` (K,), ``T`` (N,); returns ``risk``, ``risk_stderr``,
    ``log10_risk`` of shape (L, R, K, N), in units of q.

    For each (lam, r), ``samples`` trajectories of MATH §2.1 (``x_0 ~ N(0, P)``)
    are simulated in batches of 128; batch ``b`` draws from
    ``cell_rng(seed, lam, noise_ratio, b)`` time-major rows ``(z_t, v_t)`` of the
    batch, so the trajectory for horizon T is the prefix of any longer one and
    every learner, k and T of the block sees the same paths (common random
    numbers). The Kalman predictor and the FIR predictions are run with
    ``scipy.signal.lfilter`` (sequential recursions) in fixed time chunks of ``chunk``
    steps (4096; a parameter so that tests reach the multi-chunk path on short
    horizons); per trajectory ``(1/T) sum_{t=1..T} (xhat_t - yhat_t)^2`` is taken
    from a running sum, and ``risk`` / ``risk_stderr`` are its sample mean and
    ``std(ddof=1)/sqrt(samples)`` computed with ``math.fsum``. A cell's bits
    therefore depend only on (seed, lam, r, learner, k, T, samples).

    Cells with ``k >= T`` have risk exactly 0 (the learner equals the Bayes
    predictor there) and are not simulated. For ``|lam| > 1`` the simulated
    states grow like ``lam^T``; results are only meaningful while
    ``lam^T`` is far below 1e308 (and, for ``best_fir``, below ~1e8, because the
    deviation is a small difference of huge predictions); workflows beyond these bounds are
    refused when read (:mod:`pipeline.experiments.simulated_range`).
    """
    lam, r, k, T = check_block(lam, noise_ratio, learner, k, T)
    samples = int(samples)
    if samples < 2:
        raise ValueError("samples must be >= 2")
    shape = (lam.shape[0], r.shape[0], k.shape[0], T.shape[0])
    risk = np.zeros(shape)
    stderr = np.zeros(shape)
    for li, lv in enumerate(lam.tolist()):
        for ri, rv in enumerate(r.tolist()):
            _one(lv, rv, learner, k, T, int(seed), samples, int(chunk), risk[li, ri], stderr[li, ri])
    with np.errstate(divide="ignore"):
        log10 = np.log10(risk)
    return {"risk": risk, "risk_stderr": stderr, "log10_risk": log10}


def _one(
    lam: float,
    r: float,
    learner: str,
    k: IntArray,
    T: IntArray,
    seed: int,
    samples: int,
    chunk: int,
    risk_out: FloatArray,
    stderr_out: FloatArray,
) -> None:
    """Fill ``risk_out`` and ``stderr_out`` (K, N) of one (lam, r)."""
    filters = fir_plan(learner, k, T, lambda kv: kalman_fir(lam, r, kv), lambda kv, tv: best_fir_theta(lam, r, kv, tv))
    if not filters:
        return
    P, K, a = (float(v) for v in kalman(lam, r))
    n_steps = int(T.max()) + 1  # times 0..T_max

    def simulate(batch: Batch) -> OutputBlocks:
        return scalar_outputs(lam, r, P, K, a, batch, n_steps, chunk)

    batches = trajectory_batches(seed, (lam, r), samples, _MC_BATCH)
    fir_montecarlo(filters, T, samples, batches, simulate, risk_out, stderr_out)
