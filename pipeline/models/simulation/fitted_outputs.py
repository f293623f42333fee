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
  its neighbours in a batch). ``A`` is the real Jordan matrix; each Jordan chain is run from its
  last coordinate up: ``x_{t+1}[c] = mu x_t[c] + (x_t[c+1] + w_t[c])`` (no ``x_t[c+1]`` term
  on the last coordinate), a complex pair ``mu = a + i b`` as one complex coordinate
  (``[[a, -b], [b, a]]`` is multiplication by ``mu``), evaluated along time by
  ``scipy.signal.lfilter`` (``y[s] = in[s] + mu y[s-1]``, state carried across blocks).
  ``x_0[r] = sum_{s<=r} chol_P[r, s] z[s]`` (ascending ``s``), ``y_t = (sum over chains, in
  order, of their first coordinate) + sqrt(r) v_t``.

Units: ``w ~ N(0, I_n)``, ``v ~ N(0, r)``; outputs in units of the process-noise standard
deviation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from pipeline.models.simulation.streams import cell_rng
from pipeline.models.spectra import Spectrum

__all__ = ["BLOCK", "STREAM", "HiddenSystem", "output_blocks", "outputs", "training_key", "trajectory_rngs"]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]


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


class _Chains:
    """The Jordan chains of ``A`` as real or complex coordinates with their states (G,)."""

    def __init__(self, system: HiddenSystem, x0: FloatArray):
        self.parts: list[tuple[complex | float, bool, list[ComplexArray | FloatArray]]] = []
        for b in system.spectrum.blocks:
            if b.imag == 0.0:
                states: list[ComplexArray | FloatArray] = [x0[b.start + c].copy() for c in range(b.m)]
                self.parts.append((b.real, False, states))
            else:
                cs = [x0[b.start + 2 * c] + 1j * x0[b.start + 2 * c + 1] for c in range(b.m)]
                self.parts.append((complex(b.real, b.imag), True, list(cs)))
        self.starts = [b.start for b in system.spectrum.blocks]
        self.pairs = [b.imag != 0.0 for b in system.spectrum.blocks]

    def advance(self, w: FloatArray) -> FloatArray:
        """Run one block; ``w`` (G, L, n) process noise. Returns ``C x_t`` (G, L)."""
        G, L, _ = w.shape
        total = np.zeros((G, L))
        for (mu, pair, states), start in zip(self.parts, self.starts, strict=True):
            below: FloatArray | ComplexArray | None = None  # trajectory of the coordinate below
            for c in range(len(states) - 1, -1, -1):
                if pair:
                    noise: FloatArray | ComplexArray = w[:, :, start + 2 * c] + 1j * w[:, :, start + 2 * c + 1]
                else:
                    noise = np.ascontiguousarray(w[:, :, start + c])
                drive = noise if below is None else below + noise
                x_now = states[c]
                zi = (mu * x_now)[:, None]
                nxt = lfilter([1.0], [1.0, -mu], drive, axis=-1, zi=zi)[0]
                traj = np.empty_like(nxt)
                traj[:, 0] = x_now
                traj[:, 1:] = nxt[:, :-1]
                states[c] = nxt[:, -1].copy()
                below = traj
            assert below is not None
            total = total + np.asarray(below.real if pair else below, dtype=np.float64)
        return total


def output_blocks(
    system: HiddenSystem, seed: int, key: Sequence[object], first: int, count: int, steps: int
) -> Iterator[tuple[int, FloatArray]]:
    """Outputs ``y_t``, ``t = 0 .. steps - 1``, of trajectories ``first .. first + count - 1``.

    Yields ``(t0, y)`` per time block of :data:`BLOCK` steps, ``y[g, s] = y_{t0+s}`` of
    trajectory ``first + g`` (count, L); the last block is cut at ``steps``.
    """
    rngs = trajectory_rngs(seed, key, first, count)
    chains = _Chains(system, _start(system, rngs))
    n = system.n
    sq_r = math.sqrt(system.noise_ratio)
    for t0 in range(0, int(steps), BLOCK):
        draws = np.stack([g.standard_normal((BLOCK, n + 1)) for g in rngs])  # (G, BLOCK, n + 1)
        y = chains.advance(draws[:, :, :n]) + sq_r * draws[:, :, n]
        yield t0, y[:, : min(BLOCK, int(steps) - t0)]


def outputs(system: HiddenSystem, seed: int, key: Sequence[object], count: int, steps: int) -> FloatArray:
    """The first ``count`` trajectories ``y_0 .. y_{steps-1}`` as one array (count, steps)."""
    out = np.empty((int(count), int(steps)))
    for t0, y in output_blocks(system, seed, key, 0, count, steps):
        out[:, t0 : t0 + y.shape[1]] = y
    return out
