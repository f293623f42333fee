"""State trajectories of the fitted observed learners: ``x_{t+1} = A x_t + w_t`` in fixed time blocks.

This module *defines the data* of MATH.md section 6.3 (changing a constant or an
operation order here changes every simulated number):

* **Coordinates.** ``A = Q J Q'`` with ``J`` the real Jordan matrix. The simulation runs
  in Jordan coordinates, ``x_t = Q z_t`` and ``w_t = Q v_t``: for orthogonal ``Q``,
  ``v ~ N(0, I)`` has the law of ``w``. Every chain (Jordan block) is then a recursion
  driven by the chain coordinate below it.
* **Streams.** Trajectories come in groups of :data:`GROUP`. Group ``g`` of a system
  draws from its own stream ``cell_rng(seed, "fitted.noise", *key, g)`` (``key``: plain
  values naming the system and the training set, e.g. ``(spectrum, fit)``); its ``k``-th
  time block is the ``k``-th ``standard_normal((n, BLOCK, GROUP))`` of that stream, laid
  out (coordinate, step, trajectory). So trajectory ``i`` is the same whatever ``m``, a
  horizon ``T`` draws only the ``ceil(T / BLOCK)`` blocks it needs, and the trajectory of
  horizon ``T`` is the prefix of every longer one. (A stream per single trajectory would
  cost a seed derivation, ~12 us = 1100 draws, per trajectory: the draw rate of short
  horizons would be set by that.)
* **Recursion** (elementwise float64, one fixed order, so bits do not depend on the CPU
  or on how many trajectories share an array)::

      z_{t+1}[r] = ((lam_r z_t[r] + beta_r z_t[r']) + z_t[r + s]) + v_t[r]

  ``lam_r`` the diagonal of ``J``; for a complex pair ``a +- i b``, ``beta = -b`` on the
  first and ``+b`` on the second coordinate of a position and ``r'`` its partner (no such
  term for a real chain); ``s = 1`` (real) or ``2`` (pair) the superdiagonal of the chain
  (no such term on its last position). ``z_0 = 0``.
* **Scaled form** (chains with modulus ``rho > 1``, which overflow float64 near
  ``rho^T ~ 2^1000``): during time block ``k`` such a chain is held as
  ``u_t = z_t 2^-e_k``, ``e_k = floor(k BLOCK log2 rho)`` (exact rational arithmetic),
  its noise entering as ``v_t 2^-e_k`` and its state multiplied by ``2^(e_k - e_(k+1))``
  between blocks (exact powers of two; noise far below the state's last bit underflows,
  as it would be rounded away unscaled). Chains with ``rho <= 1`` have ``e = 0``: their
  data is the plain recursion. The regressor ``z_t = u_t 2^e_k`` is exact.

Only the regressors ``z_t`` are rounded; the data's targets are ``J z_t + v_t`` taken
exactly (see :mod:`pipeline.models.fitted.statistics`, which accumulates them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache

import mpmath
import numba
import numpy as np
from numpy.typing import NDArray

from pipeline.models.simulation.streams import cell_rng
from pipeline.models.spectra import Spectrum, parse_spectrum

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

BLOCK = 16  # steps per time block (draws, rescaling)
GROUP = 32  # trajectories per noise stream
BATCH_GROUPS = 32  # groups simulated side by side (a batch of up to 1024 trajectories); no effect on bits
MAX_GROWTH_BITS = 256  # a chain may grow by at most 2^256 within one time block
_STREAM = "fitted.noise"
_NORMAL_SCALE = 1022  # 2^-e is a normal float64 up to here


class UnsupportedSystem(ValueError):
    """A system this sampler cannot simulate faithfully; the message is one line."""


@dataclass(frozen=True)
class Chain:
    """One real Jordan block of ``J``: coordinates ``start .. start + dim - 1``.

    ``size`` counts eigenvalues (``dim = size`` real, ``2 size`` for a pair ``real +- i imag``);
    ``modulus`` is the eigenvalue's modulus as written in the spectrum.
    """

    start: int
    size: int
    real: float
    imag: float
    modulus: float

    @property
    def pair(self) -> bool:
        return self.imag != 0.0

    @property
    def dim(self) -> int:
        return 2 * self.size if self.pair else self.size

    @property
    def step(self) -> int:
        """Offset of the superdiagonal (1 real, 2 pair)."""
        return 2 if self.pair else 1

    @cached_property
    def growth(self) -> Fraction:
        """``log2 rho`` to 2^-160 as an exact rational (0 when ``rho <= 1``); from mpmath,
        so the exponent schedule is the same on every machine."""
        if self.modulus <= 1.0:
            return Fraction(0)
        with mpmath.workprec(200):
            value = mpmath.log(mpmath.mpf(self.modulus), 2)
            return Fraction(int(mpmath.floor(value * mpmath.mpf(2) ** 160)), 1 << 160)


def chains(spectrum: Spectrum | str) -> tuple[Chain, ...]:
    """The chains of a spectrum's real Jordan matrix, in the order of its coordinates."""
    sp = parse_spectrum(spectrum) if isinstance(spectrum, str) else spectrum
    return tuple(Chain(b.start, b.m, b.real, b.imag, sp.groups[b.group].modulus) for b in sp.blocks)


