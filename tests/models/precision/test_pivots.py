"""Tests of pipeline.models.precision.pivots: columns split into pivots and exact combinations."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.precision.pivots import pivot_split, pivot_split_uncached


def _columns() -> np.ndarray:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(4), rng.standard_normal(4)
    return np.column_stack([a, 2.0 * a, b, a - 3.0 * b, rng.standard_normal(4)])


def test_split_finds_pivots_and_reproduces_the_others():
    C = _columns()
    split = pivot_split_uncached(C)
    assert split.pivot.tolist() == [True, False, True, False, True]
    assert split.order.tolist() == [0, 2, 4]
    for j in np.flatnonzero(~split.pivot):
        np.testing.assert_allclose(C[:, split.order] @ split.X[split.order, j], C[:, j], atol=1e-14)
    np.testing.assert_allclose(split.Qc.T @ split.Qc, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(split.Qc @ split.Rc, C[:, split.order], atol=1e-14)
    assert np.all(np.tril(split.Rc, -1) == 0)


def test_cached_split_is_shared_and_read_only():
    C = _columns()
    split = pivot_split(C)
    assert pivot_split(C.copy()) is split  # keyed by the bits of C
    for array in (split.pivot, split.X, split.Qc, split.Rc):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    fresh = pivot_split_uncached(C)
    assert all(np.array_equal(x, y) for x, y in zip(fresh.__dict__.values(), split.__dict__.values(), strict=True))
