"""The static part of a fitted-filter cube: what depends on no training set (MATH §5.1, §5.4).

Per (system, noise ratio) the stationary Kalman solution and per system its matrices and the
exact boundedness of ``best_fir`` (the bias of a fitted filter, MATH §6.5), exactly as the
``hidden_spectrum`` cube stores them (computed by its adapter, learner ``best_fir``); for the
``lam`` variant also the scalar ``P``, ``kalman_gain`` and ``a`` of the ``hidden`` cube. The
inner coordinate ``tap`` (1..largest ``k``) indexes the fitted taps ``theta_j``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.base import str_array
from pipeline.experiments.hidden.adapter import HIDDEN
from pipeline.experiments.hidden_spectrum.adapter import HIDDEN_SPECTRUM
from pipeline.models.fitted_fir import system_text

if TYPE_CHECKING:
    import xarray as xr

LEARNER = "best_fir"
"""The class a fitted filter is learned in: its exact best member is the bias."""


def static(system_axis: str, coords: Mapping[str, np.ndarray], observation: str) -> xr.Dataset:
    """Static dataset over ``system_axis`` (``lam`` or ``spectrum``), ``noise_ratio``, ``k``, ``tap``
    (and ``row``, ``col`` for the matrices, NaN-padded to the largest ``n``)."""

    systems = coords[system_axis]
    texts = [system_text(s if system_axis == "spectrum" else float(s)) for s in systems.tolist()]
    spectral = {
        "spectrum": str_array(texts),
        "noise_ratio": np.asarray(coords["noise_ratio"], dtype=np.float64),
        "learner": str_array([LEARNER]),
        "k": np.asarray(coords["k"], dtype=np.int64),
    }
    settings = Settings(experiment=HIDDEN_SPECTRUM.name, name="static", extra={"observation": observation})
    ds = HIDDEN_SPECTRUM.static(spectral, settings).isel(learner=0, drop=True)
    ds["bounded"].attrs["long_name"] = "best_fir risk bounded as T -> inf (exact rank test, MATH §5.4)"
    ds["critical_k"].attrs["long_name"] = "smallest k whose best_fir risk is bounded (exact rank test; +inf: never)"
    ds["critical_k_theory"].attrs["long_name"] = "theory of the critical k of best_fir: k_c = n_u (MATH §5.4)"
    for name in ("n", "n_unstable", "max_marginal_block", "bounded"):
        ds[name].attrs.setdefault("units", "1")
    if system_axis == "lam":
        ds = ds.drop_vars(["kalman_gain", "kalman_covariance", "system", "observation_matrix", "row", "col"])
        ds = ds.rename({"spectrum": "lam"}).assign_coords(lam=np.asarray(systems, dtype=np.float64))
        scalar = HIDDEN.static({"lam": ds["lam"].values, "noise_ratio": ds["noise_ratio"].values}, settings)
        ds = ds.merge(scalar.assign_coords(lam=ds["lam"].values, noise_ratio=ds["noise_ratio"].values))
    else:
        ds["row"].attrs.update(long_name="row of a system matrix", units="1")
        ds["col"].attrs.update(long_name="column of a system matrix", units="1")
    taps = int(np.max(coords["k"]))
    ds = ds.assign_coords(tap=np.arange(1, taps + 1, dtype=np.int64))
    ds["tap"].attrs.update(long_name="tap j of theta_j (the lag of y it weighs)", units="steps")
    return ds