@dataclass(frozen=True)
class Recursion:
    """The elementwise form of ``z_{t+1} = J z_t + v_t`` for a tuple of chains (``n`` coordinates).

    ``lam`` (n, 1) diagonal; ``beta`` (n, 1) and ``partner`` (n,) the pair coupling (``None``
    without pairs); ``sup`` the superdiagonal as ``(first, stop, step)`` slices (rows
    ``first .. stop - step - 1`` receive ``z[r + step]``).
    """

    n: int
    lam: FloatArray
    beta: FloatArray | None
    partner: IntArray | None
    sup: tuple[tuple[int, int, int], ...]
    rates: tuple[Fraction, ...]  # log2 rho per coordinate (0: never rescaled)

    @classmethod
    def of(cls, chs: Sequence[Chain]) -> Recursion:
        return _recursion(tuple(chs))

    @classmethod
    def build(cls, chs: tuple[Chain, ...]) -> Recursion:
        """The recursion of ``chs`` (uncached; use :meth:`of`)."""
        n = sum(c.dim for c in chs)
        lam = np.zeros((n, 1))
        beta = np.zeros((n, 1))
        partner = np.arange(n, dtype=np.int64)
        rates: list[Fraction] = [Fraction(0)] * n
        sup = []
        for c in chs:
            if c.growth * BLOCK > MAX_GROWTH_BITS:
                raise UnsupportedSystem(
                    f"eigenvalue modulus {c.modulus:g}: grows by more than 2^{MAX_GROWTH_BITS} in {BLOCK} steps"
                )
            idx = slice(c.start, c.start + c.dim)
            lam[idx] = c.real
            rates[idx] = [c.growth] * c.dim
            if c.pair:
                first = np.arange(c.start, c.start + c.dim, 2)
                beta[first, 0], beta[first + 1, 0] = -c.imag, c.imag
                partner[first], partner[first + 1] = first + 1, first
            if c.size > 1:
                sup.append((c.start, c.start + c.dim, c.step))
        paired = any(c.pair for c in chs)
        return cls(n, lam, beta if paired else None, partner if paired else None, tuple(sup), tuple(rates))

    def exponents(self, block: int) -> IntArray:
        """``e_k`` (n,): the power of two a coordinate is scaled by during time block ``block``."""
        if not self.scaled:
            return np.zeros(self.n, dtype=np.int64)
        return np.array([(r * block * BLOCK).__floor__() for r in self.rates], dtype=np.int64)

    @property
    def scaled(self) -> bool:
        return any(r > 0 for r in self.rates)

    @cached_property
    def _kernel_args(self) -> tuple[FloatArray, FloatArray, IntArray, bool, IntArray]:
        """``lam``, ``beta`` (zeros without pairs), ``partner``, whether there are pairs, and
        ``above`` (n,): the row ``r + step`` a row's superdiagonal reads (-1: none)."""
        above = np.full(self.n, -1, dtype=np.int64)
        for first, stop, s in self.sup:
            above[first : stop - s] = np.arange(first + s, stop)
        paired = self.beta is not None
        beta = self.beta[:, 0].copy() if self.beta is not None else np.zeros(self.n)
        partner = self.partner.copy() if self.partner is not None else np.arange(self.n, dtype=np.int64)
        return self.lam[:, 0].copy(), beta, partner, paired, above

    def run_block(self, z: FloatArray, v: FloatArray, scale: FloatArray) -> None:
        """``z[:, s + 1] = J z[:, s] + v[:, s] scale`` for ``s = 0 .. L - 1`` in the module's
        operation order (compiled, elementwise per trajectory); ``z`` (n, L + 1, G), ``v``
        (n, L, G), ``scale`` (n,) exact powers of two (``2^-e``, normal numbers: the product is
        ``ldexp(v, -e)``, correctly rounded)."""
        _run_block(*self._kernel_args, scale, z, v)


