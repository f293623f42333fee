"""Noisy output blocks of a hidden-state system, the training data of fitted FIR filters.

This module *defines the data* of MATH §6.2 / §6.3 (changing a constant or an operation order
here changes every fitted number):

* **Streams.** Trajectory ``i`` of a training set draws from its own generator
  ``cell_rng(seed, "fitted_fir.noise", *key, i)``; ``key`` names the system and the training
  set: ``(spectrum text, noise_ratio, fit)`` (:func:`training_key`). Its first draw is
  ``standard_normal(n)`` (the stationary start ``x_0 = chol(P) z``), then one
  ``standard_normal((BLOCK, n + 1))`` per time block of :data:`BLOCK` steps, row ``s`` holding
  ``w_{t0+s}`` (n) and ``v_{t0+s} / sqrt(r)``. This is the per-trajectory layout of
  :func:`pipeline.models.simulation.montecarlo.stationary_start` and
  :func:`~pipeline.models.simulation.montecarlo.simulate_outputs` (``chunk = BLOCK``), which therefore
  consume the same numbers (the tests compare the trajectories). So trajectory ``i`` is the same
  whatever ``m``, and horizon ``T`` draws only the prefix of the stream it needs.
* **Recursion** (elementwise float64 in a fixed order, so a trajectory's bits do not depend on
  its neighbours in a batch). ``A`` is the real Jordan matrix; each Jordan chain runs
  ``x_{t+1}[c] = (x_t[c+1] + w_t[c]) + mu x_t[c]`` (no ``x_t[c+1]`` term on the last
  coordinate), a complex pair ``mu = a + i b`` as one complex coordinate (``[[a, -b], [b, a]]``
  is multiplication by ``mu``), evaluated per trajectory and step by a
  compiled loop (:func:`_advance`; ascending ``c``, so ``x_t[c+1]`` is read before it moves).
  ``x_0[r] = sum_{s<=r} chol_P[r, s] z[s]`` (ascending ``s``), ``y_t = (sum over chains, in
  order, of their first coordinate) + sqrt(r) v_t``.

Units: ``w ~ N(0, I_n)``, ``v ~ N(0, r)``; outputs in units of the process-noise standard
deviation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Protocol

import numba
import numpy as np
import numpy.typing as npt

from pipeline.models.simulation.streams import cell_rng
from pipeline.models.spectra import Spectrum

__all__ = ["BLOCK", "STREAM", "HiddenSystem", "output_blocks", "outputs", "training_key", "trajectory_rngs"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class HiddenSystem(Protocol):
    """What the simulation reads of a system (e.g. :class:`pipeline.models.fitted_fir.FittedSystem`):
    ``text`` its spectrum text, ``spectrum`` its Jordan blocks (``A`` the real Jordan matrix),
    ``n`` the state dimension, ``noise_ratio`` ``r > 0``, ``chol_P`` (n, n) the lower Cholesky
    factor of the stationary state covariance."""

    @property
    def text(self) -> str: ...
    @property
    def spectrum(self) -> Spectrum: ...
    @property
    def n(self) -> int: ...
    @property
    def noise_ratio(self) -> float: ...
    @property
    def chol_P(self) -> FloatArray: ...


BLOCK = 1024  # steps per draw of one trajectory's stream
STREAM = "fitted_fir.noise"


def training_key(system: HiddenSystem, fit: int) -> tuple[object, ...]:
    """``(spectrum text, noise_ratio, fit)``: the key of one training set's streams."""
    return (system.text, system.noise_ratio, int(fit))


def trajectory_rngs(seed: int, key: Sequence[object], first: int, count: int) -> list[np.random.Generator]:
    """The generators of trajectories ``first .. first + count - 1`` of a training set."""
    return [cell_rng(int(seed), STREAM, *key, i) for i in range(int(first), int(first) + int(count))]


def _start(system: HiddenSystem, rngs: Sequence[np.random.Generator]) -> FloatArray:
    """``x_0`` (n, G): ``chol_P z`` summed elementwise in a fixed order."""
    n = system.n
    z = np.stack([g.standard_normal(n) for g in rngs], axis=1)
    x0 = np.zeros((n, len(rngs)))
    for r in range(n):
        acc = system.chol_P[r, 0] * z[0]
        for s in range(1, r + 1):
            acc = acc + system.chol_P[r, s] * z[s]
        x0[r] = acc
    return x0


