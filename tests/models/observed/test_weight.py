"""Tests of pipeline.models.observed.weight: the row-scaled square roots of Sigmabar_T (MATH.md §1.2)."""

import mpmath as mp
import numpy as np
import pytest

from pipeline.models import observed as om
from pipeline.models.observed.weight import block_weight
from pipeline.models.precision.doubling import sigmabar, sigmabar_loop
from pipeline.models.spectra import parse_spectrum
from tests.oracles import observed_fixed_point as fx
from tests.oracles.observed_mp import mp_sigmabar


@pytest.mark.parametrize("text", ["1.0^3", "1.05@30, 0.3^2", "-1.0^2, 0.5"])
def test_sigmabar_doubling_matches_loop(text):
    A = om.system(text, "random", 1)
    for T in (1, 2, 3, 17, 64):
        np.testing.assert_allclose(sigmabar(A, T), sigmabar_loop(A, T), rtol=1e-12, atol=1e-12)
        oracle = np.array(mp_sigmabar(mp.matrix(A.tolist()), T).tolist(), dtype=float)
        np.testing.assert_allclose(oracle, sigmabar_loop(A, T), rtol=1e-12, atol=1e-12)  # the test's oracle
        sp = parse_spectrum(text)
        F = 80
        for i, b in enumerate(sp.blocks):
            Jb = sp.jordan_matrix()[b.start : b.start + b.dim, b.start : b.start + b.dim]
            Sx = fx.sigmabar_fixed(Jb, T, F).astype(float) / 2.0**F
            np.testing.assert_allclose(Sx, sigmabar_loop(Jb, T), rtol=1e-13, atol=1e-13)
            if T > 1:  # the fast kernel's row-scaled square root of the same block
                mant, exps = block_weight(text, i, T)
                R = mant * np.exp2(exps.astype(float))[:, None]
                np.testing.assert_allclose(R.T @ R, sigmabar_loop(Jb, T), rtol=1e-13, atol=1e-13)
                assert np.all(np.tril(mant, -1) == 0)


def test_precision_is_converged():
    """The fast kernel against the fixed-point oracle run with 300 extra bits."""
    prob = om.problem_from_seed("1.0^3, 0.5", "full", 4, 3)
    for T in (10**8, 10**3):
        a = om.log2_risk(om.risk_factor(prob.text, prob.family, prob.P, T), prob.Pinv, prob.h)
        b = fx.log2_risk(fx.risk_factor(prob.text, prob.family, prob.P, T, extra_bits=300), prob.Pinv, prob.h)
        np.testing.assert_allclose(a[:, :-1], b[:, :-1], rtol=1e-12)
        assert np.all(np.isneginf(a[:, -1]))
