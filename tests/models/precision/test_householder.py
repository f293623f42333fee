"""Tests of pipeline.models.precision.householder: QR with per-row power-of-two exponents."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.precision.householder import apply_reflections, householder


def _scaled(seed: int, m: int, D: int, spread: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, D)), rng.integers(-spread, spread + 1, size=m).astype(np.int64)


@pytest.mark.parametrize("seed", range(5))
def test_factor_reproduces_the_gram_matrix(seed):
    Y0, e0 = _scaled(seed, 9, 5, 30)
    Y = np.ldexp(Y0, e0[:, None])
    mant, exp2, prow, refl = householder(Y0, e0)
    R = np.ldexp(mant, exp2[:, None])
    np.testing.assert_allclose(R.T @ R, Y.T @ Y, rtol=1e-12, atol=1e-12 * np.abs(Y.T @ Y).max())
    assert np.all(np.tril(mant, -1) == 0)
    assert len(refl) == 5 and len(set(prow.tolist())) == 5


def test_light_rows_keep_their_accuracy_beside_a_row_2_to_the_1000_heavier():
    """One heavy row ``2^1000 a`` and light rows ``L``: the trailing block of ``R`` is the QR of
    the light rows with the heavy row's constraint ``a'x = 0`` eliminated (the limit the exact
    factor reaches to within 2^-2000), which float64 arithmetic on ``Y`` itself would lose."""
    Y0, _ = _scaled(7, 5, 3, 0)
    e0 = np.array([1000, 0, 0, 0, 0], dtype=np.int64)
    mant, exp2, prow, _ = householder(Y0, e0)
    assert prow[0] == 0 and exp2[0] > 990
    a, L = Y0[0], Y0[1:]
    reduced = L[:, 1:] - np.outer(L[:, 0], a[1:] / a[0])
    expected = np.abs(np.diag(np.linalg.qr(reduced)[1]))
    got = np.abs(np.diag(np.ldexp(mant, exp2[:, None])))[1:]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_reflections_applied_to_a_column_give_its_coordinates():
    Y0, e0 = _scaled(3, 8, 4, 10)
    mant, exp2, prow, refl = householder(Y0[:, :3], e0)
    y, ey = np.frexp(Y0[:, 3])
    ey = (ey + e0).astype(np.int64)
    y = y.copy()
    apply_reflections(refl, y, ey)
    z = np.ldexp(y, ey)
    Y = np.ldexp(Y0, e0[:, None])
    coef = np.linalg.lstsq(Y[:, :3], Y[:, 3], rcond=None)[0]
    R = np.ldexp(mant, exp2[:, None])
    np.testing.assert_allclose(np.abs(R @ coef), np.abs(z[prow]), rtol=1e-10)


def test_dependent_column_is_refused():
    Y0, e0 = _scaled(1, 4, 2, 0)
    Y0 = np.column_stack([Y0[:, 0], Y0[:, 0]])
    with pytest.raises(ArithmeticError, match="depends on the earlier columns"):
        householder(Y0[:1], e0[:1])
