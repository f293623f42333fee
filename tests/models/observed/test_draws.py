"""Tests of pipeline.models.observed.draws: bases, learners and adversary draws from the seed (MATH.md §1.1, §1.3)."""

import numpy as np
import pytest

from pipeline.models import observed as om
from pipeline.models.spectra import family_dimension, parse_spectrum
from tests.models.observed.cubes import FAMS


def _in_family(M, A, sp, fam, Q):
    """Residual of M outside the family, computed independently of the model."""
    if fam == "full":
        return 0.0
    n = sp.n
    if fam == "block":  # commute with every spectral projector of A
        res = 0.0
        for g in sp.groups:
            idx = list(g.indices)
            Pj = np.zeros((n, n))
            Pj[idx, idx] = 1.0
            Pg = Q @ Pj @ Q.T
            res = max(res, np.abs(M @ Pg - Pg @ M).max())
            if g.is_pair:  # commute with the pair's complex structure
                K = np.zeros((n, n))
                for p in range(0, len(idx), 2):
                    K[idx[p + 1], idx[p]], K[idx[p], idx[p + 1]] = 1.0, -1.0
                Kg = Q @ K @ Q.T
                res = max(res, np.abs(M @ Kg - Kg @ M).max())
        return res
    Ad = np.kron(np.eye(n), A.T) - np.kron(A, np.eye(n))
    U, _s, _ = np.linalg.svd(Ad)
    r = family_dimension(sp, "similarity")
    Ur = U[:, :r]
    v = M.ravel()
    return np.linalg.norm(v - Ur @ (Ur.T @ v))


@pytest.mark.parametrize("basis", ["jordan", "random"])
@pytest.mark.parametrize("text", ["1.0^2, 0.5", "1.05@30, 0.3^2", "1.0^[2,1], -0.6", "0.9@100^2"])
def test_bases_and_perturbations_in_family(text, basis):
    sp = parse_spectrum(text)
    Q = om.basis_change(sp, basis, 3)
    A = om.system(sp, basis, 3)
    for fam in FAMS:
        D = family_dimension(sp, fam)
        E = om.family_space(A, sp, fam, Q)
        B = om.learner_basis(text, fam, 3, basis)
        H = om.perturbations(text, fam, 3, 4, basis)
        for X in (E, B):
            assert X.shape == (D, sp.n, sp.n)
            G = np.einsum("ikl,jkl->ij", X, X)
            np.testing.assert_allclose(G, np.eye(D), atol=1e-12)
            assert max((_in_family(M, A, sp, fam, Q) for M in X), default=0) < 1e-10
        np.testing.assert_allclose(np.linalg.norm(H.reshape(4, -1), axis=1), 1.0, atol=1e-13)
        assert max(_in_family(M, A, sp, fam, Q) for M in H) < 1e-10


def test_draws_are_prefix_stable():
    H5 = om.perturbations("1.0^2, 0.5", "full", 11, 5)
    H2 = om.perturbations("1.0^2, 0.5", "full", 11, 2)
    assert np.array_equal(H5[:2], H2)
    H_one = om.perturbations("1.0^2, 0.5", "full", 11, np.array([3]))
    assert np.array_equal(H_one[0], H5[3])
