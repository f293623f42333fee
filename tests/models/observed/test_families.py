"""Tests of pipeline.models.observed.families (MATH.md §1.3)."""

import numpy as np
import pytest

from pipeline.models import observed as om
from pipeline.models.observed.weight import block_weight
from tests.models.observed.cubes import _cube, _kernel


def test_similarity_of_repeated_diagonal_is_empty():
    coords, static, s = _cube(["1.0^[1,1]"], [1, 10, 1000], draws=2, families=("similarity",))
    assert int(static["family_dim"].item()) == 0 and int(static["critical_d_theory"].item()) == 0
    assert np.all(static["perturbation"].values[..., :2, :2] == 0)
    out = _kernel(coords, static, s)
    assert list(coords["d"]) == [0]
    assert np.all(out["risk"] == 0) and np.all(np.isneginf(out["log10_risk"]))
    assert np.all(out["bounded"])


def test_cached_family_basis_is_read_only():
    fb = om.family_basis("1.0^2, 0.5", "block")
    assert fb is om.family_basis("1.0^2, 0.5", "block")  # one basis per (spectrum, family), shared
    with pytest.raises(ValueError, match="read-only"):
        fb.E[0, 0, 0] = 1.0
    mant, exps = block_weight("1.0^2, 0.5", 0, 100)
    with pytest.raises(ValueError, match="read-only"):
        mant[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        exps[0] = 1
