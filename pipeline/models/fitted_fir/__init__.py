"""Least-squares FIR filters learned from noisy observations of a hidden-state system (MATH §6.2-§6.4).

A fitted-filter cell is (system: a spectrum or a scalar ``lam``, noise ratio, ``k`` taps, horizon
``T``, ``m`` trajectories, fit index). Its data are ``m`` float64 trajectories ``y_0 .. y_T`` of
the MATH §5.1 system from the stationary start; its filter minimises the zero-padded
least-squares error and its risk is the exact MATH §5.2 risk of that filter. One job per module:

* :mod:`.system` — the system of a cell and the supported range;
* :mod:`.reference` — the reference filter and graded basis of MATH §6.4;
* :mod:`.series` — the reference series in double-double arithmetic;
* :mod:`.normal_equations` — entries of the normal equations from lagged running sums;
* :mod:`.statistics` — the running sums of a training set at every grid ``T``, ``m``;
* :mod:`.least_squares` — the certified least-squares solve per cell; :mod:`.exact` its exact
  fallback for cells the float sums cannot certify;
* :mod:`.risk` — the exact risk of a given filter in ball arithmetic;
* :mod:`.cells` — one simulation per (system, noise ratio, fit) serving a block of cells.
"""

from pipeline.models.fitted_fir.cells import FittedFilters, fit_training_set, fitted_fir_block
from pipeline.models.fitted_fir.least_squares import Fit, fit_cells
from pipeline.models.fitted_fir.risk import FilterRisk
from pipeline.models.fitted_fir.statistics import Statistics, training_statistics
from pipeline.models.fitted_fir.system import FittedSystem, UnsupportedSystem, fitted_system, system_text
from pipeline.models.simulation.fitted_outputs import output_blocks, outputs, training_key

__all__ = [
    "FilterRisk",
    "Fit",
    "FittedFilters",
    "FittedSystem",
    "Statistics",
    "UnsupportedSystem",
    "fit_cells",
    "fit_training_set",
    "fitted_fir_block",
    "fitted_system",
    "output_blocks",
    "outputs",
    "system_text",
    "training_key",
    "training_statistics",
]
