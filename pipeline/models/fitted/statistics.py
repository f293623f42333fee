"""Sufficient statistics of simulated trajectories, shared by every grid ``T`` and ``m``.

The data of one training set (MATH.md section 6.1) are the pairs
``(z_t, J z_t + v_t)``, ``t < T``, of its first ``m`` trajectories (Jordan coordinates,
:mod:`pipeline.models.simulation.fitted_states`): regressors the float trajectory, targets taken
exactly. Least squares sees them only through

    S = sum_{i<m} sum_{t<T} z_t z_t'        W = sum_{i<m} sum_{t<T} v_t z_t'

(the cross moment is ``C = J S + W``; ``C`` itself is not accumulated, because in floats
its ``J S`` part swamps ``W`` once the unstable scale passes ~1e8, and the fitted error
lives in ``W S^-1``).

Fixed summation order, so a cell's bits depend on nothing but its own ``(T, m)``: per
trajectory a running sum over ``t`` (sequential), then a running sum over trajectories
``i`` (sequential); elementwise float64 only (no ``np.sum``, whose pairwise order depends
on the length, and no BLAS).

Compensated entries. Floats hold every entry to ~1e-16 of its own scale
``sqrt(S_aa S_bb)``, but the fit needs ``S`` to ``1e-16 kappa`` where ``kappa`` is the
condition number of the correlation matrix ``diag(S)^-1/2 S diag(S)^-1/2``. That is
~3e3 for a Jordan block of size 4 at 1 (any ``T``) but grows like ``T^6`` for one at
``|lam| > 1`` (7e5 at ``T = 70``, 3e11 at 500, 1.5e15 at 2000 for ``1.1^4``): there the
float sums carry no information about the directions that matter. So the entries among
coordinates of chains with ``rho > 1`` (and of marginal chains of size >= 5), and the
columns of ``W`` at those coordinates, are summed in twice the working precision
(the product's exact error by a fused multiply-add, Knuth's TwoSum: Ogita-Rump-Oishi's ``Dot2``): each such entry is
the unevaluated sum ``hi + lo`` of two floats, accurate to ~1e-32 of its scale.

Scaled chains (``rho > 1``) carry exponents: entry ``S_ab`` is ``(hi + lo) 2^(e_a + e_b)``
and ``W_ab`` is ``(hi + lo) 2^(e_b)``, ``e`` the exponents of the time block holding the
last summed step (the running sums are rescaled by exact powers of two between blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numba
import numpy as np
from numpy.typing import NDArray

from pipeline.models.exact_products import product_error
from pipeline.models.simulation.fitted_states import (
    BATCH_GROUPS,
    BLOCK,
    GROUP,
    Block,
    Chain,
    Recursion,
    batches,
    segments,
    simulate,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

COMPENSATED_MARGINAL_SIZE = 5  # marginal chains of at least this size are summed compensated
_NORMAL_SCALE = 1022  # 2^d is a normal float64 for |d| up to here


def compensated_coordinates(chs: Sequence[Chain]) -> BoolArray:
    """(n,) whether a coordinate's entries are summed in twice the working precision."""
    flags: list[bool] = []
    for c in chs:
        flag = c.modulus > 1.0 or (c.modulus == 1.0 and c.size >= COMPENSATED_MARGINAL_SIZE)
        flags.extend([flag] * c.dim)
    return np.array(flags, dtype=bool)


@dataclass(frozen=True)
class Layout:
    """Entries accumulated per step: the upper triangle of ``S`` (pairs ``a <= b`` row by
    row), then ``W`` row-major; ``comp`` indexes the compensated ones."""

    n: int
    a: IntArray  # (K,) first factor's coordinate (S: z_a; W: v_a)
    b: IntArray  # (K,) second factor's coordinate (z_b)
    is_w: BoolArray  # (K,)
    comp: IntArray  # (Kc,) indices of compensated entries

    @classmethod
    def of(cls, n: int, flags: BoolArray) -> Layout:
        ia, ib = np.triu_indices(n)
        wa, wb = np.divmod(np.arange(n * n), n)
        a = np.concatenate([ia, wa]).astype(np.int64)
        b = np.concatenate([ib, wb]).astype(np.int64)
        is_w = np.concatenate([np.zeros(ia.size, bool), np.ones(n * n, bool)])
        comp = np.flatnonzero(np.where(is_w, flags[b], flags[a] & flags[b])).astype(np.int64)
        return cls(n, a, b, is_w, comp)

    @property
    def K(self) -> int:
        return int(self.a.size)

    def shift(self, e: IntArray) -> IntArray:
        """(K,) the exponent of every entry for coordinate exponents ``e`` (n,)."""
        out: IntArray = np.where(self.is_w, 0, e[self.a]) + e[self.b]
        return out


