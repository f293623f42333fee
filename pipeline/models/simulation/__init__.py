"""One simulation package for every experiment's Monte Carlo and the fitted learners' data.

One job per module:

* :mod:`.streams` — random streams keyed by the run seed and plain values
  (:func:`~.streams.cell_rng`), trajectory batches with one stream each, fixed time blocks;
* :mod:`.montecarlo` — trajectories of the best-learner Monte Carlo (MATH §3): fully observed
  states, outputs of a hidden state from the stationary start, Kalman predictions;
* :mod:`.estimates` — running means at horizons, sample means and standard errors;
* :mod:`.fitted_states` — state trajectories of the fitted observed learners (MATH §6.1, §6.3),
  in Jordan coordinates, one stream per group of trajectories;
* :mod:`.fitted_outputs` — noisy output blocks of a hidden-state system, the training data of
  fitted FIR filters (MATH §6.2, §6.3), one stream per trajectory.

Every sampler draws a trajectory's noise from a stream that depends on the run seed and plain
values naming the system, the training set and the trajectory (or its group), in fixed time
blocks from ``t = 0``: a trajectory is the same whatever the number of trajectories, the
horizon, the batch or the block plan, and a horizon ``T`` reads only a prefix of the stream.

Re-exported here: the names of the best-learner Monte Carlo (:mod:`.streams`,
:mod:`.montecarlo`, :mod:`.estimates`).
"""

from pipeline.models.simulation.estimates import HorizonMeans, mean_and_stderr, mean_and_stderr_pairwise
from pipeline.models.simulation.montecarlo import (
    kalman_predictions,
    propagate,
    scalar_outputs,
    simulate_outputs,
    simulate_states,
    stationary_start,
)
from pipeline.models.simulation.streams import (
    Batch,
    Streams,
    block_normals,
    cell_rng,
    coordinate_key,
    time_blocks,
    trajectory_batches,
)

__all__ = [
    "Batch",
    "HorizonMeans",
    "Streams",
    "block_normals",
    "cell_rng",
    "coordinate_key",
    "kalman_predictions",
    "mean_and_stderr",
    "mean_and_stderr_pairwise",
    "propagate",
    "scalar_outputs",
    "simulate_outputs",
    "simulate_states",
    "stationary_start",
    "time_blocks",
    "trajectory_batches",
]
