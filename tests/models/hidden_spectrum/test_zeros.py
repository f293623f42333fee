"""Tests of pipeline.models.hidden_spectrum.zeros: exact zeros of a cell's risk (MATH.md §5.2).

The oracle is literal rational arithmetic (Python ``Fraction``) on the kernel's exact
inputs: ``C F^k A^i K`` for every ``i < N`` (no Cayley-Hamilton truncation, no scaling).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from flint import arb, arb_mat

from pipeline.models import hidden_spectrum as hs
from pipeline.models.hidden_spectrum.cells import MAX_BITS, Cells
from pipeline.models.hidden_spectrum.kalman import exact_inputs
from pipeline.models.hidden_spectrum.zeros import dyadic, risk_is_zero
from pipeline.models.precision.context import working_precision

MIRROR = "1.0, -1.0"  # a random walk plus its mirror: G_j = 0 for odd j


def _frac(M: arb_mat) -> list[list[Fraction]]:
    out = []
    for i in range(M.nrows()):
        row = []
        for j in range(M.ncols()):
            man, exp = M[i, j].man_exp()
            row.append(Fraction(int(man)) * Fraction(2) ** int(exp))
        out.append(row)
    return out


def _mul(X: list[list[Fraction]], Y: list[list[Fraction]]) -> list[list[Fraction]]:
    return [
        [sum((X[i][l] * Y[l][j] for l in range(len(Y))), Fraction(0)) for j in range(len(Y[0]))] for i in range(len(X))
    ]


def _oracle_zero(text: str, r: float, k: int, N: int) -> bool:
    """``C F^k A^i K == 0`` for every ``i < N``, in Fractions."""
    ex = exact_inputs(text, r, "sum")
    A, C, K = _frac(ex.A), _frac(ex.C), _frac(ex.K)
    n = len(A)
    KC = _mul(K, C)
    F = [[A[i][j] - KC[i][j] for j in range(n)] for i in range(n)]
    row = C
    for _ in range(k):
        row = _mul(row, F)
    col = K
    for _ in range(N):
        if _mul(row, col)[0][0] != 0:
            return False
        col = _mul(A, col)
    return True


def test_mirror_walk_cells_are_exact_zeros():
    """The cells that raised PrecisionError (even k >= 204, T = k + 1, noise ratios 0.1 and
    0.316) are exactly 0; their neighbours are verified non-zero; the block equals its cells."""
    k = np.array([204, 205, 226])
    T = np.array([205, 206, 227])
    assert _oracle_zero(MIRROR, 0.1, 204, 1) and not _oracle_zero(MIRROR, 0.1, 204, 2)
    for learner in hs.LEARNERS:
        out = hs.risk_block(MIRROR, [0.1, 0.316], learner, k, T)
        for ri, r in enumerate([0.1, 0.316]):
            for ki, kv in enumerate(k):
                for ni, tv in enumerate(T):
                    risk, lg = out["risk"][ri, ki, ni], out["log10_risk"][ri, ki, ni]
                    zero = tv <= kv or (tv == kv + 1 and kv % 2 == 0)
                    if zero:
                        assert risk == 0.0 and lg == -math.inf, (learner, r, kv, tv)
                    else:
                        assert risk >= 0.0 and math.isfinite(lg), (learner, r, kv, tv)  # may underflow
                    one = hs.risk_block(MIRROR, [r], learner, [kv], [tv])
                    assert one["log10_risk"][0, 0, 0] == lg and one["risk"][0, 0, 0] == risk


def test_the_ball_of_an_exact_zero_never_certifies():
    """The cause: at the largest precision the ball of an exact zero still has a radius."""
    ex = exact_inputs(MIRROR, 0.1, "sum")
    cells = Cells(ex, hs.system.as_spectrum(MIRROR))
    with working_precision(MAX_BITS):
        v = cells.value(MAX_BITS, "truncated_kalman", 204, 205)
    assert v.contains(0) and not v.is_zero() and v.rad() > 0
    assert cells.exactly_zero(204, 205)
    assert cells.verified("truncated_kalman", 204, 205).is_zero()


@pytest.mark.parametrize(
    ("text", "r"),
    [
        (MIRROR, 0.1),
        (MIRROR, 1.0),
        ("1.0^2, -1.0^2", 2.0),
        ("1.0^2", 1.0),
        ("1.0, 0.5", 4.0),
        ("0.0", 1.0),
        ("1.0@60", 0.5),
    ],
)
def test_risk_is_zero_matches_the_rational_oracle(text, r):
    ex = exact_inputs(text, r, "sum")
    for k in range(0, 7):
        for N in range(1, 2 * ex.n + 2):
            assert risk_is_zero(ex, k, N) == _oracle_zero(text, r, k, N), (text, r, k, N)


def test_a_tiny_risk_is_not_taken_for_zero():
    """At (k, T) = (204, 206) the mirror walk's risk is ~1e-158 (1e-333 at noise ratio 0.1,
    below float64's smallest subnormal): a ball around a tiny number, not 0."""
    ex = exact_inputs(MIRROR, 1.0, "sum")
    assert not risk_is_zero(ex, 204, 2)
    out = hs.risk_block(MIRROR, [1.0, 0.1], "best_fir", [204], [206])
    assert out["risk"][0, 0, 0] > 0.0 and -170 < out["log10_risk"][0, 0, 0] < -150
    assert out["risk"][1, 0, 0] == 0.0 and -340 < out["log10_risk"][1, 0, 0] < -320


def test_a_zero_gain_is_zero_and_odd_mirror_coefficients_vanish():
    assert risk_is_zero(exact_inputs("0.0", 2.0, "sum"), 0, 5)
    G = hs.kalman_fir(MIRROR, 0.1, 8)  # G_1, G_3, ... vanish (kalman_fir rounds at 320 bits)
    assert np.all(np.abs(G[0::2]) <= 1e-95) and np.all(np.abs(G[1::2]) > 1e-6)


def test_dyadic_is_exact_and_refuses_a_ball():
    ints, e = dyadic(arb_mat([[0.75, -3.0], [0.0, 2.0**-60]]))
    assert e == -60 and ints == [[3 << 58, -3 << 60], [0, 1]]
    with pytest.raises(ValueError, match="not an exact value"):
        dyadic(arb_mat([[arb(1, 1e-10)]]))
    with pytest.raises(ValueError, match="N = T - k >= 1"):
        risk_is_zero(exact_inputs(MIRROR, 0.1, "sum"), 3, 0)
