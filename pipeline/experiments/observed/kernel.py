"""The observed experiment's block kernel (workers): exact or Monte Carlo best-in-class risk.

A block covers (spectrum, family, learner_family, d, T, draw); per (spectrum, family,
learner_family) one exact problem is set up from the static part and shared by every
``d``, ``T`` and draw of the block. Cells with ``d > learner_dim`` hold NaN (the only NaN
of a cube) and ``bounded = True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

# The exact kernel's triangular solves (models.observed imports scipy.linalg where it solves):
# imported with this module, which local workers preload, so that no worker pays the import
# (~0.2 s, over a second on a loaded machine) inside its first block.
import scipy.linalg  # noqa: F401

from pipeline.core.types import Settings
from pipeline.experiments.observed.axes import resolved_learner
from pipeline.models import observed as om
from pipeline.models import parametrisation as pm
from pipeline.models.simulation.streams import cell_rng
from pipeline.models.spectra import parse_spectrum

if TYPE_CHECKING:
    import xarray as xr

LOG10_2 = float(np.log10(2.0))


@dataclass(frozen=True)
class _Cells:
    """The block's output arrays and its 1-D ``d``, ``T`` and draw coordinates."""

    dvals: np.ndarray
    Tvals: np.ndarray
    draws: np.ndarray
    log2r: np.ndarray
    """(S, F, L, d, T, draw): log2 of the exact risk."""
    bounded: np.ndarray
    """(S, F, L, d, draw)."""
    risk_mc: np.ndarray | None = None
    stderr: np.ndarray | None = None


def kernel(coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
    """Every variable of one block (see ``ObservedExperiment.variables``)."""
    seed = int(settings.seed)
    basis = settings.extra.get("basis", "jordan")
    spectra = [str(s) for s in coords["spectrum"]]
    families = [str(f) for f in coords["family"]]
    learners = [str(f) for f in coords["learner_family"]]
    dvals = np.asarray(coords["d"], dtype=np.int64)
    Tvals = np.asarray(coords["T"], dtype=np.int64)
    draws = np.asarray(coords["draw"], dtype=np.int64)
    shape = (len(spectra), len(families), len(learners), len(dvals), len(Tvals), len(draws))
    montecarlo = settings.method == "montecarlo"
    cells = _Cells(
        dvals,
        Tvals,
        draws,
        log2r=np.full(shape, np.nan),
        bounded=np.ones((*shape[:4], len(draws)), dtype=bool),
        risk_mc=np.full(shape, np.nan) if montecarlo else None,
        stderr=np.full(shape, np.nan) if montecarlo else None,
    )
    for i, text in enumerate(spectra):
        sp = parse_spectrum(text)
        n = sp.n
        st_s = static.sel(spectrum=text)
        A = np.asarray(st_s["system"].values, dtype=float)[:n, :n]
        Q = om.basis_change(sp, basis, seed)
        J = sp.jordan_matrix()
        if not np.allclose(Q @ J @ Q.T, A, rtol=0, atol=1e-12 * max(1.0, np.abs(J).max())):
            raise ValueError(f"static system of {text!r} does not match basis {basis!r}")
        for j, fam in enumerate(families):
            st = st_s.sel(family=fam)
            D = int(st["family_dim"].values)
            B = np.asarray(st["learner_basis"].values, dtype=float)[:D, :n, :n]
            H = np.asarray(st["perturbation"].sel(draw=draws).values, dtype=float)[:, :n, :n]
            for k, lf in enumerate(learners):
                learner = resolved_learner(fam, lf)
                if learner == fam:  # the adversary's own family: MATH section 1.3, as before the axis
                    _same_cells((i, j, k), text, fam, (B, H, Q, A), settings, cells)
                    continue
                DL = int(st["learner_dim"].sel(learner_family=lf).values)
                BL = np.asarray(st_s["learner_family_basis"].sel(learner_family=lf).values, dtype=float)
                cp = pm.cross_problem(sp, fam, learner, BL[:DL, :n, :n], H, Q)
                valid = dvals <= DL
                dsel = np.where(valid, dvals, 0)
                cells.bounded[i, j, k] = np.where(valid[:, None], pm.cross_bounded(cp)[dsel], True)
                for t, T in enumerate(Tvals):
                    lr = pm.cross_log2_risk(cp, int(T))  # (N, DL+1)
                    cells.log2r[i, j, k, :, t, :] = np.where(valid[:, None], lr[:, dsel].T, np.nan)
    out = _results(cells)
    _check_nan_only_where_undefined(out, coords, static)
    return out


def _results(cells: _Cells) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"bounded": cells.bounded}
    if cells.risk_mc is not None and cells.stderr is not None:
        risk = cells.risk_mc
        with np.errstate(divide="ignore"):
            log10 = np.log10(risk)
        out["risk_stderr"] = cells.stderr
    else:
        with np.errstate(over="ignore"):
            risk = np.exp2(cells.log2r)
        log10 = cells.log2r * LOG10_2
    out["risk"] = risk
    out["log10_risk"] = log10
    out["kl_rate"] = np.asarray(risk / 2.0)
    return out


