"""One simulation per (system, training set) serving every learner, ``d``, ``T`` and ``m``.

A fitted cell is (system, learner basis and nominal model, ``d``, ``T``, ``m``, fit). Its
cost is the simulation; everything after is small exact linear algebra on the sufficient
statistics. :func:`training_set` simulates one training set at the grid's largest ``T``
and ``m`` (:mod:`pipeline.models.fitted.statistics`); :func:`evaluate` fits one learner at
every grid ``(T, m)`` and requested ``d`` and returns the fitted parameters, the
underdetermined flag and the exact risk. A cell's numbers depend on its own ``(T, m, d)``
and the training set only (the working precision starts from the cell's own statistics
and is raised for that cell alone), never on the rest of the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from flint import arb, arb_mat
from numpy.typing import NDArray

from pipeline.models.fitted.least_squares import (
    MAX_BITS,
    TARGET_BITS,
    ExactFit,
    PrecisionError,
    delta,
    min_norm,
    start_bits,
    statistics,
)
from pipeline.models.fitted.problem import FitProblem
from pipeline.models.fitted.risk import log10, risk_of
from pipeline.models.fitted.statistics import Moments, moments, moments_many
from pipeline.models.precision.context import working_precision
from pipeline.models.simulation.fitted_states import chains

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

RAW_BITS = 128  # first precision for the risk of an exact (rational) fit


def training_set(spectrum: str, seed: int, key: Sequence[object], T: Sequence[int], m: Sequence[int]) -> Moments:
    """The sufficient statistics of one training set at every grid ``(T, m)``; ``key``
    names the system and the fit (e.g. ``(spectrum, fit)``), see
    :mod:`pipeline.models.simulation.fitted_states`."""
    return moments(chains(spectrum), seed, key, T, m)


def training_sets(
    spectrum: str, seed: int, keys: Sequence[Sequence[object]], T: Sequence[int], m: Sequence[int]
) -> list[Moments]:
    """:func:`training_set` for several keys (e.g. every fit of a block), simulated side by
    side: the same numbers as one call per key, at a lower cost per draw."""
    return moments_many(chains(spectrum), seed, keys, T, m)


@dataclass(frozen=True)
class Fitted:
    """One learner on one training set, over the grid (nT, nm) and the requested ``d`` (nd).

    ``phi`` (nT, nm, nd, D): fitted parameters (NaN beyond ``d``); ``underdetermined``
    (nT, nm, nd): the design had rank below ``d`` (minimum-norm solution); ``risk`` and
    ``log10_risk`` (nT, nm, nd): the exact risk ``R_T(Ahat)`` (``risk = inf`` where it
    overflows float64, ``log10_risk`` stays finite); ``bits`` (nT, nm, nd): the working
    precision that certified the cell.
    """

    d: IntArray
    phi: FloatArray
    underdetermined: BoolArray
    risk: FloatArray
    log10_risk: FloatArray
    bits: IntArray


def _certain_vector(x: Any, count: int) -> bool:
    if count == 0:
        return True
    scale = max(abs(x[i, 0].mid()) for i in range(count))
    tol = scale * arb(2) ** (-TARGET_BITS)
    return all(x[i, 0].rad() <= tol for i in range(count))


def _certain_scalar(x: Any) -> bool:
    if x.is_zero():
        return True
    return bool(x.rad() <= abs(x.mid()) * arb(2) ** (-TARGET_BITS))


@dataclass
class _Cell:
    phi: list[float]
    under: bool
    risk: float
    log10: float
    bits: int


def _store(phi: Any, d: int, risk: Any, under: bool, bits: int) -> _Cell:
    return _Cell([float(phi[i, 0].mid()) for i in range(d)], under, float(risk.mid()), log10(risk), bits)


def _exact_cells(problem: FitProblem, mo: Moments, j: int, i: int, ds: Sequence[int]) -> dict[int, _Cell]:
    """Fit every ``d`` from the statistics in ball arithmetic, precision doubled per cell."""
    T = int(mo.T[j])
    out: dict[int, _Cell] = {}
    pending = sorted(set(int(d) for d in ds))
    prec = start_bits(mo, j, i)
    while pending:
        if prec > MAX_BITS:
            raise PrecisionError(
                f"{problem.text!r}, T = {T}, m = {int(mo.m[i])}, d = {pending}: "
                f"fit not certified to {TARGET_BITS} bits within {MAX_BITS} bits of working precision"
            )
        with working_precision(prec):
            S, W = statistics(mo, j, i)
            fit = ExactFit(problem, S, W)
            for d in list(pending):
                try:
                    phi, Delta = fit.solve(d)
                except ZeroDivisionError:
                    continue
                risk = risk_of(problem.text, T, prec, Delta)
                if _certain_vector(phi, d) and _certain_scalar(risk):
                    out[d] = _store(phi, d, risk, False, prec)
                    pending.remove(d)
        prec *= 2
    return out


def _raw_cells(problem: FitProblem, mo: Moments, j: int, i: int, ds: Sequence[int]) -> dict[int, _Cell]:
    """Fit every ``d`` exactly from the stored first steps (``m (T - 1) < n``)."""
    T, m = int(mo.T[j]), int(mo.m[i])
    n = problem.n
    z = mo.raw_z[:m, :T].reshape(m * T, n)
    v = mo.raw_v[:m, :T].reshape(m * T, n)
    out: dict[int, _Cell] = {}
    for d in sorted(set(int(x) for x in ds)):
        mn = min_norm(problem, z, v, d)
        prec = RAW_BITS
        while True:
            if prec > MAX_BITS:
                raise PrecisionError(f"{problem.text!r}, T = {T}, m = {m}, d = {d}: risk not certified")
            with working_precision(prec):
                phi = arb_mat(d, 1, [arb(int(q.p)) / arb(int(q.q)) for q in mn.phi])
                fit_delta = delta(problem, phi, d)
                risk = risk_of(problem.text, T, prec, fit_delta)
                if _certain_scalar(risk):
                    out[d] = _store(phi, d, risk, mn.rank < d, prec)
                    break
            prec *= 2
    return out


def evaluate(problem: FitProblem, mo: Moments, d: Sequence[int]) -> Fitted:
    """Fit the learner at every grid ``(T, m)`` of ``mo`` and every ``d`` (each ``<= D``)."""
    dv = np.asarray(d, dtype=np.int64)
    D = problem.D
    if dv.ndim != 1 or np.any(dv < 0) or np.any(dv > D):
        raise ValueError(f"d must be integers between 0 and the learner's dimension {D}")
    nT, nm, nd = mo.T.size, mo.m.size, dv.size
    phi = np.full((nT, nm, nd, D), np.nan)
    under = np.zeros((nT, nm, nd), dtype=bool)
    risk = np.zeros((nT, nm, nd))
    lg = np.zeros((nT, nm, nd))
    bits = np.zeros((nT, nm, nd), dtype=np.int64)
    for j in range(nT):
        for i in range(nm):
            few = int(mo.m[i]) * (int(mo.T[j]) - 1) < problem.n
            cells = (_raw_cells if few else _exact_cells)(problem, mo, j, i, dv.tolist())
            for q, dq in enumerate(dv.tolist()):
                c = cells[dq]
                phi[j, i, q, :dq] = c.phi
                under[j, i, q] = c.under
                risk[j, i, q] = c.risk
                lg[j, i, q] = c.log10
                bits[j, i, q] = c.bits
    return Fitted(dv, phi, under, risk, lg, bits)
