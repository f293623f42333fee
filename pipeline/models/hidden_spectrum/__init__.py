"""Experiment ``hidden`` with any spectrum: FIR learners of a noisily observed system (MATH.md §5).

Model (process noise ``w ~ N(0, I_n)``; every risk is in units of the process-noise variance)::

    x_{t+1} = A x_t + w_t,   y_t = C x_t + v_t,   v ~ N(0, r),   x_0 ~ N(0, P),   r = noise_ratio

``A`` is the real Jordan matrix of a spectrum (MATH §1.1) and ``C`` (``observation = "sum"``)
the sum of the first coordinate of every Jordan block. The Bayes predictor is the
stationary Kalman predictor ``xhat_{t+1} = F xhat_t + K y_t`` (``xhat_0 = 0``), exact from
``t = 0``; ``yhat*_t = C xhat_t = sum_{j<=t} G_j y_{t-j}``, ``G_j = C F^(j-1) K``. A learner
is a length-``k`` FIR filter ``yhat_t = sum_{j<=min(k,t)} theta_j y_{t-j}`` and its risk
``R_T = (1/T) sum_{t=1..T} E (yhat*_t - yhat_t)^2``.

Modules: :mod:`.system` (limits, observation row, observability, input checks),
:mod:`.kalman` (the predictor at 320 bits), :mod:`.symmetry` (the exact sign symmetry of a
self-negative spectrum), :mod:`.cells` (one cell's exact risk in ball arithmetic),
:mod:`.zeros` (exact zeros decided in integers), :mod:`.risk` (the exact kernel and the best filter), :mod:`.ranks` (the
exact boundedness test), :mod:`.theory` (MATH §5.4), :mod:`.montecarlo` (MATH §3).
The names below are the experiment's public API.
"""

from pipeline.models.hidden_spectrum.kalman import KalmanFilter, kalman_filter, kalman_fir
from pipeline.models.hidden_spectrum.montecarlo import montecarlo_block
from pipeline.models.hidden_spectrum.ranks import bounded, critical_k
from pipeline.models.hidden_spectrum.risk import best_fir_theta, risk_block
from pipeline.models.hidden_spectrum.system import (
    LEARNERS,
    MAX_DIMENSION,
    OBSERVATIONS,
    ObservabilityError,
    check_observable,
    observation_matrix,
)
from pipeline.models.hidden_spectrum.theory import (
    closed_loop_period,
    critical_k_theory,
    growth_exponent_theory,
    kstar_slope_theory,
    max_marginal_block,
    n_unstable,
)
from pipeline.models.precision.context import PrecisionError

__all__ = [
    "LEARNERS",
    "MAX_DIMENSION",
    "OBSERVATIONS",
    "KalmanFilter",
    "ObservabilityError",
    "PrecisionError",
    "best_fir_theta",
    "bounded",
    "check_observable",
    "closed_loop_period",
    "critical_k",
    "critical_k_theory",
    "growth_exponent_theory",
    "kalman_filter",
    "kalman_fir",
    "kstar_slope_theory",
    "max_marginal_block",
    "montecarlo_block",
    "n_unstable",
    "observation_matrix",
    "risk_block",
]
