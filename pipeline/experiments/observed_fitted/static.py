"""The static part of a fitted observed cube: everything that makes a cell recomputable.

``system`` ``A`` and ``basis_change`` ``Q`` (``A = Q J Q'``) per spectrum; the adversary's
``perturbation`` ``H`` and the ``nominal_model`` ``A0`` (``0`` for ``nominal = "zero"``,
``A - H`` for ``"perturbed"``) per (spectrum, family, draw); the ``learner_basis`` ``B_i``
per (spectrum, learner_family) in the coordinates of ``A`` (inner dim ``param``, NaN-padded
to the largest learner dimension); ``learner_dim``; ``critical_d_theory`` (MATH.md 6.5;
``+inf`` where no ``d`` bounds the bias). Matrices are NaN-padded to the largest ``n``.
With the run's seed and the training-set key ``(spectrum, fit)`` (MATH.md 6.3) any cell
is recomputed by :mod:`pipeline.models.fitted.cells`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.base import str_array
from pipeline.experiments.observed.static import spectrum_coords
from pipeline.experiments.observed_fitted.axes import NO_ADVERSARY, learner_dim
from pipeline.models import observed as om
from pipeline.models.fitted.leading import leading_basis
from pipeline.models.fitted.theory import critical_d_theory
from pipeline.models.parametrisation import learner_matrices
from pipeline.models.spectra import parse_spectrum

if TYPE_CHECKING:
    import xarray as xr


def learner_matrices_of(spectrum: str, learner: str, seed: int, basis: str) -> np.ndarray:
    """The learner's basis ``B_1 .. B_D`` (D, n, n) in the coordinates of ``A``."""
    if learner == "leading":
        return leading_basis(parse_spectrum(spectrum).n)
    return np.asarray(learner_matrices(spectrum, learner, seed, basis), dtype=float)


def static(coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
    import xarray as xr

    seed = int(settings.seed)
    basis = str(settings.extra.get("basis", "jordan"))
    nominal = str(settings.extra.get("nominal", "zero"))
    spectra = [str(s) for s in coords["spectrum"]]
    families = [str(f) for f in coords["family"]]
    learners = [str(f) for f in coords["learner_family"]]
    draws = np.asarray(coords["draw"], dtype=np.int64)
    sps = [parse_spectrum(s) for s in spectra]
    nmax = max(sp.n for sp in sps)
    dims = {(i, k): learner_dim(s, lf) for i, s in enumerate(spectra) for k, lf in enumerate(learners)}
    Dmax = max(dims.values(), default=0)
    S, F, N, L = len(sps), len(families), len(draws), len(learners)
    system = np.full((S, nmax, nmax), np.nan)
    Qs = np.full((S, nmax, nmax), np.nan)
    pert = np.full((S, F, N, nmax, nmax), np.nan)
    nominal_model = np.full((S, F, N, nmax, nmax), np.nan)
    lb = np.full((S, L, Dmax, nmax, nmax), np.nan)
    ldim = np.zeros((S, L), dtype=np.int64)
    crit = np.zeros((S, F, L))
    for i, sp in enumerate(sps):
        n = sp.n
        system[i, :n, :n] = om.system(sp, basis, seed)
        Qs[i, :n, :n] = om.basis_change(sp, basis, seed)
        for j, f in enumerate(families):
            if f == NO_ADVERSARY:
                pert[i, j, :, :n, :n] = 0.0
                nominal_model[i, j, :, :n, :n] = 0.0
            else:
                H = om.perturbations(sp.text, f, seed, draws, basis)
                pert[i, j, :, :n, :n] = H
                nominal_model[i, j, :, :n, :n] = system[i, None, :n, :n] - H
            for k, lf in enumerate(learners):
                adversary = None if f == NO_ADVERSARY else f
                c = critical_d_theory(sp.text, lf, nominal, adversary, basis)
                crit[i, j, k] = math.inf if c is None else float(c)
        for k, lf in enumerate(learners):
            D = dims[i, k]
            ldim[i, k] = D
            if D:
                lb[i, k, :D, :n, :n] = learner_matrices_of(sp.text, lf, seed, basis)
    matrix = {"units": "1"}
    ds = xr.Dataset(
        {
            "system": (("spectrum", "row", "col"), system, {"long_name": "system matrix A (NaN-padded)", **matrix}),
            "basis_change": (
                ("spectrum", "row", "col"),
                Qs,
                {"long_name": "orthogonal Q with A = Q J Q' (J the real Jordan matrix; NaN-padded)", **matrix},
            ),
            "perturbation": (
                ("spectrum", "family", "draw", "row", "col"),
                pert,
                {"long_name": "adversary direction H, unit Frobenius norm (0 for family none; NaN-padded)", **matrix},
            ),
            "nominal_model": (
                ("spectrum", "family", "draw", "row", "col"),
                nominal_model,
                {"long_name": "nominal model A0 of the learner A0 + sum phi_i B_i (NaN-padded)", **matrix},
            ),
            "learner_basis": (
                ("spectrum", "learner_family", "param", "row", "col"),
                lb,
                {"long_name": "learner basis B_i in the coordinates of A (NaN-padded)", **matrix},
            ),
            "learner_dim": (
                ("spectrum", "learner_family"),
                ldim,
                {"long_name": "learner family dimension D (largest meaningful d)", "units": "parameters"},
            ),
            "critical_d_theory": (
                ("spectrum", "family", "learner_family"),
                crit,
                {
                    "long_name": "theory critical parameter count d* of the bias (docs/theory.md §6)",
                    "units": "parameters",
                    "description": "+inf: no d <= learner_dim bounds the bias",
                },
            ),
        },
        coords={
            "spectrum": str_array(spectra),
            "family": str_array(families),
            "learner_family": str_array(learners),
            "draw": draws,
            "row": np.arange(nmax, dtype=np.int64),
            "col": np.arange(nmax, dtype=np.int64),
            "param": np.arange(Dmax, dtype=np.int64),
            **spectrum_coords(sps),
        },
    )
    for name, attrs in (
        ("spectrum", {"long_name": "eigenvalue spectrum of A (docs/theory.md §1.1 notation)", "units": "1"}),
        ("family", {"long_name": "adversary's perturbation family (none: nominal = zero)", "units": "1"}),
        ("draw", {"long_name": "adversary draw index", "units": "1"}),
        ("learner_family", {"long_name": "learner's family", "units": "1"}),
        ("row", {"long_name": "matrix row", "units": "1"}),
        ("col", {"long_name": "matrix column", "units": "1"}),
        ("param", {"long_name": "learner parameter index i - 1", "units": "1"}),
    ):
        ds[name].attrs.update(attrs)
    ds.attrs["training_set_key"] = "(spectrum, fit); noise streams of pipeline.models.fitted (docs/theory.md §6)"
    return ds
