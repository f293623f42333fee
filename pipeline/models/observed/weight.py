"""The weight of the risk: row-scaled square roots of ``Sigmabar_T``, one per Jordan block.

In Jordan coordinates ``Sigmabar_T`` (MATH §1.2) is block diagonal with one block per
Jordan block. For every block, the upper Cholesky factor ``R_b`` (``Sigmabar = R_b' R_b``)
is computed once per ``T`` in ball arithmetic (precision raised until every entry is
certain to ``WEIGHT_BITS`` relative to its row) and stored row-scaled: a float64 mantissa
row and a power-of-two exponent. Its rows are graded (the heavy coordinates of a marginal
or explosive block come first), so ``trace(X Sigmabar X') = |vec(X R')|^2`` is a sum of
squares of rows whose scales span ``T^(m-1/2)`` or ``rho^T``; no float64 ever holds such a
scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from pipeline.models.precision.balls import row_scaled, upper_cholesky
from pipeline.models.precision.context import working_precision
from pipeline.models.precision.doubling import ball_sigmabar
from pipeline.models.spectra import Spectrum, parse_spectrum

__all__ = ["WEIGHT_BITS", "Weight", "block_weight", "weight"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

WEIGHT_BITS = 60  # every weight entry is certain to this many bits relative to its row


@lru_cache(maxsize=1024)
def block_weight(text: str, index: int, T: int) -> tuple[FloatArray, IntArray]:
    """Row-scaled upper Cholesky factor of block ``index``'s ``Sigmabar_T``: ``R[i, :] =
    mant[i, :] 2^exps[i]`` with ``Sigmabar = R' R``; ``mant`` (s, s), ``exps`` (s,), read-only
    (cached per spectrum text, block and ``T >= 2``)."""
    sp = parse_spectrum(text)
    b = sp.blocks[index]
    Jb = sp.jordan_matrix()[b.start : b.start + b.dim, b.start : b.start + b.dim]
    prec = 96 + WEIGHT_BITS + 3 * b.m * int(T).bit_length()
    for _attempt in range(6):
        with working_precision(prec):
            R = upper_cholesky(ball_sigmabar(Jb, T))
            if R is not None:
                mant, exps, ok = row_scaled(R, WEIGHT_BITS)
                if ok:
                    mant.setflags(write=False)
                    exps.setflags(write=False)
                    return mant, exps
        prec *= 2
    raise ArithmeticError(f"{text!r}: Sigmabar_{T} of block {index} not resolved at {prec} bits")


@dataclass(frozen=True)
class Weight:
    """``vec(X R')`` for Jordan-coordinate matrices ``X``: rows ``(block, row r, k)``."""

    blocks: tuple[tuple[int, int, FloatArray], ...]  # (start, dim, mant (dim, dim))
    exps: IntArray  # (n*n,) row exponents

    def apply(self, X: FloatArray) -> FloatArray:
        """Mantissas ``(..., n*n)`` of the weighted rows of ``X`` (``(..., n, n)``)."""
        parts = [
            np.einsum("...rl,kl->...rk", X[..., :, start : start + dim], mant).reshape(
                (*X.shape[:-2], X.shape[-2] * dim)
            )
            for start, dim, mant in self.blocks
        ]
        out: FloatArray = np.concatenate(parts, axis=-1)
        return out


def weight(sp: Spectrum, T: int) -> Weight:
    """The weight of a spectrum's ``Sigmabar_T`` (``T >= 2``), every block's factor side by side."""
    n = sp.n
    blocks = []
    exps = []
    for i, b in enumerate(sp.blocks):
        mant, ex = block_weight(sp.text, i, int(T))
        blocks.append((b.start, b.dim, mant))
        exps.append(np.tile(ex, n))
    return Weight(tuple(blocks), np.concatenate(exps).astype(np.int64))
