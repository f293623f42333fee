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
(Dekker's exact product, Knuth's TwoSum, Ogita-Rump-Oishi's ``Dot2``): each such entry is
the unevaluated sum ``hi + lo`` of two floats, accurate to ~1e-32 of its scale.

Scaled chains (``rho > 1``) carry exponents: entry ``S_ab`` is ``(hi + lo) 2^(e_a + e_b)``
and ``W_ab`` is ``(hi + lo) 2^(e_b)``, ``e`` the exponents of the time block holding the
last summed step (the running sums are rescaled by exact powers of two between blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

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
SUB = 4  # steps whose products are formed at once (a cache-sized working set; no effect on bits)
_SPLIT = 134217729.0  # 2^27 + 1, Dekker's splitter


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

    def products(self, z: FloatArray, v: FloatArray, out: FloatArray) -> None:
        """``out[k] = factor_a * z_b`` for a block ``z``, ``v`` (n, L*G); ``out`` (K, L*G)."""
        n = self.n
        off = 0
        for a in range(n):
            np.multiply(z[a], z[a:], out=out[off : off + n - a])
            off += n - a
        for a in range(n):
            np.multiply(v[a], z, out=out[off : off + n])
            off += n


def _two_sum_error(a: FloatArray, b: FloatArray, s: FloatArray) -> FloatArray:
    """``(a + b) - s`` exactly, for ``s = fl(a + b)`` (Knuth's TwoSum)."""
    bb = s - a
    out: FloatArray = (a - (s - bb)) + (b - bb)
    return out


class _Compensation:
    """Work arrays for the compensated entries of a batch of ``G`` trajectories (every
    operation writes into a preallocated array: fresh temporaries of this size cost a
    page-faulting allocation each)."""

    def __init__(self, layout: Layout, G: int):
        c = layout.comp
        n, Kc, w = layout.n, c.size, SUB * G
        self.first = np.where(layout.is_w[c], layout.a[c] + n, layout.a[c]).astype(np.int64)  # rows of [z; v]
        self.second = layout.b[c]
        self.x, self.xh, self.xl, self.xt = (np.empty((2 * n, w)) for _ in range(4))
        self.pc, self.ah, self.al, self.bh, self.bl, self.perr, self.tmp = (np.empty((Kc, w)) for _ in range(7))
        self.old, self.new, self.bb, self.t2 = (np.empty((Kc, G)) for _ in range(4))

    def product_errors(self, z: FloatArray, v: FloatArray, p: FloatArray) -> FloatArray:
        """Exact low parts ``a b - fl(a b)`` (Kc, L*G) of the compensated products ``p``
        (Kc, L*G) of ``z``, ``v`` (n, L*G) (Dekker's splitting; entries far below 2^996)."""
        n = z.shape[0]
        x, xh, xl, xt = self.x, self.xh, self.xl, self.xt
        x[:n], x[n:] = z, v
        np.multiply(_SPLIT, x, out=xt)
        np.subtract(xt, x, out=xh)
        np.subtract(xt, xh, out=xh)
        np.subtract(x, xh, out=xl)
        np.take(xh, self.first, axis=0, out=self.ah)
        np.take(xl, self.first, axis=0, out=self.al)
        np.take(xh, self.second, axis=0, out=self.bh)
        np.take(xl, self.second, axis=0, out=self.bl)
        out, tmp = self.perr, self.tmp
        np.multiply(self.ah, self.bh, out=out)
        np.subtract(out, p, out=out)
        for f, g in ((self.ah, self.bl), (self.al, self.bh)):
            np.multiply(f, g, out=tmp)
            np.add(out, tmp, out=out)
        np.multiply(self.al, self.bl, out=tmp)
        np.add(out, tmp, out=out)
        return out

    def add_error(self, lo: FloatArray, a: FloatArray, b: FloatArray, s: FloatArray) -> None:
        """``lo += (a + b) - s`` for ``s = fl(a + b)`` (TwoSum, in the work arrays; (Kc, G))."""
        bb, t2 = self.bb, self.t2
        np.subtract(s, a, out=bb)
        np.subtract(s, bb, out=t2)
        np.subtract(a, t2, out=t2)
        np.subtract(b, bb, out=bb)
        np.add(t2, bb, out=t2)
        np.add(lo, t2, out=lo)


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
    Products are formed :data:`SUB` steps at a time (a working set that stays in cache;
    no effect on the bits)."""

    def __init__(self, layout: Layout, T: IntArray, G: int):
        self.layout = layout
        self.T = T
        self.records = {int(t): (j,) for j, t in enumerate(T)}  # step count -> grid index
        self.G = G
        K, Kc = layout.K, layout.comp.size
        self.hi = np.zeros((K, G))
        self.lo = np.zeros((Kc, G))
        self.rec_hi = np.zeros((G, T.size, K))
        self.rec_lo = np.zeros((G, T.size, Kc))
        self.rec_e = np.zeros((T.size, layout.n), dtype=np.int64)
        self.prod = np.empty((K, SUB * G))
        self.comp = _Compensation(layout, G) if Kc else None
        self.e = np.zeros(layout.n, dtype=np.int64)

    def rescale(self, e: IntArray) -> None:
        if np.array_equal(e, self.e):
            return
        d = self.layout.shift(self.e - e)
        np.ldexp(self.hi, d[:, None], out=self.hi)
        np.ldexp(self.lo, d[self.layout.comp, None], out=self.lo)
        self.e = e.copy()

    def add_block(self, t0: int, z: FloatArray, v: FloatArray, e: IntArray) -> None:
        """Add the steps ``t0 ..`` of a block ``z``, ``v`` (n, BLOCK, G) with exponents ``e``."""
        self.rescale(e)
        for s0 in range(0, BLOCK, SUB):
            if t0 + s0 >= int(self.T[-1]):
                return
            self._add_steps(t0 + s0, z[:, s0 : s0 + SUB], v[:, s0 : s0 + SUB])

    def _add_steps(self, t0: int, z: FloatArray, v: FloatArray) -> None:
        lay = self.layout
        n, G, c = lay.n, self.G, lay.comp
        zz, vv = z.reshape(n, SUB * G), v.reshape(n, SUB * G)
        lay.products(zz, vv, self.prod)
        p = self.prod.reshape(lay.K, SUB, G)
        comp = self.comp
        if comp is not None:
            np.take(self.prod, c, axis=0, out=comp.pc)
            perr = comp.product_errors(zz, vv, comp.pc).reshape(c.size, SUB, G)
            pc = comp.pc.reshape(c.size, SUB, G)
        for s in range(SUB):
            if comp is not None:
                np.take(self.hi, c, axis=0, out=comp.old)
            np.add(self.hi, p[:, s], out=self.hi)
            if comp is not None:
                np.add(self.lo, perr[:, s], out=self.lo)
                np.take(self.hi, c, axis=0, out=comp.new)
                comp.add_error(self.lo, comp.old, pc[:, s], comp.new)
            for j in self.records.get(t0 + s + 1, ()):
                self.rec_hi[:, j] = self.hi.T
                self.rec_lo[:, j] = self.lo.T
                self.rec_e[j] = self.e


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
        c = self.layout.comp
        for g in range(first, first + count):
            term = acc.rec_hi[g]
            if c.size:
                old = self.hi[:, c]
            np.add(self.hi, term, out=self.hi)
            if c.size:
                err = _two_sum_error(old, term[:, c], self.hi[:, c])
                np.add(self.lo, acc.rec_lo[g] + err, out=self.lo)
            self.count += 1
            i = self.where.get(self.count)
            if i is not None:
                self.out_hi[:, i] = self.hi
                self.out_lo[:, i] = self.lo


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
            acc.add_block(t0, blk.z, blk.v, blk.e)
            for q, off in firsts:
                if t0 < tr:
                    _keep_raw(blk, t0, off, *raw[q])
        e_T = acc.rec_e
        for j, p in enumerate(batch):
            sums[owner[p.key]].add(acc, int(offsets[j]), p.count)
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
