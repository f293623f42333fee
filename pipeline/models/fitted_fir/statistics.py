"""Lagged running sums of one training set, read at every grid ``T`` and ``m`` (prefix sharing).

A training set (MATH §6.3) is simulated once, to the grid's largest ``T`` and ``m``
(:mod:`pipeline.models.simulation.fitted_outputs`); least squares needs it only through the running
sums ``R_ab,e(M) = sum_{tau<=M} sigma_a(tau) sigma_b(tau - e)`` of
:mod:`pipeline.models.fitted_fir.normal_equations`, read at ``M = T - j`` (``j < J``) for every
grid ``T`` and summed over the first ``m`` trajectories for every grid ``m``. Cost per
trajectory and step: one product and one addition per accumulated sum, ``k_max - n_u + O(n_u)``
of them (``O(T k)`` per trajectory, not ``O(T k^2)``).

Summation order (fixed, so a cell's bits depend only on its own ``(T, m)``, never on the grid,
the batch of trajectories or the chunking):

* time is cut into blocks of :data:`SUM_BLOCK` (a power of two) steps from ``t = 0``; within
  a block the total is formed by halving (``left half + right half``, a pairwise tree of depth
  ``log2 SUM_BLOCK``) and block totals are carried across blocks in double-double (TwoSum);
* a reading inside a block is the carry plus the sums of the aligned runs of ``2^l`` steps
  (another pairwise tree, adjacent pairs) of the binary decomposition of its offset, largest
  first, formed as a double-double;
* trajectories are added in their order, in double-double, and recorded at the grid ``m``.

The products, block totals and trajectory sums run as compiled loops (numba) performing exactly
these operations elementwise; they do not trap overflow, so the sums are checked finite once.

Error (per accumulated sum, against the exact sum of the same float series values): at most
``(2 log2(SUM_BLOCK) + 4) u`` times the sum of the absolute products, plus ``O(u^2)`` terms
(:func:`pipeline.models.fitted_fir.least_squares` turns this into ball radii).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.models.fitted_fir.normal_equations import Key, required_keys
from pipeline.models.fitted_fir.reference import Reference, reference
from pipeline.models.fitted_fir.series import SeriesState, two_sum
from pipeline.models.fitted_fir.system import FittedSystem, UnsupportedSystem
from pipeline.models.simulation.fitted_outputs import output_blocks, training_key

__all__ = ["SUM_BLOCK", "TRAJECTORY_BATCH", "Statistics", "check_grid", "check_horizon", "training_statistics"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SUM_BLOCK = 128  # steps per block of the running sums (the simulation's BLOCK is a multiple)
TRAJECTORY_BATCH = 32  # trajectories simulated side by side (no effect on the bits)


@dataclass(frozen=True)
class Statistics:
    """The running sums of one training set at every grid ``(T, m)``.

    ``keys`` (S,) the accumulated sums ``(a, b, e)``; reading ``(a, b, e, j)`` at grid
    ``(T[iT], m[im])`` is ``hi[iT, im, s, j] + lo[iT, im, s, j]`` (a double-double; zero where
    ``T - j < 0``), shapes (nT, nm, S, J). ``reference`` the factors of the system, ``k_max``
    the longest filter the keys serve.
    """

    system: FittedSystem
    seed: int
    fit: int
    T: IntArray
    m: IntArray
    k_max: int
    reference: Reference
    keys: tuple[Key, ...]
    J: int
    hi: FloatArray
    lo: FloatArray

    def index(self, key: Key) -> int:
        return self.keys.index(key)


def check_grid(name: str, values: Sequence[int] | npt.ArrayLike, low: int) -> IntArray:
    """A strictly increasing 1-D integer grid with every value ``>= low``; ``ValueError`` naming it."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D grid, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        f = arr.astype(np.float64)
        if not np.all(f == np.round(f)):
            raise ValueError(f"{name} must hold integers")
    out = arr.astype(np.int64)
    if np.any(out < low) or np.any(np.diff(out) <= 0):
        raise ValueError(f"{name} = {out.tolist()}: must be strictly increasing integers >= {low}")
    return out


EXPLOSIVE_BITS = 26  # an explosive system's outputs may outgrow the noise by at most 2^26


