"""``product_error`` is the exact error of a float64 product: against exact rationals, and
bit-equal to Dekker's splitting (the algorithm it replaced) wherever that is exact."""

from fractions import Fraction

import numba
import numpy as np

from pipeline.models.exact_products import product_error


@numba.njit
def _errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(a.size)
    for i in range(a.size):
        out[i] = product_error(a[i], b[i], a[i] * b[i])
    return out


def _dekker(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    split = 134217729.0

    def halves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = split * x
        h = xt - (xt - x)
        return h, x - h

    ah, al = halves(a)
    bh, bl = halves(b)
    p = a * b
    return (((ah * bh - p) + ah * bl) + al * bh) + al * bl


def test_product_error_is_exact() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal(200) * 2.0 ** rng.integers(-400, 400, 200)
    b = rng.standard_normal(200) * 2.0 ** rng.integers(-400, 400, 200)
    err = _errors(a, b)
    for x, y, e in zip(a.tolist(), b.tolist(), err.tolist(), strict=True):
        assert Fraction(x) * Fraction(y) == Fraction(x * y) + Fraction(e)
    assert np.any(err != 0.0)


def test_product_error_equals_dekker_where_dekker_is_exact() -> None:
    rng = np.random.default_rng(6)
    a = rng.standard_normal(100_000) * 2.0 ** rng.integers(-300, 300, 100_000)
    b = rng.standard_normal(100_000) * 2.0 ** rng.integers(-300, 300, 100_000)
    assert _errors(a, b).tobytes() == _dekker(a, b).tobytes()