@dataclass(frozen=True)
class Moments:
    """``S`` and ``W`` at every grid ``(T, m)`` of one training set (Jordan coordinates).

    ``S[j, i] = (S_hi + S_lo)[j, i] * 2^(e[j, a] + e[j, b])`` (nT, nm, n, n), symmetric;
    ``W[j, i] = (W_hi + W_lo)[j, i] * 2^e[j, b]`` (nT, nm, n, n); ``e`` (nT, n) int;
    ``lo`` parts are zero outside the compensated entries. ``raw_z`` and ``raw_v``
    (mr, tr, n): ``z_t``, ``v_t`` of the first ``mr`` trajectories' first ``tr`` steps, unscaled, kept for
    grid cells with fewer than ``n`` non-zero regressors (``m (T - 1) < n``), where the fit
    needs the data itself.
    """

    T: IntArray
    m: IntArray
    S_hi: FloatArray
    S_lo: FloatArray
    W_hi: FloatArray
    W_lo: FloatArray
    e: IntArray
    raw_z: FloatArray
    raw_v: FloatArray

    @property
    def n(self) -> int:
        return int(self.S_hi.shape[-1])


class _Accumulator:
    """Per-trajectory running sums over time (sequential in ``t``) for one batch of ``G``
    trajectories, kept at the grid ``T``; compensated entries carry low parts (TwoSum).
    The steps are added by a compiled loop (:func:`_add_steps`), elementwise per trajectory."""

    def __init__(self, layout: Layout, T: IntArray, G: int):
        self.layout = layout
        self.T = T
        self.G = G
        K, Kc = layout.K, layout.comp.size
        self.hi = np.zeros((K, G))
        self.lo = np.zeros((Kc, G))
        self.rec_hi = np.zeros((T.size, K, G))
        self.rec_lo = np.zeros((T.size, Kc, G))
        self.rec_e = np.zeros((T.size, layout.n), dtype=np.int64)
        self.e = np.zeros(layout.n, dtype=np.int64)
        self.comp_index = np.full(K, -1, dtype=np.int64)
        self.comp_index[layout.comp] = np.arange(Kc)
        self.record_at = np.full(int(T[-1]) + 2, -1, dtype=np.int64)
        self.record_at[T] = np.arange(T.size)

    def rescale(self, e: IntArray) -> None:
        if np.array_equal(e, self.e):
            return
        d = self.layout.shift(self.e - e)
        if np.all(np.abs(d) <= _NORMAL_SCALE):  # times an exact normal power of two: ldexp's bits
            f = np.ldexp(1.0, d)
            np.multiply(self.hi, f[:, None], out=self.hi)
            np.multiply(self.lo, f[self.layout.comp, None], out=self.lo)
        else:
            np.ldexp(self.hi, d[:, None], out=self.hi)
            np.ldexp(self.lo, d[self.layout.comp, None], out=self.lo)
        self.e = e.copy()

    def add_block(self, t0: int, z: FloatArray, v: FloatArray, e: IntArray) -> None:
        """Add the steps ``t0 ..`` of a block: ``z`` (n, >= BLOCK, G, contiguous), ``v`` (n, BLOCK, G), ``e``."""
        self.rescale(e)
        lay = self.layout
        stop = min(t0 + BLOCK, int(self.T[-1]))
        if stop <= t0:
            return
        _add_steps(
            z,
            v,
            t0,
            stop,
            lay.a,
            lay.b,
            lay.is_w,
            self.comp_index,
            self.hi,
            self.lo,
            self.record_at,
            self.rec_hi,
            self.rec_lo,
        )
        for j, t in enumerate(self.T.tolist()):
            if t0 < t <= stop:
                self.rec_e[j] = self.e