def _same_cells(
    at: tuple[int, int, int],
    text: str,
    fam: str,
    matrices: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    settings: Settings,
    cells: _Cells,
) -> None:
    """Fill the cells of one (spectrum, family, learner_family) whose learner is the
    adversary's family (MATH section 1.3). ``matrices``: the learner basis ``B`` (D, n, n)
    and the draws ``H`` (N, n, n) as stored, ``Q`` (n, n) the basis change of ``A`` (n, n)."""
    i, j, k = at
    B, H, Q, A = matrices
    dvals = cells.dvals
    n = A.shape[0]
    D = B.shape[0]
    prob = om.problem_from_matrices(text, fam, B, H, Q)
    valid = dvals <= D
    dsel = np.where(valid, dvals, 0)
    bt = om.bounded(prob)  # (D+1, N)
    cells.bounded[i, j, k] = np.where(valid[:, None], bt[dsel], True)
    for t, T in enumerate(cells.Tvals):
        fac = om.risk_factor(text, fam, prob.P, int(T))
        lr = om.log2_risk(fac, prob.Pinv, prob.h)  # (N, D+1)
        cells.log2r[i, j, k, :, t, :] = np.where(valid[:, None], lr[:, dsel].T, np.nan)
        if cells.risk_mc is None or cells.stderr is None:
            continue
        for q, dr in enumerate(cells.draws):
            deltas = _deltas(fac, prob, B, q, n)
            rng = cell_rng(int(settings.seed), "observed.montecarlo", text, fam, int(dr), int(T))
            mean, se = om.montecarlo_risk(A, deltas, int(T), int(settings.mc_samples), rng)
            cells.risk_mc[i, j, k, :, t, q] = np.where(valid, mean[dsel], np.nan)
            cells.stderr[i, j, k, :, t, q] = np.where(valid, se[dsel], np.nan)


def _deltas(fac: Any, prob: Any, B: np.ndarray, q: int, n: int) -> np.ndarray:
    """The best learner's parameter error ``sum_i c_i B_i`` (D + 1, n, n) of draw ``q`` at every ``d``."""
    D = prob.D
    out = np.zeros((D + 1, n, n))
    if D == 0:
        return out
    h = prob.h[q : q + 1]
    for d in range(D + 1):
        c = om.best_coefficients(fac, prob.Pinv, h, d)[0]
        out[d] = np.einsum("i,ikl->kl", c, B)
    return out


def _check_nan_only_where_undefined(
    out: dict[str, np.ndarray], coords: Mapping[str, np.ndarray], static: xr.Dataset
) -> None:
    """NaN is the mark of d > learner_dim; anywhere else it is a kernel fault."""
    d = np.asarray(coords["d"])
    dims = static["learner_dim"].transpose("spectrum", "family", "learner_family").values
    defined = d[None, None, None, :] <= dims[:, :, :, None]
    for name, values in out.items():
        if values.dtype.kind != "f" or values.ndim != 6:
            continue
        bad = np.argwhere(np.isnan(values) & defined[:, :, :, :, None, None])
        if bad.size:
            i, j, l, k, t, q = bad[0]
            cell = {
                "spectrum": str(coords["spectrum"][i]),
                "family": str(coords["family"][j]),
                "learner_family": str(coords["learner_family"][l]),
                "d": int(d[k]),
                "T": int(coords["T"][t]),
                "draw": int(coords["draw"][q]),
            }
            raise FloatingPointError(f"{name} is NaN at the defined cell {cell}")