def _chain_table(system: HiddenSystem) -> tuple[IntArray, FloatArray]:
    """Per Jordan chain ``(start, size, pair)`` (int) and ``(real, imag)`` (float) of ``mu``."""
    blocks = system.spectrum.blocks
    ints = np.array([(b.start, b.m, b.imag != 0.0) for b in blocks], dtype=np.int64).reshape(-1, 3)
    mus = np.array([(b.real, b.imag) for b in blocks], dtype=np.float64).reshape(-1, 2)
    return ints, mus


@numba.njit(cache=True, nogil=True)
def _advance(
    ints: IntArray, mus: FloatArray, sq_r: float, x: FloatArray, draws: FloatArray, y: FloatArray
) -> None:  # pragma: no cover - compiled
    """One block of ``L = y.shape[1]`` steps: ``y[g, s] = C x_t + sqrt(r) v_t`` and ``x`` advanced
    in place; ``x`` (G, n), ``draws`` (G, >= L, n + 1), ``y`` (G, L). The module's operation
    order: per chain, ``C x_t`` adds its first coordinate, then its coordinates ``c`` in
    ascending order become ``(x_t[c+1] + w_t[c]) + mu x_t[c]`` (a pair's ``mu x`` as
    ``(a xr - b xi, a xi + b xr)``)."""
    G, L = y.shape
    n = x.shape[1]
    for g in range(G):
        for s in range(L):
            total = 0.0
            for ch in range(ints.shape[0]):
                st, size, pair = ints[ch, 0], ints[ch, 1], ints[ch, 2]
                a, b = mus[ch, 0], mus[ch, 1]
                total = total + x[g, st]
                if pair:
                    for c in range(size):
                        r = st + 2 * c
                        xr, xi = x[g, r], x[g, r + 1]
                        dr, di = draws[g, s, r], draws[g, s, r + 1]
                        if c + 1 < size:
                            dr = x[g, r + 2] + dr
                            di = x[g, r + 3] + di
                        x[g, r] = dr + (a * xr - b * xi)
                        x[g, r + 1] = di + (a * xi + b * xr)
                else:
                    for c in range(size):
                        r = st + c
                        d = draws[g, s, r]
                        if c + 1 < size:
                            d = x[g, r + 1] + d
                        x[g, r] = d + a * x[g, r]
            y[g, s] = total + sq_r * draws[g, s, n]


def output_blocks(
    system: HiddenSystem, seed: int, key: Sequence[object], first: int, count: int, steps: int
) -> Iterator[tuple[int, FloatArray]]:
    """Outputs ``y_t``, ``t = 0 .. steps - 1``, of trajectories ``first .. first + count - 1``.

    Yields ``(t0, y)`` per time block of :data:`BLOCK` steps, ``y[g, s] = y_{t0+s}`` of
    trajectory ``first + g`` (count, L); the last block is cut at ``steps``.
    """
    rngs = trajectory_rngs(seed, key, first, count)
    x = np.ascontiguousarray(_start(system, rngs).T)  # (G, n)
    ints, mus = _chain_table(system)
    sq_r = math.sqrt(system.noise_ratio)
    draws = np.empty((len(rngs), BLOCK, system.n + 1))
    for t0 in range(0, int(steps), BLOCK):
        for g, rng in enumerate(rngs):
            rng.standard_normal(out=draws[g])  # the stream's next (BLOCK, n + 1)
        y = np.empty((len(rngs), min(BLOCK, int(steps) - t0)))
        _advance(ints, mus, sq_r, x, draws, y)
        yield t0, y


def outputs(system: HiddenSystem, seed: int, key: Sequence[object], count: int, steps: int) -> FloatArray:
    """The first ``count`` trajectories ``y_0 .. y_{steps-1}`` as one array (count, steps)."""
    out = np.empty((int(count), int(steps)))
    for t0, y in output_blocks(system, seed, key, 0, count, steps):
        out[:, t0 : t0 + y.shape[1]] = y
    return out