@numba.njit(cache=True, nogil=True)
def _add_steps(
    z: FloatArray,
    v: FloatArray,
    t0: int,
    stop: int,
    a: IntArray,
    b: IntArray,
    is_w: BoolArray,
    comp_index: IntArray,
    hi: FloatArray,
    lo: FloatArray,
    record_at: IntArray,
    rec_hi: FloatArray,
    rec_lo: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Add steps ``t0 .. stop - 1`` of a block ``z``, ``v`` (n, >= stop - t0, G) to the running
    sums ``hi`` (K, G) and ``lo`` (Kc, G), per trajectory sequentially in ``t`` (elementwise
    over trajectories, so a trajectory's bits do not depend on its neighbours), and record them
    at the step counts ``record_at[t + 1] >= 0`` (grid index) into ``rec_hi`` (nT, K, G) and
    ``rec_lo`` (nT, Kc, G). Entry ``k`` adds ``p = f_a z_b`` (``f`` is ``v`` for ``W`` entries,
    else ``z``); a compensated entry (``comp_index[k] >= 0``) also adds to its low part the
    product's exact error and then the TwoSum error of ``hi + p``, in this order.
    The per-entry loops over trajectories are the compiled row kernels :func:`_add_plain` and
    :func:`_add_compensated` (rows from index 0, which the compiler vectorises)."""
    for k in range(a.shape[0]):  # entry by entry: its running sums stay in cache over the block
        src = v if is_w[k] else z
        ci = comp_index[k]
        for t in range(t0, stop):
            s = t - t0
            if ci < 0:
                _add_plain(hi[k], src[a[k], s], z[b[k], s])
            else:
                _add_compensated(hi[k], lo[ci], src[a[k], s], z[b[k], s])
            j = record_at[t + 1]
            if j >= 0:
                rec_hi[j, k] = hi[k]
                if ci >= 0:
                    rec_lo[j, ci] = lo[ci]


@numba.njit(cache=True, nogil=True, inline="always")
def _add_plain(h: FloatArray, fa: FloatArray, fb: FloatArray) -> None:  # pragma: no cover - compiled
    """``h[g] = h[g] + fa[g] fb[g]`` for every trajectory ``g``."""
    for g in range(h.shape[0]):
        h[g] = h[g] + fa[g] * fb[g]


@numba.njit(cache=True, nogil=True, inline="always")
def _add_compensated(
    h: FloatArray, q: FloatArray, fa: FloatArray, fb: FloatArray
) -> None:  # pragma: no cover - compiled
    """Per trajectory ``g``: ``p = fa fb``, ``h + p`` with TwoSum error ``t2``, then
    ``q = (q + (fa fb - p)) + t2`` (the product's exact error first)."""
    for g in range(h.shape[0]):
        x = fa[g]
        y = fb[g]
        p = x * y
        old = h[g]
        new = old + p
        h[g] = new
        w = q[g] + product_error(x, y, p)
        bb = new - old
        t2 = new - bb
        t2 = old - t2
        bb = p - bb
        t2 = t2 + bb
        q[g] = w + t2


class _TrajectorySums:
    """Running sums over trajectories (sequential, carried across batches), kept at grid ``m``."""

    def __init__(self, layout: Layout, T: IntArray, m: IntArray):
        self.layout = layout
        self.m = m
        K, Kc = layout.K, layout.comp.size
        self.hi = np.zeros((T.size, K))
        self.lo = np.zeros((T.size, Kc))
        self.out_hi = np.zeros((T.size, m.size, K))
        self.out_lo = np.zeros((T.size, m.size, Kc))
        self.where = {int(x): i for i, x in enumerate(m)}
        self.count = 0

    def add(self, acc: _Accumulator, first: int, count: int) -> None:
        """Add the records of batch trajectories ``first .. first + count - 1`` in order."""
        record_at = np.full(count, -1, dtype=np.int64)
        for g in range(count):
            record_at[g] = self.where.get(self.count + g + 1, -1)
        _add_trajectories(
            acc.rec_hi[:, :, first : first + count],
            acc.rec_lo[:, :, first : first + count],
            acc.comp_index,
            record_at,
            self.hi,
            self.lo,
            self.out_hi,
            self.out_lo,
        )
        self.count += count


@numba.njit(cache=True, nogil=True)
def _add_trajectories(
    rec_hi: FloatArray,
    rec_lo: FloatArray,
    comp_index: IntArray,
    record_at: IntArray,
    hi: FloatArray,
    lo: FloatArray,
    out_hi: FloatArray,
    out_lo: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Add the trajectories' records ``rec_hi`` (nT, K, G), ``rec_lo`` (nT, Kc, G) in order to
    ``hi`` (nT, K), ``lo`` (nT, Kc): ``hi + term``, and for a compensated entry
    ``lo + (rec_lo + TwoSum error)``; after trajectory ``g`` record into ``out_*[:, record_at[g]]``
    when ``>= 0``."""
    nT, K, G = rec_hi.shape
    for j in range(nT):
        for g in range(G):
            for k in range(K):
                a = hi[j, k]
                b = rec_hi[j, k, g]
                s = a + b
                hi[j, k] = s
                ci = comp_index[k]
                if ci >= 0:
                    bb = s - a
                    err = (a - (s - bb)) + (b - bb)
                    lo[j, ci] = lo[j, ci] + (rec_lo[j, ci, g] + err)
            i = record_at[g]
            if i >= 0:
                out_hi[j, i] = hi[j]
                out_lo[j, i] = lo[j]


def _unpack(layout: Layout, hi: FloatArray, lo: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(..., K) hi and (..., Kc) lo -> S_hi, S_lo, W_hi, W_lo (..., n, n)."""
    n = layout.n
    lead = hi.shape[:-1]
    full_lo = np.zeros((*lead, layout.K))
    full_lo[..., layout.comp] = lo
    out = []
    for part in (hi, full_lo):
        S = np.zeros((*lead, n, n))
        ks = ~layout.is_w
        S[..., layout.a[ks], layout.b[ks]] = part[..., ks]
        S[..., layout.b[ks], layout.a[ks]] = part[..., ks]
        Wm = part[..., layout.is_w].reshape(*lead, n, n)
        out.append((S, Wm))
    (S_hi, W_hi), (S_lo, W_lo) = out
    return S_hi, S_lo, W_hi, W_lo


def moments(chains: Sequence[Chain], seed: int, key: Sequence[object], T: Sequence[int], m: Sequence[int]) -> Moments:
    """Simulate one training set to the largest ``T`` and ``m`` and return ``S``, ``W`` at
    every grid pair (``T``, ``m`` strictly increasing positive integers)."""
    return moments_many(chains, seed, [key], T, m)[0]


def moments_many(
    chains: Sequence[Chain], seed: int, keys: Sequence[Sequence[object]], T: Sequence[int], m: Sequence[int]
) -> list[Moments]:
    """:func:`moments` of several training sets (one per ``key``), simulated side by side
    (every operation is elementwise over trajectories, so each set's numbers are those of
    its own call; sharing a batch only amortises per-step costs)."""
    Tg = np.asarray(T, dtype=np.int64)
    mg = np.asarray(m, dtype=np.int64)
    if Tg.ndim != 1 or mg.ndim != 1 or Tg.size == 0 or mg.size == 0:
        raise ValueError("T and m must be non-empty 1-D grids")
    if np.any(np.diff(Tg) <= 0) or np.any(np.diff(mg) <= 0) or Tg[0] < 1 or mg[0] < 1:
        raise ValueError("T and m must be strictly increasing positive integers")
    rec = Recursion.of(chains)
    n = rec.n
    layout = Layout.of(n, compensated_coordinates(chains))
    T_max, m_max = int(Tg[-1]), int(mg[-1])
    tr, mr = min(T_max, n), min(m_max, n)
    sums = [_TrajectorySums(layout, Tg, mg) for _ in keys]
    raw = [(np.zeros((mr, tr, n)), np.zeros((mr, tr, n))) for _ in keys]
    owner = {tuple(k): q for q, k in enumerate(keys)}
    if len(owner) != len(keys):
        raise ValueError("training set keys must be distinct")
    parts = [p for k in keys for p in segments(k, m_max)]
    e_T = np.zeros((Tg.size, n), dtype=np.int64)
    for batch in batches(parts, GROUP * BATCH_GROUPS):
        offsets = np.concatenate([[0], np.cumsum([p.count for p in batch])]).astype(int)
        acc = _Accumulator(layout, Tg, int(offsets[-1]))
        firsts = [(owner[p.key], int(offsets[j])) for j, p in enumerate(batch) if p.group == 0]
        for blk in simulate(rec, seed, batch, T_max):
            t0 = blk.index * BLOCK
            acc.add_block(t0, blk.state, blk.v, blk.e)
            for q, off in firsts:
                if t0 < tr:
                    _keep_raw(blk, t0, off, *raw[q])
        e_T = acc.rec_e
        for key, run in groupby(range(len(batch)), key=lambda j: batch[j].key):  # a set's segments at once
            js = list(run)
            sums[owner[key]].add(acc, int(offsets[js[0]]), int(offsets[js[-1] + 1] - offsets[js[0]]))
    out = []
    for q in range(len(keys)):
        S_hi, S_lo, W_hi, W_lo = _unpack(layout, sums[q].out_hi, sums[q].out_lo)
        out.append(Moments(Tg, mg, S_hi, S_lo, W_hi, W_lo, e_T, *raw[q]))
    return out


def _keep_raw(blk: Block, t0: int, off: int, raw_z: FloatArray, raw_v: FloatArray) -> None:
    """Copy the unscaled regressors and noise of a set's first trajectories (batch columns
    ``off ..``) in its first steps."""
    mr, tr, _ = raw_z.shape
    t1 = min(t0 + BLOCK, tr)
    if t1 > t0:
        cols = slice(off, off + mr)
        raw_z[:, t0:t1] = np.ldexp(blk.z[:, : t1 - t0, cols], blk.e[:, None, None]).transpose(2, 1, 0)
        raw_v[:, t0:t1] = blk.v[:, : t1 - t0, cols].transpose(2, 1, 0)
