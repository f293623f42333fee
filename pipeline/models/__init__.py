"""The science: closed forms, exact kernels, theory and Monte Carlo, pure numpy/scipy/flint.

Nothing here imports Dask, Zarr or xarray, and every function's result is a fixed function
of its arguments (no global state but caches of pure results, whose arrays are read-only).

* One package per experiment, its ``__init__`` the public API the adapters import:
  :mod:`.hidden` (MATH §2), :mod:`.hidden_spectrum` (§5), :mod:`.observed` (§1) with
  :mod:`.parametrisation` (§1.5). Inside, one job per module: the system, its Kalman
  predictor or its families and draws, the exact risk, the rank tests of boundedness, the
  theory, the Monte Carlo.
* :mod:`.precision`: the extended-precision linear algebra they share, and the one context
  under which every piece of python-flint work sets its working precision.
* :mod:`.simulation`: every simulated number (random streams keyed by plain values,
  trajectories of the best-learner Monte Carlo and their running means, the training data
  of :mod:`.fitted` and :mod:`.fitted_fir`); :mod:`.fir` and :mod:`.fir_montecarlo` (the FIR
  learners of both hidden-state experiments, and their Monte Carlo on simulated outputs);
  :mod:`.spectra` (the spectrum grammar, MATH §1.1). :mod:`.streams` re-exports
  :mod:`.simulation.streams` for older importers.
"""
