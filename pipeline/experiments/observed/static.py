"""The static part of an observed cube: what no block computes (on the driver, once).

``learner_basis`` (spectrum, family, component, row, col) is the ``same`` learner's basis
(the adversary family's own Haar basis); ``learner_family_basis`` (spectrum,
learner_family, learner_component, row, col) the basis of each named learner family (NaN
for ``same``, whose basis is ``learner_basis`` of the cell's family); ``perturbation``
(spectrum, family, draw, row, col); ``system`` (spectrum, row, col). ``learner_dim``,
``critical_d_theory`` and ``learnable`` are per (spectrum, family, learner_family):
``critical_d_theory`` is ``+inf`` exactly where ``learnable`` is False ("never").
Matrices are NaN-padded to the largest ``n`` of the grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.base import str_array
from pipeline.experiments.observed.axes import SAME, resolved_learner
from pipeline.models import observed as om
from pipeline.models import parametrisation as pm
from pipeline.models.spectra import Spectrum, critical_d_theory, family_dimension, parse_spectrum

if TYPE_CHECKING:  # imported in static(): `emergence run` reads workflows before importing xarray
    import xarray as xr


def spectrum_coords(sps: Sequence[Spectrum]) -> dict[str, tuple[str, np.ndarray, dict[str, str]]]:
    """The per-spectrum coordinates every fully observed cube carries: state dimension ``n``,
    unstable dimension ``n_unstable`` and spectral radius, each over dim ``spectrum``."""
    return {
        "n": (
            "spectrum",
            np.array([sp.n for sp in sps], dtype=np.int64),
            {"long_name": "state dimension", "units": "1"},
        ),
        "n_unstable": (
            "spectrum",
            np.array([sp.n_unstable for sp in sps], dtype=np.int64),
            {"long_name": "unstable dimension n_u (|eig| >= 1)", "units": "1"},
        ),
        "spectral_radius": (
            "spectrum",
            np.array([sp.spectral_radius for sp in sps]),
            {"long_name": "spectral radius", "units": "1"},
        ),
    }


def static(coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
    import xarray as xr

    seed = int(settings.seed)
    basis = settings.extra.get("basis", "jordan")
    spectra = [str(s) for s in coords["spectrum"]]
    families = [str(f) for f in coords["family"]]
    learners = [str(f) for f in coords["learner_family"]]
    draws = np.asarray(coords["draw"], dtype=np.int64)
    sps = [parse_spectrum(s) for s in spectra]
    nmax = max(sp.n for sp in sps)
    dims = {(i, j): family_dimension(sp, f) for i, sp in enumerate(sps) for j, f in enumerate(families)}
    ldims = {
        (i, k): pm.learner_dimension(sp, lf) for i, sp in enumerate(sps) for k, lf in enumerate(learners) if lf != SAME
    }
    Dmax = max(dims.values(), default=0)
    Lmax = max(ldims.values(), default=0)
    S, Fm, Lm, N = len(sps), len(families), len(learners), len(draws)
    system = np.full((S, nmax, nmax), np.nan)
    pert = np.full((S, Fm, N, nmax, nmax), np.nan)
    lb = np.full((S, Fm, Dmax, nmax, nmax), np.nan)
    lfb = np.full((S, Lm, Lmax, nmax, nmax), np.nan)
    crit = np.zeros((S, Fm, Lm), dtype=np.float64)
    learnable = np.ones((S, Fm, Lm), dtype=bool)
    ldim = np.zeros((S, Fm, Lm), dtype=np.int64)
    fdim = np.zeros((S, Fm), dtype=np.int64)
    for i, sp in enumerate(sps):
        n = sp.n
        system[i, :n, :n] = om.system(sp, basis, seed)
        for j, f in enumerate(families):
            D = dims[i, j]
            fdim[i, j] = D
            pert[i, j, :, :n, :n] = om.perturbations(sp.text, f, seed, draws, basis)
            if D:
                lb[i, j, :D, :n, :n] = om.learner_basis(sp.text, f, seed, basis)
            for k, lf in enumerate(learners):
                learner = resolved_learner(f, lf)
                c = critical_d_theory(sp, f) if learner == f else pm.critical_d(sp, f, learner)
                learnable[i, j, k] = c is not None
                crit[i, j, k] = math.inf if c is None else float(c)
                ldim[i, j, k] = pm.learner_dimension(sp, learner)
        for k, lf in enumerate(learners):
            if lf != SAME and ldims[i, k]:
                lfb[i, k, : ldims[i, k], :n, :n] = pm.learner_matrices(sp, lf, seed, basis)
    sc = str_array(spectra)
    ds = xr.Dataset(
        {
            "critical_d_theory": (
                ("spectrum", "family", "learner_family"),
                crit,
                {
                    "long_name": "theory critical parameter count (docs/theory.md §1.4, §1.5)",
                    "units": "parameters",
                    "description": "+inf where learnable is False: no d <= learner_dim bounds the risk",
                },
            ),
            "learnable": (
                ("spectrum", "family", "learner_family"),
                learnable,
                {"long_name": "theory: some d <= learner_dim bounds the risk (docs/theory.md §1.5)", "units": "1"},
            ),
            "learner_dim": (
                ("spectrum", "family", "learner_family"),
                ldim,
                {"long_name": "learner family dimension D_L (largest meaningful d)", "units": "parameters"},
            ),
            "family_dim": (
                ("spectrum", "family"),
                fdim,
                {"long_name": "adversary family dimension D", "units": "1"},
            ),
            "learner_family_basis": (
                ("spectrum", "learner_family", "learner_component", "row", "col"),
                lfb,
                {
                    "long_name": "learner's orthonormal basis B_i of each named learner family (NaN-padded;"
                    " all NaN for same, whose basis is learner_basis of the cell's family)",
                    "units": "1",
                },
            ),
            "system": (
                ("spectrum", "row", "col"),
                system,
                {"long_name": "system matrix A (NaN-padded)", "units": "1"},
            ),
            "perturbation": (
                ("spectrum", "family", "draw", "row", "col"),
                pert,
                {"long_name": "adversary direction H, unit Frobenius norm (NaN-padded)", "units": "1"},
            ),
            "learner_basis": (
                ("spectrum", "family", "component", "row", "col"),
                lb,
                {"long_name": "learner's orthonormal family basis B_i (NaN-padded)", "units": "1"},
            ),
        },
        coords={
            "spectrum": sc,
            "family": str_array(families),
            "learner_family": str_array(learners),
            "draw": draws,
            "row": np.arange(nmax, dtype=np.int64),
            "col": np.arange(nmax, dtype=np.int64),
            "component": np.arange(Dmax, dtype=np.int64),
            "learner_component": np.arange(Lmax, dtype=np.int64),
            **spectrum_coords(sps),
        },
    )
    for name, attrs in (
        ("spectrum", {"long_name": "eigenvalue spectrum of A (MATH.md 1.1 notation)", "units": "1"}),
        ("family", {"long_name": "perturbation family", "units": "1"}),
        ("draw", {"long_name": "adversary draw index", "units": "1"}),
        ("row", {"long_name": "matrix row", "units": "1"}),
        ("col", {"long_name": "matrix column", "units": "1"}),
        ("component", {"long_name": "learner basis index i - 1", "units": "1"}),
        ("learner_family", {"long_name": "learner's family (same: the adversary's family)", "units": "1"}),
        ("learner_component", {"long_name": "learner family basis index i - 1", "units": "1"}),
    ):
        ds[name].attrs.update(attrs)
    return ds
