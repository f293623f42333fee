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
from pipeline.models.fitted_fir.series import SeriesState
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
    """Running sums of one batch of ``G`` trajectories, read at the grid ``T``.

    Arrays hold trajectories on their last axis, so every compiled loop runs over contiguous
    rows of ``G`` independent values (one trajectory each) and vectorises."""

    def __init__(self, ref: Reference, keys: tuple[Key, ...], J: int, T: IntArray, G: int):
        self.S = len(keys)
        self.H = max([e for _, _, e in keys] + [0])  # the longest lag any sum reads back
        self.past = np.zeros((ref.q + 1, self.H, G))  # the last H values of every series
        self.series = SeriesState(ref, G)
        self.carry_hi = np.zeros((self.S, G))
        self.carry_lo = np.zeros((self.S, G))
        self.block_reads = _read_table(T, J)
        self.no_reads = np.zeros((0, 2 + SUM_BLOCK.bit_length()), dtype=np.int64)
        self.key_a = np.array([a for a, _, _ in keys], dtype=np.int64)
        self.key_b = np.array([b for _, b, _ in keys], dtype=np.int64)
        self.key_e = np.array([e for _, _, e in keys], dtype=np.int64)
        self.products = np.empty((SUM_BLOCK, G))
        self.tree = np.empty((2 * SUM_BLOCK, G))
        self.rec_hi = np.zeros((T.size, self.S, J, G))
        self.rec_lo = np.zeros((T.size, self.S, J, G))

    def add_block(self, t0: int, y: FloatArray) -> None:
        """Add the outputs ``y`` (G, L) of times ``t0 .. t0 + L - 1`` (``t0`` a multiple of SUM_BLOCK)."""
        G, L = y.shape
        H = self.H
        ext = np.empty((self.past.shape[0], H + L, G))  # ext[i, H + t]: series i at block time t >= -H
        ext[:, :H] = self.past
        self.series.advance_into(y, ext, H)
        self.past[:] = ext[:, L:]
        for s0 in range(0, L, SUM_BLOCK):
            reads = self.block_reads.get((t0 + s0) // SUM_BLOCK, self.no_reads)
            _sum_block(
                ext,
                H + s0,
                self.key_a,
                self.key_b,
                self.key_e,
                min(SUM_BLOCK, L - s0),
                reads,
                self.carry_hi,
                self.carry_lo,
                self.rec_hi,
                self.rec_lo,
                self.products,
                self.tree,
            )


def _read_table(T: IntArray, J: int) -> dict[int, IntArray]:
    """Per time block, its readings ``M = T - j >= 0`` as rows ``(iT, j, node_0, ..., node_L)``:
    grid index of ``T``, ``j``, and the rows of the block's adjacent-pair tree (:func:`_pair_tree`)
    whose sum, in this order, is the sum of the block's first ``M % SUM_BLOCK + 1`` products: the
    aligned runs of the binary decomposition of that count, largest first (-1 pads)."""
    W = SUM_BLOCK
    rows: dict[int, list[list[int]]] = {}
    for iT, tv in enumerate(T.tolist()):
        for j in range(J):
            M = tv - j
            if M < 0:
                continue
            p = M % W + 1
            nodes: list[int] = []
            pos, run = 0, W
            while run >= 1:
                if p & run:
                    nodes.append(2 * W - 2 * (W // run) + pos // run)  # level log2(run) starts at 2W - 2W/run
                    pos += run
                run //= 2
            rows.setdefault(M // W, []).append([iT, j, *nodes] + [-1] * (W.bit_length() - len(nodes)))
    return {blk: np.array(r, dtype=np.int64) for blk, r in rows.items()}


@numba.njit(cache=True, nogil=True)
def _sum_block(
    ext: FloatArray,
    start: int,
    a: IntArray,
    b: IntArray,
    e: IntArray,
    width: int,
    reads: IntArray,
    carry_hi: FloatArray,
    carry_lo: FloatArray,
    rec_hi: FloatArray,
    rec_lo: FloatArray,
    P: FloatArray,
    tree: FloatArray,
) -> None:  # pragma: no cover - compiled
    """One block of ``width <= SUM_BLOCK`` steps of every sum ``s``, for every trajectory ``g``
    (the last axis of every array; the operations below happen per ``g``).

    Products ``P[tau] = ext[a_s, start + tau] ext[b_s, start + tau - e_s]`` (``tau < width``, zero
    beyond). Each reading of ``reads`` (rows of :func:`_read_table`) goes into ``rec_*[iT, s, j]``:
    ``hi, lo = TwoSum(carry_hi, prefix)`` and ``lo + carry_lo``, where ``prefix`` adds the aligned
    runs of the binary decomposition of its step count, largest first, each run the
    adjacent-pair tree of its products. A whole block then adds its total, formed by halving ``x[i] + x[i + h]``
    (``h = SUM_BLOCK / 2, ..., 1``), to the carry: ``hi, err = TwoSum(carry_hi, total)``,
    ``carry_lo + err``."""
    S = a.shape[0]
    W = P.shape[0]
    for s in range(S):
        xa = ext[a[s]]
        yb = ext[b[s]]
        if reads.shape[0] or width < W:
            for i in range(width):
                _product_row(xa[start + i], yb[start - e[s] + i], P[i])
            for i in range(width, W):
                P[i, :] = 0.0
            if reads.shape[0]:
                _pair_tree(P, tree)
                _read_all(tree, reads, carry_hi[s], carry_lo[s], rec_hi, rec_lo, s)
            h = W // 2
        else:  # a whole block without readings: products and the first three halvings in one pass
            for i in range(W // 8):
                _subtree_row(xa, yb, start + i, start - e[s] + i, W // 8, P[i])
            h = W // 16
        if width == W:
            while h >= 1:
                for i in range(h):
                    _add_row(P[i], P[i + h])
                h //= 2
            _carry_row(P[0], carry_hi[s], carry_lo[s])


@numba.njit(cache=True, nogil=True, inline="always")
def _product_row(x: FloatArray, y: FloatArray, out: FloatArray) -> None:  # pragma: no cover - compiled
    """``out = x y`` elementwise."""
    for g in range(out.shape[0]):
        out[g] = x[g] * y[g]


@numba.njit(cache=True, nogil=True, inline="always")
def _subtree_row(
    x: FloatArray, y: FloatArray, sx: int, sy: int, q: int, out: FloatArray
) -> None:  # pragma: no cover - compiled
    """The first three halvings of a block's products at position ``i`` without storing them:
    with ``p(c) = x[sx + c q] y[sy + c q]`` (rows; ``q = SUM_BLOCK / 8``), ``out = ((p0 + p4) + (p2 + p6))
    + ((p1 + p5) + (p3 + p7))``, which is ``P[i]`` after the halvings ``h = 4q, 2q, q``."""
    x0, x1, x2, x3 = x[sx], x[sx + q], x[sx + 2 * q], x[sx + 3 * q]
    x4, x5, x6, x7 = x[sx + 4 * q], x[sx + 5 * q], x[sx + 6 * q], x[sx + 7 * q]
    y0, y1, y2, y3 = y[sy], y[sy + q], y[sy + 2 * q], y[sy + 3 * q]
    y4, y5, y6, y7 = y[sy + 4 * q], y[sy + 5 * q], y[sy + 6 * q], y[sy + 7 * q]
    for g in range(out.shape[0]):
        a = x0[g] * y0[g] + x4[g] * y4[g]
        b = x2[g] * y2[g] + x6[g] * y6[g]
        c = x1[g] * y1[g] + x5[g] * y5[g]
        d = x3[g] * y3[g] + x7[g] * y7[g]
        out[g] = (a + b) + (c + d)


@numba.njit(cache=True, nogil=True, inline="always")
def _add_row(acc: FloatArray, x: FloatArray) -> None:  # pragma: no cover - compiled
    """``acc = acc + x`` elementwise."""
    for g in range(acc.shape[0]):
        acc[g] = acc[g] + x[g]


@numba.njit(cache=True, nogil=True, inline="always")
def _carry_row(total: FloatArray, c_hi: FloatArray, c_lo: FloatArray) -> None:  # pragma: no cover - compiled
    """``c_hi, err = TwoSum(c_hi, total)``, ``c_lo = c_lo + err`` elementwise."""
    for g in range(total.shape[0]):
        c = c_hi[g]
        t = total[g]
        hi = c + t
        bb = hi - c
        c_lo[g] = c_lo[g] + ((c - (hi - bb)) + (t - bb))
        c_hi[g] = hi


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_tree(P: FloatArray, tree: FloatArray) -> None:  # pragma: no cover - compiled
    """The adjacent-pair tree of ``P`` (W, G) into ``tree`` (2 W, G): level 0 (``P``) at row 0,
    level ``l`` (``W / 2^l`` rows ``left + right``) at row ``2 W - 2 W / 2^l``."""
    W, G = P.shape
    for i in range(W):
        for g in range(G):
            tree[i, g] = P[i, g]
    src = 0
    size = W
    while size > 1:  # plain 2-D indexing: row views per row would cost more than the row's sums
        dst = src + size
        size //= 2
        for i in range(size):
            for g in range(G):
                tree[dst + i, g] = tree[src + 2 * i, g] + tree[src + 2 * i + 1, g]
        src = dst


@numba.njit(cache=True, nogil=True, inline="always")
def _read_all(
    tree: FloatArray,
    reads: IntArray,
    c_hi: FloatArray,
    c_lo: FloatArray,
    rec_hi: FloatArray,
    rec_lo: FloatArray,
    s: int,
) -> None:  # pragma: no cover - compiled
    """Every reading ``(iT, j, nodes...)`` of ``reads`` into ``rec_*[iT, s, j]`` (``rec_*`` (nT, S, J, G)): the
    prefix is the sum of its tree rows in order (``-1`` ends them); then ``hi, lo =
    TwoSum(c_hi, prefix)`` and ``lo + c_lo``."""
    G = c_hi.shape[0]
    for r in range(reads.shape[0]):
        iT, j, first = reads[r, 0], reads[r, 1], reads[r, 2]
        for g in range(G):
            rec_hi[iT, s, j, g] = tree[first, g]
        c = 3
        while c < reads.shape[1] and reads[r, c] >= 0:
            node = reads[r, c]
            for g in range(G):
                rec_hi[iT, s, j, g] = rec_hi[iT, s, j, g] + tree[node, g]
            c += 1
        for g in range(G):
            h = c_hi[g]
            acc = rec_hi[iT, s, j, g]
            hi = h + acc
            bb = hi - h
            rec_hi[iT, s, j, g] = hi
            rec_lo[iT, s, j, g] = ((h - (hi - bb)) + (acc - bb)) + c_lo[g]


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
                sums.add(np.moveaxis(acc.rec_hi, -1, 0), np.moveaxis(acc.rec_lo, -1, 0))
            if not (np.all(np.isfinite(sums.hi)) and np.all(np.isfinite(sums.lo))):
                raise FloatingPointError  # the compiled sums do not trap: check once
    except FloatingPointError:
        raise UnsupportedSystem(
            f"spectrum {system.text!r}, noise_ratio {system.noise_ratio!r}: the training data or their sums "
            f"overflow float64 before T = {int(Tg[-1])} (an eigenvalue of modulus > 1); use shorter horizons"
        ) from None
    return Statistics(system, int(seed), int(fit), Tg, mg, int(k_max), ref, keys, J, sums.out_hi, sums.out_lo)
