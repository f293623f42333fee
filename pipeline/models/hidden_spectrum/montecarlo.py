"""Monte Carlo risk of the hidden-state experiment (MATH §3 for §5).

The shared machinery simulates (:func:`~pipeline.models.simulation.simulate_outputs` from
``x_0 ~ N(0, P)``, :func:`~pipeline.models.simulation.kalman_predictions`) and scores the
FIR learners (:mod:`pipeline.models.fir_montecarlo`); this experiment's own are its stream key
``("hidden_spectrum", spectrum text, noise_ratio)``, its Kalman filter and its blocks of
1024 steps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.models.fir_montecarlo import OutputBlocks, fir_montecarlo, fir_plan
from pipeline.models.hidden_spectrum.kalman import KalmanFilter, kalman_filter, kalman_fir
from pipeline.models.hidden_spectrum.risk import best_fir_theta
from pipeline.models.hidden_spectrum.system import as_spectrum, check_block, check_observable
from pipeline.models.simulation import (
    Batch,
    kalman_predictions,
    simulate_outputs,
    stationary_start,
    trajectory_batches,
)
from pipeline.models.spectra import Spectrum

__all__ = ["montecarlo_block"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_MC_TAG = "hidden_spectrum"
_MC_BATCH = 128  # trajectories per random stream
_MC_CHUNK = 1024  # time steps per chunk of draws (fixed: the stream is consumed identically)


def montecarlo_block(
    spectrum: Spectrum | str,
    noise_ratio: npt.ArrayLike,
    learner: str,
    k: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    seed: int,
    samples: int,
    observation: str = "sum",
) -> dict[str, FloatArray]:
    """Monte Carlo estimate of ``R_T`` (MATH §3) for a block of cells of one spectrum.

    Shapes as :func:`~pipeline.models.hidden_spectrum.risk.risk_block`: ``noise_ratio`` (R,),
    ``k`` (K,), ``T`` (N,); returns ``risk``, ``risk_stderr``, ``log10_risk`` of shape
    (R, K, N), in units of the process-noise variance.

    For each noise ratio, ``samples`` trajectories of MATH §5.1 (``x_0 ~ N(0, P)``) are
    simulated in batches of 128; batch ``b`` draws from
    ``cell_rng(seed, "hidden_spectrum", spectrum.text, noise_ratio, b)`` time-major blocks of
    ``(w_t, v_t)``, so the path for horizon ``T`` is the prefix of any longer one and every
    learner, ``k`` and ``T`` sees the same paths. The Kalman predictor is run as a state
    recursion, the FIR predictions with ``scipy.signal.lfilter`` (direct form); per
    trajectory ``(1/T) sum_{t=1..T} (yhat*_t - yhat_t)^2`` comes from a running sum, and
    ``risk`` / ``risk_stderr`` are its sample mean and ``std(ddof=1)/sqrt(samples)``
    (``math.fsum``). A cell's bits depend only on (seed, spectrum, r, learner, k, T,
    samples). Cells with ``k >= T`` are exactly 0 and not simulated. Meaningful only while
    the states stay far below 1e308 (and, for ``best_fir`` at large ``T`` with marginal
    Jordan blocks or ``rho > 1``, while the deviation is not a tiny difference of huge
    predictions); workflows beyond these bounds are refused when read
    (:mod:`pipeline.experiments.simulated_range`).
    """
    sp = as_spectrum(spectrum)
    check_observable(sp, observation)
    r, k, T = check_block(noise_ratio, learner, k, T)
    samples = int(samples)
    if samples < 2:
        raise ValueError("samples must be >= 2")
    shape = (r.shape[0], k.shape[0], T.shape[0])
    risk = np.zeros(shape)
    stderr = np.zeros(shape)
    for ri, rv in enumerate(r.tolist()):
        _one(sp, rv, learner, k, T, int(seed), samples, observation, risk[ri], stderr[ri])
    with np.errstate(divide="ignore"):
        log10 = np.log10(risk)
    return {"risk": risk, "risk_stderr": stderr, "log10_risk": log10}


def _one(
    sp: Spectrum,
    r: float,
    learner: str,
    k: IntArray,
    T: IntArray,
    seed: int,
    samples: int,
    observation: str,
    risk_out: FloatArray,
    stderr_out: FloatArray,
) -> None:
    """Fill ``risk_out`` and ``stderr_out`` (K, N) of one noise ratio from ``samples`` trajectories."""
    filt = kalman_filter(sp, r, observation)
    filters = fir_plan(
        learner,
        k,
        T,
        lambda kv: kalman_fir(sp, r, kv, observation),
        lambda kv, tv: best_fir_theta(sp, r, kv, tv, observation),
    )
    if not filters:
        return
    n_steps = int(T.max()) + 1  # times 0..T_max

    def simulate(batch: Batch) -> OutputBlocks:
        return _outputs(filt, batch, n_steps)

    batches = trajectory_batches(seed, (_MC_TAG, sp.text, r), samples, _MC_BATCH)
    fir_montecarlo(filters, T, samples, batches, simulate, risk_out, stderr_out)


def _outputs(filt: KalmanFilter, batch: Batch, n_steps: int) -> OutputBlocks:
    """Time blocks ``(t0, y, yhat*)`` (steps, m) of one batch: the system from ``x_0 ~ N(0, P)``
    and its Kalman predictor from ``xhat_0 = 0``."""
    x0 = stationary_start(filt.P, batch.rng, batch.size)
    xhat = np.zeros((filt.A.shape[0], batch.size))
    for c0, y in simulate_outputs(filt.A, filt.C, filt.noise_ratio, x0, batch.rng, n_steps, _MC_CHUNK):
        pred, xhat = kalman_predictions(filt.F, filt.K, filt.C, xhat, y)
        yield c0, y, pred