def check_horizon(system: FittedSystem, T: int) -> None:
    """:class:`UnsupportedSystem` when an eigenvalue of modulus ``rho > 1`` grows by more than
    ``2^EXPLOSIVE_BITS`` by ``T``: the float64 outputs then carry the process noise in fewer than
    27 of their bits (beyond ``rho^T ~ 2^53`` not at all), so they stop being a sample of the
    model, and the risk of a filter fitted to them measures their rounding."""
    rho = system.spectrum.spectral_radius
    if rho > 1.0 and T * math.log2(rho) > EXPLOSIVE_BITS:
        limit = math.floor(EXPLOSIVE_BITS / math.log2(rho))
        raise UnsupportedSystem(
            f"spectrum {system.text!r}: T = {T} too long for an explosive system (rho = {rho!r}); "
            f"its float64 trajectories lose the noise below their last bit: allowed T <= {limit}"
        )


class _Accumulator:
    """Running sums of one batch of ``G`` trajectories, read at the grid ``T``."""

    def __init__(self, ref: Reference, keys: tuple[Key, ...], J: int, T: IntArray, G: int):
        self.S = len(keys)
        self.hist = [max([e for a, b, e in keys if b == i] + [0]) for i in range(ref.q + 1)]
        self.past = [np.zeros((G, h)) for h in self.hist]
        self.series = SeriesState(ref, G)
        self.carry_hi = np.zeros((G, self.S))
        self.carry_lo = np.zeros((G, self.S))
        self.reads: dict[int, list[tuple[int, int]]] = {}
        for iT, tv in enumerate(T.tolist()):
            for j in range(J):
                if tv - j >= 0:
                    self.reads.setdefault(tv - j, []).append((iT, j))
        self.read_blocks = {M // SUM_BLOCK: True for M in self.reads}
        self.buffer = np.empty((G, self.S, SUM_BLOCK))
        self.key_a = np.array([a for a, _, _ in keys], dtype=np.int64)
        self.key_b = np.array([b for _, b, _ in keys], dtype=np.int64)
        self.key_e = np.array([e for _, _, e in keys], dtype=np.int64)
        self.H = max(self.hist)
        self.halves = np.empty(SUM_BLOCK)
        self.rec_hi = np.zeros((G, T.size, self.S, J))
        self.rec_lo = np.zeros((G, T.size, self.S, J))

    def add_block(self, t0: int, y: FloatArray) -> None:
        """Add the outputs ``y`` (G, L) of times ``t0 .. t0 + L - 1`` (``t0`` a multiple of SUM_BLOCK)."""
        values = self.series.advance(y)
        G, L = y.shape
        H = self.H
        ext = np.empty((len(values), G, H + L))  # ext[i, :, H + t]: series i at block time t >= -hist[i]
        for i, v in enumerate(values):
            h = self.hist[i]
            ext[i, :, H - h : H] = self.past[i]
            ext[i, :, H:] = v
            if h:
                self.past[i] = ext[i, :, H + L - h : H + L].copy()
        for s0 in range(0, L, SUM_BLOCK):
            self._sum_block(t0 + s0, ext, s0, min(SUM_BLOCK, L - s0))

    def _sum_block(self, t0: int, ext: FloatArray, s0: int, width: int) -> None:
        hits = (
            [(M, r) for M in range(t0, t0 + width) for r in self.reads.get(M, ())]
            if self.read_blocks.get(t0 // SUM_BLOCK)
            else []
        )
        keys = (self.key_a, self.key_b, self.key_e)
        if not hits and width == SUM_BLOCK:  # only the total: products halved as they are formed
            _fused_totals(ext, self.H + s0, *keys, self.carry_hi, self.carry_lo, self.halves)
            return
        P = self.buffer
        _products(ext, self.H + s0, *keys, width, P)  # zero-padded beyond width
        if hits:
            levels = _pairwise_levels(P)
            for M, (iT, j) in hits:
                hi, lo = two_sum(self.carry_hi, _prefix(levels, M - t0 + 1))
                self.rec_hi[:, iT, :, j] = hi
                self.rec_lo[:, iT, :, j] = lo + self.carry_lo
        if width == SUM_BLOCK:
            _carry_totals(P, self.carry_hi, self.carry_lo, self.halves)


@numba.njit(cache=True, nogil=True)
def _products(
    ext: FloatArray, start: int, a: IntArray, b: IntArray, e: IntArray, width: int, P: FloatArray
) -> None:  # pragma: no cover - compiled
    """``P[g, s, tau] = ext[a_s, g, start + tau] ext[b_s, g, start + tau - e_s]`` for
    ``tau < width``, zero beyond; ``P`` (G, S, SUM_BLOCK)."""
    G, S = P.shape[0], P.shape[1]
    for g in range(G):
        for s in range(S):
            x = ext[a[s], g, start : start + width]
            y = ext[b[s], g, start - e[s] : start - e[s] + width]
            row = P[g, s]
            for tau in range(width):
                row[tau] = x[tau] * y[tau]
            row[width:] = 0.0


@numba.njit(cache=True, nogil=True)
def _fused_totals(
    ext: FloatArray,
    start: int,
    a: IntArray,
    b: IntArray,
    e: IntArray,
    carry_hi: FloatArray,
    carry_lo: FloatArray,
    halves: FloatArray,
) -> None:  # pragma: no cover - compiled
    """:func:`_products` of a whole block followed by :func:`_carry_totals`, without storing
    the products (the same operations, so the same bits)."""
    G, S = carry_hi.shape
    W = halves.shape[0]
    for g in range(G):
        for s in range(S):
            x = ext[a[s], g, start : start + W]
            y = ext[b[s], g, start - e[s] : start - e[s] + W]
            for i in range(W):
                halves[i] = x[i] * y[i]
            h = W // 2
            while h >= 1:
                for i in range(h):
                    halves[i] = halves[i] + halves[i + h]
                h //= 2
            c = carry_hi[g, s]
            total = halves[0]
            hi = c + total
            bb = hi - c
            carry_lo[g, s] = carry_lo[g, s] + ((c - (hi - bb)) + (total - bb))
            carry_hi[g, s] = hi


@numba.njit(cache=True, nogil=True)
def _carry_totals(
    P: FloatArray, carry_hi: FloatArray, carry_lo: FloatArray, halves: FloatArray
) -> None:  # pragma: no cover - compiled
    """Add each total of ``P`` (G, S, SUM_BLOCK), formed by halving (``x[i] + x[i + h]`` for
    ``h = SUM_BLOCK / 2, ..., 1``), to the double-double carry ``carry_hi`` + ``carry_lo``
    (G, S): ``hi, err = TwoSum(carry_hi, total)``, ``carry_lo + err``."""
    G, S, W = P.shape
    for g in range(G):
        for s in range(S):
            for i in range(W):
                halves[i] = P[g, s, i]
            h = W // 2
            while h >= 1:
                for i in range(h):
                    halves[i] = halves[i] + halves[i + h]
                h //= 2
            a = carry_hi[g, s]
            total = halves[0]
            hi = a + total
            bb = hi - a
            err = (a - (hi - bb)) + (total - bb)
            carry_hi[g, s] = hi
            carry_lo[g, s] = carry_lo[g, s] + err


def _pairwise_levels(P: FloatArray) -> list[FloatArray]:
    """The pairwise tree of ``P`` (..., SUM_BLOCK) along its last axis: level ``l`` (..., SUM_BLOCK / 2^l)
    holds the sums of aligned runs of ``2^l`` steps, each formed as ``left + right``."""
    levels = [P]
    while levels[-1].shape[-1] > 1:
        x = levels[-1]
        levels.append(x[..., 0::2] + x[..., 1::2])
    return levels


def _prefix(levels: list[FloatArray], p: int) -> FloatArray:
    """Sum of the first ``p`` steps (1 <= p <= SUM_BLOCK): the aligned runs of the binary
    decomposition of ``p``, largest first, added in that order."""
    acc: FloatArray | None = None
    start = 0
    for lev in range(len(levels) - 1, -1, -1):
        if p & (1 << lev):
            node = levels[lev][..., start >> lev]
            acc = node if acc is None else acc + node
            start += 1 << lev
    assert acc is not None
    return acc


class _TrajectorySums:
    """Double-double sums over trajectories in their order, recorded at the grid ``m``."""

    def __init__(self, shape: tuple[int, ...], m: IntArray):
        self.hi = np.zeros(shape)
        self.lo = np.zeros(shape)
        self.out_hi = np.zeros((shape[0], m.size, *shape[1:]))
        self.out_lo = np.zeros((shape[0], m.size, *shape[1:]))
        self.where = {int(v): i for i, v in enumerate(m.tolist())}
        self.count = 0

    def add(self, hi: FloatArray, lo: FloatArray) -> None:
        """Add trajectories ``hi``, ``lo`` (G, *shape) in order: ``TwoSum(sum_hi, hi)``, then
        ``(sum_lo + lo) + err``; recorded after each grid ``m``."""
        G, nT = hi.shape[0], hi.shape[1]
        record_at = np.array([self.where.get(self.count + g + 1, -1) for g in range(G)], dtype=np.int64)
        flat = (self.hi.reshape(nT, -1), self.lo.reshape(nT, -1))
        outs = (self.out_hi.reshape(nT, self.out_hi.shape[1], -1), self.out_lo.reshape(nT, self.out_lo.shape[1], -1))
        _add_trajectories(hi.reshape(G, nT, -1), lo.reshape(G, nT, -1), record_at, *flat, *outs)
        self.count += G


@numba.njit(cache=True, nogil=True)
def _add_trajectories(
    hi: FloatArray,
    lo: FloatArray,
    record_at: IntArray,
    sum_hi: FloatArray,
    sum_lo: FloatArray,
    out_hi: FloatArray,
    out_lo: FloatArray,
) -> None:  # pragma: no cover - compiled
    """:meth:`_TrajectorySums.add` on flat views: ``hi``, ``lo`` (G, nT, E), ``sum_*`` (nT, E),
    ``out_*`` (nT, nm, E) whose ``[:, i]`` receive the sums after trajectory ``g`` when
    ``record_at[g] = i >= 0``."""
    G, nT, E = hi.shape
    for g in range(G):
        for j in range(nT):
            for k in range(E):
                a = sum_hi[j, k]
                b = hi[g, j, k]
                s = a + b
                bb = s - a
                err = (a - (s - bb)) + (b - bb)
                sum_hi[j, k] = s
                sum_lo[j, k] = (sum_lo[j, k] + lo[g, j, k]) + err
        i = record_at[g]
        if i >= 0:
            out_hi[:, i, :] = sum_hi
            out_lo[:, i, :] = sum_lo


def training_statistics(
    system: FittedSystem,
    *,
    seed: int,
    fit: int,
    T: Sequence[int] | npt.ArrayLike,
    trajectories: Sequence[int] | npt.ArrayLike,
    k_max: int,
) -> Statistics:
    """Simulate training set ``fit`` of ``system`` to the largest ``T`` and ``m`` and return its
    running sums at every grid ``(T, m)`` for filters of up to ``k_max`` taps.

    ``T`` (nT,) horizons ``>= 1`` and ``trajectories`` (nm,) counts ``m >= 1``, strictly
    increasing; ``k_max >= 1``. Cost ``O(m_max T_max (n^2 + k_max))``.
    """
    Tg = check_grid("T", T, 1)
    mg = check_grid("trajectories", trajectories, 1)
    if int(k_max) < 1:
        raise ValueError(f"k_max = {k_max}: must be >= 1")
    check_horizon(system, int(Tg[-1]))
    ref = reference(system.spectrum)
    keys, J = required_keys(ref, int(k_max))
    key = training_key(system, fit)
    sums = _TrajectorySums((Tg.size, len(keys), J), mg)
    m_max, steps = int(mg[-1]), int(Tg[-1]) + 1
    try:
        with np.errstate(over="raise", invalid="raise"):
            for first in range(0, m_max, TRAJECTORY_BATCH):
                count = min(TRAJECTORY_BATCH, m_max - first)
                acc = _Accumulator(ref, keys, J, Tg, count)
                for t0, y in output_blocks(system, seed, key, first, count, steps):
                    acc.add_block(t0, y)
                sums.add(acc.rec_hi, acc.rec_lo)
            if not (np.all(np.isfinite(sums.hi)) and np.all(np.isfinite(sums.lo))):
                raise FloatingPointError  # the compiled sums do not trap: check once
    except FloatingPointError:
        raise UnsupportedSystem(
            f"spectrum {system.text!r}, noise_ratio {system.noise_ratio!r}: the training data or their sums "
            f"overflow float64 before T = {int(Tg[-1])} (an eigenvalue of modulus > 1); use shorter horizons"
        ) from None
    return Statistics(system, int(seed), int(fit), Tg, mg, int(k_max), ref, keys, J, sums.out_hi, sums.out_lo)
