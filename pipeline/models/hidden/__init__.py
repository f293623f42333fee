"""Experiment ``hidden``: FIR learners for a noisily observed scalar AR(1) (MATH.md §2).

Model (q = 1 throughout, every risk in units of the process-noise variance)::

    x_{t+1} = lam x_t + w_t,   y_t = x_t + v_t,   w ~ N(0, 1),   v ~ N(0, r),   x_0 ~ N(0, P)

with ``r = noise_ratio``. The Bayes predictor is the stationary Kalman predictor
``xhat_{t+1} = a xhat_t + K y_t`` (``xhat_0 = 0``); a learner is a length-``k`` FIR
filter ``yhat_t = sum_{j<=min(k,t)} theta_j y_{t-j}``; the risk is
``R_T = (1/T) sum_{t=1..T} E (xhat_t - yhat_t)^2`` (MATH §2.3).

Modules: :mod:`.system` (learners, checks of a block), :mod:`.kalman` (the predictor),
:mod:`.risk` (the exact closed-form kernel), :mod:`.theory` (MATH §2.4),
:mod:`.montecarlo` (MATH §3). The names below are the experiment's public API.
"""

from pipeline.models.hidden.kalman import kalman, kalman_fir
from pipeline.models.hidden.montecarlo import montecarlo_block
from pipeline.models.hidden.risk import best_fir_theta, risk_block
from pipeline.models.hidden.system import LEARNERS
from pipeline.models.hidden.theory import growth_exponent_theory, is_marginal, kstar_slope_theory, kstar_theory

__all__ = [
    "LEARNERS",
    "best_fir_theta",
    "growth_exponent_theory",
    "is_marginal",
    "kalman",
    "kalman_fir",
    "kstar_slope_theory",
    "kstar_theory",
    "montecarlo_block",
    "risk_block",
]
