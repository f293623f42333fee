"""Tests of pipeline.models.parametrisation.families: the diagonal family, learner bases and ranks (MATH.md §1.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.models import parametrisation as pm
from pipeline.models.spectra import (
    family_dimension,
    parse_spectrum,
)
from tests.models.parametrisation.cases import SPECTRA, _u


@pytest.mark.parametrize("text", SPECTRA)
def test_diagonal_basis_structure(text):
    sp = parse_spectrum(text)
    n = sp.n
    fb = pm.diagonal_basis(text)
    E = fb.E
    assert E.shape == (n, n, n) and fb.D == n == pm.learner_dimension(sp, "diagonal")
    assert not E.flags.writeable
    gram = np.einsum("ikl,jkl->ij", E, E)
    assert np.array_equal(gram, gram.T) and np.allclose(gram, np.eye(n), rtol=0, atol=1e-15)
    # pattern: the diagonal, plus the antidiagonal of each pair's 2x2 coordinate unit
    allowed = np.eye(n, dtype=bool)
    for b in sp.blocks:
        if b.is_pair:
            for p in range(b.start, b.start + b.dim, 2):
                allowed[p, p + 1] = allowed[p + 1, p] = True
    assert np.all(E[:, ~allowed] == 0.0)
    for b in sp.blocks:
        if b.is_pair:
            for p in range(b.start, b.start + b.dim, 2):
                S = E[:, p : p + 2, p : p + 2]
                assert np.array_equal(S[:, 0, 0], S[:, 1, 1])
                assert np.array_equal(S[:, 0, 1], -S[:, 1, 0])
    # the span is exactly the diagonal / rotation-scaling pattern: dimension count
    assert n == sum(1 for b in sp.blocks for _ in range(b.dim))
    u, s = _u(sp), sp.stable_indices
    assert fb.d_star == sp.n_unstable == pm.restriction_rank(sp, "diagonal")
    assert np.all(E[: fb.d_star][:, :, s] == 0.0)
    assert np.all(E[fb.d_star :][:, :, u] == 0.0)
    assert np.all(np.abs(E[: fb.d_star][:, :, u]).sum(axis=(1, 2)) > 0)


def test_diagonal_basis_of_a_pair_is_rotation_scaling():
    E = pm.diagonal_basis("1.0@45").E
    c = 1 / math.sqrt(2)
    assert np.array_equal(E[0], [[c, 0], [0, c]])
    assert np.array_equal(E[1], [[0, -c], [c, 0]])
    J = parse_spectrum("1.0@45").jordan_matrix()
    # J itself lies in the diagonal family of a 1x1 pair
    coef = np.einsum("ikl,kl->i", E, J)
    assert np.allclose(np.einsum("i,ikl->kl", coef, E), J, atol=1e-15)


@pytest.mark.parametrize("text", SPECTRA)
@pytest.mark.parametrize("family", pm.LEARNER_FAMILIES)
def test_learner_basis_structured_and_ranks(text, family):
    sp = parse_spectrum(text)
    fb = pm.learner_basis_structured(sp, family)
    assert pm.learner_dimension(text, family) == fb.D
    if family != "diagonal":
        assert family_dimension(sp, family) == fb.D
    u = _u(sp)
    R = fb.E[:, :, u].reshape(fb.D, sp.n * len(u))
    rank = np.linalg.matrix_rank(R, tol=1e-9) if R.size else 0
    assert rank == fb.d_star == pm.restriction_rank(text, family)
    assert pm.restricted_family(text, family, u).shape[0] == rank


def test_unknown_family():
    with pytest.raises(ValueError, match="allowed block, full, similarity, diagonal"):
        pm.critical_d("1.0", "block", "lowrank")
