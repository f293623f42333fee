"""The fitted observed experiment's block kernel (workers), MATH.md sections 6.1 and 6.3.

A block covers (spectrum, family, draw, learner_family, d, T, trajectories, fit). Per
spectrum, the block's training sets (one per ``fit``, key ``(spectrum, fit)``) are
simulated once, side by side, to the block's largest ``T`` and ``m``
(:func:`pipeline.models.fitted.cells.training_sets`): every family, draw, learner, ``d``,
``T`` and ``m`` of the block is fitted from those statistics. A cell's numbers depend on
its own ``(T, m)`` prefix of its own stream only, so never on the block. The bias (exact
best-in-class risk, the ``m -> infinity`` limit) comes from the exact kernel of section
1.3 (:func:`pipeline.models.fitted.risk.bias_log2`). Cells with ``d > learner_dim`` hold
NaN (the only NaN of a cube, besides ``phi`` beyond ``d``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.observed_fitted.axes import NO_ADVERSARY
from pipeline.models.fitted.cells import evaluate, training_sets
from pipeline.models.fitted.problem import FitProblem, fit_problem
from pipeline.models.fitted.risk import bias_log2
from pipeline.models.spectra import parse_spectrum

if TYPE_CHECKING:
    import xarray as xr

LOG10_2 = float(np.log10(2.0))


def problem_of(static: xr.Dataset, spectrum: str, family: str, draw: int, learner: str, nominal: str) -> FitProblem:
    """The learner of one (spectrum, family, draw, learner_family), from the static part alone."""
    n = parse_spectrum(spectrum).n
    st = static.sel(spectrum=spectrum)
    D = int(st["learner_dim"].sel(learner_family=learner).values)
    B = np.asarray(st["learner_basis"].sel(learner_family=learner).values, dtype=float)[:D, :n, :n]
    Q = np.asarray(st["basis_change"].values, dtype=float)[:n, :n]
    if nominal == "zero" or family == NO_ADVERSARY:
        return fit_problem(spectrum, learner, B, Q, "zero")
    H = np.asarray(st["perturbation"].sel(family=family, draw=draw).values, dtype=float)[:n, :n]
    return fit_problem(spectrum, learner, B, Q, "perturbed", family, H)


def kernel(coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
    """Every variable of one block (see ``ObservedFittedExperiment.variables``)."""
    seed = int(settings.seed)
    nominal = str(settings.extra.get("nominal", "zero"))
    spectra = [str(s) for s in coords["spectrum"]]
    families = [str(f) for f in coords["family"]]
    draws = np.asarray(coords["draw"], dtype=np.int64)
    learners = [str(f) for f in coords["learner_family"]]
    dvals = np.asarray(coords["d"], dtype=np.int64)
    Tvals = np.asarray(coords["T"], dtype=np.int64)
    mvals = np.asarray(coords["trajectories"], dtype=np.int64)
    fits = np.asarray(coords["fit"], dtype=np.int64)
    Dmax = int(static.sizes.get("param", 0))
    head = (len(spectra), len(families), len(draws), len(learners), len(dvals))
    shape = (*head, len(Tvals), len(mvals), len(fits))
    risk = np.full(shape, np.nan)
    log10_risk = np.full(shape, np.nan)
    under = np.zeros(shape, dtype=bool)
    phi = np.full((*shape, Dmax), np.nan)
    log2_bias = np.full((*head, len(Tvals)), np.nan)
    for i, text in enumerate(spectra):
        keys = [(text, int(f)) for f in fits]
        sets = training_sets(text, seed, keys, Tvals.tolist(), mvals.tolist())
        for j, fam in enumerate(families):
            for q, dr in enumerate(draws):
                for k, lf in enumerate(learners):
                    problem = problem_of(static, text, fam, int(dr), lf, nominal)
                    valid = dvals <= problem.D
                    ds = dvals[valid]
                    at = (i, j, q, k)
                    for t, T in enumerate(Tvals):
                        log2_bias[(*at, valid, t)] = bias_log2(problem, int(T))[ds]
                    for f, mo in enumerate(sets):
                        fitted = evaluate(problem, mo, ds.tolist())  # (nT, nm, nd, ...)
                        cells = (*at, valid, slice(None), slice(None), f)
                        risk[cells] = np.moveaxis(fitted.risk, 2, 0)
                        log10_risk[cells] = np.moveaxis(fitted.log10_risk, 2, 0)
                        under[cells] = np.moveaxis(fitted.underdetermined, 2, 0)
                        phi[(*cells, slice(0, problem.D))] = np.moveaxis(fitted.phi, 2, 0)
    _check_nan_only_where_undefined((risk, log10_risk), log2_bias, coords, static)
    with np.errstate(over="ignore"):
        bias = np.exp2(log2_bias)
    return {
        "risk": risk,
        "log10_risk": log10_risk,
        "underdetermined": under,
        "phi": phi,
        "bias": bias,
        "log10_bias": log2_bias * LOG10_2,
    }


def _check_nan_only_where_undefined(
    cells: tuple[np.ndarray, ...], log2_bias: np.ndarray, coords: Mapping[str, np.ndarray], static: xr.Dataset
) -> None:
    """NaN is the mark of ``d > learner_dim``; anywhere else it is a kernel fault (no NaN or
    garbage reaches the cube)."""
    dims = static["learner_dim"].transpose("spectrum", "learner_family").values  # (S, L)
    d = np.asarray(coords["d"])
    defined = d[None, None, :] <= dims[:, :, None]  # (S, L, d)
    mask = defined[:, None, None, :, :]  # (S, 1, 1, L, d) against (S, F, N, L, d, ...)
    for values in (*cells, log2_bias):
        extra = values.ndim - 5
        bad = np.isnan(values) & mask.reshape(mask.shape + (1,) * extra)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise FloatingPointError(f"NaN at the defined cell {at} of block {dict(coords)}")