@numba.njit(cache=True, nogil=True)
def _run_block(
    lam: FloatArray,
    beta: FloatArray,
    partner: IntArray,
    paired: bool,
    above: IntArray,
    scale: FloatArray,
    z: FloatArray,
    v: FloatArray,
) -> None:  # pragma: no cover - compiled
    """:meth:`Recursion.run_block`: per step, row and trajectory
    ``((lam z[r] + beta z[partner]) + z[above]) + v[r] scale[r]`` (the middle terms where present)."""
    n, L, G = v.shape
    for s in range(L):
        for r in range(n):
            lr, br, pr, ar, sc = lam[r], beta[r], partner[r], above[r], scale[r]
            for g in range(G):
                acc = lr * z[r, s, g]
                if paired:
                    acc = acc + br * z[pr, s, g]
                if ar >= 0:
                    acc = acc + z[ar, s, g]
                z[r, s + 1, g] = acc + v[r, s, g] * sc


@lru_cache(maxsize=128)
def _recursion(chs: tuple[Chain, ...]) -> Recursion:
    return Recursion.build(chs)


@dataclass(frozen=True)
class Segment:
    """The first ``count`` (<= GROUP) trajectories of group ``group`` of the stream family ``key``."""

    key: tuple[object, ...]
    group: int
    count: int


