"""Tests of the observed exact risk (pipeline.models.observed.factor, .risk, .problems; MATH.md §1.2, §1.3, §1.4).

The high-precision oracle recomputes cells with mpmath from the stored cube
matrices (``system``, ``learner_basis``, ``perturbation``) only.
"""

import math

import mpmath as mp
import numpy as np
import pytest

from pipeline.models import observed as om
from pipeline.models.spectra import critical_d_theory, parse_spectrum
from tests.models.observed.cubes import FAMS, _cube, _kernel, _stored
from tests.oracles import observed_fixed_point as fx
from tests.oracles.observed_mp import brute_force, mp_oracle


@pytest.mark.parametrize("basis", ["jordan", "random"])
def test_kernel_matches_float_loop_small_T(basis):
    spectra = ["1.0^2, 0.5", "1.05@30, 0.3", "0.9^2, -0.5"]
    Ts = [1, 2, 5, 40]
    coords, static, s = _cube(spectra, Ts, draws=2, basis=basis)
    out = _kernel(coords, static, s)
    for i, text in enumerate(spectra):
        for j, fam in enumerate(FAMS):
            A, B, H = _stored(static, text, fam)
            D = B.shape[0]
            for k, T in enumerate(Ts):
                for q in range(2):
                    ref = brute_force(A, B, H[q], T)
                    got = out["risk"][i, j, : D + 1, k, q]
                    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * max(ref[0], 1e-300))
            assert np.all(np.isnan(out["risk"][i, j, D + 1 :]))
            assert not np.any(np.isnan(out["risk"][i, j, : D + 1]))
            assert np.all(out["risk"][i, j, D] == 0)


def test_basis_invariance():
    """The exact risk does not depend on the basis of A (same coefficient draws)."""
    c1, s1, st1 = _cube(["1.0^2, 0.5", "1.02@60, 0.4"], [100, 10**4], draws=2)
    c2, s2, st2 = _cube(["1.0^2, 0.5", "1.02@60, 0.4"], [100, 10**4], draws=2, basis="random")
    o1, o2 = _kernel(c1, s1, st1), _kernel(c2, s2, st2)
    np.testing.assert_allclose(o1["log10_risk"], o2["log10_risk"], rtol=1e-10, atol=1e-10)
    assert np.array_equal(o1["bounded"], o2["bounded"])


HARD = [
    ("1.0^2, 0.5", "block", 10**8),
    ("1.0^2, 0.5", "full", 10**8),
    ("1.0^2, 0.5", "similarity", 10**8),
    ("1.0^2, 0.5", "similarity", 10**4),
    ("1.0^3, 0.5", "full", 10**8),
    ("1.0^3, 0.5", "similarity", 10**6),
    ("1.05@30, 0.3^2", "block", 10**4),
    ("1.05@30, 0.3^2", "similarity", 10**4),
    ("1.05, -0.5", "full", 10**4),
    ("1.02^2, 0.5", "full", 10**4),
]


@pytest.mark.slow
@pytest.mark.parametrize("text, fam, T", HARD)
def test_hard_cells_against_mpmath(text, fam, T):
    coords, static, s = _cube([text], [T], draws=2, families=(fam,))
    out = _kernel(coords, static, s)
    A, B, H = _stored(static, text, fam)
    D = B.shape[0]
    l10 = out["log10_risk"][0, 0, : D + 1, 0, :]
    dps = int(2 * np.max(l10[0]) + 60)
    # block/full bases are stored exactly inside the family; similarity bases are
    # float roundings of an irrational subspace, so the oracle snaps them into it
    ref = mp_oracle(A, B, H, T, dps, snap=(fam == "similarity"))
    crit = int(static["critical_d_theory"].item())
    worst = 0.0
    with mp.workdps(dps):
        for q in range(2):
            for d in range(D):
                exact = ref[q][d]
                got = mp.mpf(10) ** mp.mpf(float(l10[d, q]))
                worst = max(worst, float(abs(got - exact) / exact))
                if math.isfinite(out["risk"][0, 0, d, 0, q]):
                    assert abs(out["risk"][0, 0, d, 0, q] - float(exact)) <= 1e-9 * float(exact)
            assert abs(ref[q][D]) <= mp.mpf(10) ** (-dps // 3) * ref[q][0]
            assert out["risk"][0, 0, D, 0, q] == 0.0
    assert worst < 1e-9, worst
    # bounded cells really are bounded: many orders smaller than unbounded ones
    b = out["bounded"][0, 0, : D + 1, :]
    assert np.array_equal(b, np.broadcast_to((np.arange(D + 1) >= crit)[:, None], b.shape))


def test_overflowing_risk_keeps_finite_log():
    coords, static, s = _cube(["1.05, 0.5"], [20000], draws=1, families=("full",))
    out = _kernel(coords, static, s)
    l10 = out["log10_risk"][0, 0, :, 0, 0]
    D = 4
    assert np.all(np.isfinite(l10[:D])) and l10[0] > 400
    assert np.isinf(out["risk"][0, 0, 0, 0, 0])
    assert np.all(np.isfinite(out["risk"][0, 0, 2:D, 0, 0]))  # bounded cells (d* = 2)


def test_heavy_blocks_beyond_the_old_cap_match_fixed_point():
    """Blocks whose Sigmabar exceeds 2^4096 (the oracle rescales them; the fast kernel
    carries the exponent): both agree."""
    prob = om.problem_from_seed("1.05@30, 0.3^2", "full", 4, 3)
    T = 3000
    fast = om.log2_risk(om.risk_factor(prob.text, prob.family, prob.P, T), prob.Pinv, prob.h)
    ref = fx.log2_risk(fx.risk_factor(prob.text, prob.family, prob.P, T), prob.Pinv, prob.h)
    np.testing.assert_allclose(fast[:, :-1], ref[:, :-1], rtol=1e-12)
    assert fast[0, 0] > 200


N32 = "1.0^2, 1.0@60, " + ", ".join(f"{0.9 - 0.025 * i:.3f}" for i in range(28))


def test_dimension_32_matches_fixed_point():
    """n = 32 (the largest accepted): the fast kernel agrees with the fixed-point oracle
    for every d at a marginal horizon; the rank test bounds exactly the cells from d*."""
    assert parse_spectrum(N32).n == 32
    prob = om.problem_from_seed(N32, "block", 7, 2)
    T = 10**6
    fast = om.log2_risk(om.risk_factor(prob.text, prob.family, prob.P, T), prob.Pinv, prob.h)
    ref = fx.log2_risk(fx.risk_factor(prob.text, prob.family, prob.P, T), prob.Pinv, prob.h)
    np.testing.assert_allclose(fast[:, :-1], ref[:, :-1], rtol=1e-12)
    crit = critical_d_theory(parse_spectrum(N32), "block")
    b = om.bounded(prob)  # (D + 1, N)
    assert np.array_equal(b, np.broadcast_to((np.arange(b.shape[0]) >= crit)[:, None], b.shape))
    with pytest.raises(ValueError, match="exceeds the maximum 32"):
        parse_spectrum(N32 + ", 0.1")