def segments(key: Sequence[object], m: int) -> list[Segment]:
    """The groups holding trajectories ``0 .. m - 1`` of ``key``, in order."""
    k = tuple(key)
    return [Segment(k, g, min(GROUP, m - g * GROUP)) for g in range(-(-int(m) // GROUP))]


def noise(seed: int, n: int, parts: Sequence[Segment], blocks: int) -> Iterator[FloatArray]:
    """Standard normal noise of trajectory groups side by side, one time block at a time.

    Yields ``blocks`` arrays (n, BLOCK, sum of counts): block ``k`` of a segment is the first
    ``count`` trajectories of the ``k``-th ``standard_normal((n, BLOCK, GROUP))`` of the stream
    ``cell_rng(seed, "fitted.noise", *key, group)``; segments follow each other in order.
    The yielded array is reused: copy it to keep it.
    """
    gens = [cell_rng(seed, _STREAM, *p.key, p.group) for p in parts]
    stage = np.empty((len(parts), n, BLOCK, GROUP))
    counts = np.array([p.count for p in parts], dtype=np.int64)
    out = np.empty((n, BLOCK, int(counts.sum())))
    for _k in range(blocks):
        for j, gen in enumerate(gens):
            gen.standard_normal(out=stage[j])
        _gather(stage, counts, out)
        yield out


@numba.njit(cache=True, nogil=True)
def _gather(stage: FloatArray, counts: IntArray, out: FloatArray) -> None:  # pragma: no cover - compiled
    """``out[:, :, start_j + i] = stage[j, :, :, i]`` for ``i < counts[j]``, segments in order."""
    start = 0
    for j in range(stage.shape[0]):
        c = counts[j]
        for r in range(stage.shape[1]):
            for s in range(stage.shape[2]):
                for i in range(c):
                    out[r, s, start + i] = stage[j, r, s, i]
        start += c


@dataclass(frozen=True)
class Block:
    """One time block of a batch of ``G`` trajectories (arrays reused by the next block).

    ``z`` (n, BLOCK, G): regressors ``z_t 2^-e`` for ``t = index * BLOCK + s``; ``v`` (n, BLOCK, G):
    the noise ``v_t`` (unscaled); ``e`` (n,): the coordinates' exponents in this block.
    ``state`` (n, BLOCK + 1, G): the simulation's contiguous buffer whose ``[:, :BLOCK]`` is ``z``
    (compiled kernels take it whole: they vectorise over contiguous trajectory rows only).
    """

    index: int
    z: FloatArray
    v: FloatArray
    e: IntArray
    state: FloatArray


def simulate(recursion: Recursion, seed: int, parts: Sequence[Segment], steps: int) -> Iterator[Block]:
    """Simulate the trajectories of ``parts`` side by side (in their order) for
    ``ceil(steps / BLOCK)`` time blocks, yielding one :class:`Block` per time block. Every
    operation is elementwise, so a trajectory's numbers do not depend on its neighbours."""
    n = recursion.n
    count = sum(p.count for p in parts)
    blocks = -(-int(steps) // BLOCK)
    z = np.zeros((n, BLOCK + 1, count))
    scaled_v = np.empty((n, BLOCK, count)) if recursion.scaled else None
    ones = np.ones(n)
    e = recursion.exponents(0)
    for k, v in enumerate(noise(seed, n, parts, blocks)):
        if scaled_v is None or not np.any(e):
            recursion.run_block(z, v, ones)
        elif int(e.max()) <= _NORMAL_SCALE:  # 2^-e a normal number: v 2^-e is ldexp(v, -e)
            recursion.run_block(z, v, np.ldexp(ones, -e))
        else:
            np.ldexp(v, -e[:, None, None], out=scaled_v)
            recursion.run_block(z, scaled_v, ones)
        yield Block(k, z[:, :BLOCK], v, e, z)
        nxt = recursion.exponents(k + 1)
        z[:, 0] = z[:, BLOCK]
        if np.any(nxt != e):
            np.ldexp(z[:, 0], (e - nxt)[:, None], out=z[:, 0])
        e = nxt


def batches(parts: Sequence[Segment], size: int) -> list[list[Segment]]:
    """Consecutive runs of at most ``size`` trajectories (whole segments)."""
    out: list[list[Segment]] = []
    cur: list[Segment] = []
    total = 0
    for p in parts:
        if cur and total + p.count > size:
            out.append(cur)
            cur, total = [], 0
        cur.append(p)
        total += p.count
    if cur:
        out.append(cur)
    return out


def trajectories(
    spectrum: Spectrum | str, seed: int, key: Sequence[object], count: int, steps: int
) -> tuple[FloatArray, FloatArray]:
    """Unscaled ``z_t`` (count, steps + 1, n) and ``v_t`` (count, steps, n) of the first
    ``count`` trajectories (tests and oracles: overflows where only the scaled form is finite)."""
    rec = Recursion.of(chains(spectrum))
    n = rec.n
    zs = np.zeros((count, steps + 1, n))
    vs = np.zeros((count, steps + 1, n))
    first = 0
    for batch in batches(segments(key, count), GROUP * BATCH_GROUPS):
        c = sum(p.count for p in batch)
        for blk in simulate(rec, seed, batch, steps + 1):
            t0 = blk.index * BLOCK
            t1 = min(steps + 1, t0 + BLOCK)
            zs[first : first + c, t0:t1] = np.ldexp(blk.z[:, : t1 - t0], blk.e[:, None, None]).transpose(2, 1, 0)
            vs[first : first + c, t0:t1] = blk.v[:, : t1 - t0].transpose(2, 1, 0)
        first += c
    return zs, vs[:, :steps]
