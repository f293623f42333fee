"""The block kernel: shapes, no NaN, prefix sharing (MATH §6.3) and the bias limit (MATH §6.5)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models import hidden, hidden_spectrum
from pipeline.models.fitted_fir import fitted_fir_block


def _block(system="1.0^2, 1.0@60, 0.5", r=(1.0, 30.0), k=(1, 2, 4, 7), T=(5, 40, 300), m=(1, 3, 9), fits=(0, 1, 2)):
    return fitted_fir_block(system, list(r), list(k), list(T), list(m), list(fits), seed=17)


def test_shapes_and_no_nan():
    out = _block()
    assert out["risk"].shape == (2, 4, 3, 3, 3) and out["theta"].shape == (2, 4, 3, 3, 3, 7)
    assert out["bias"].shape == (2, 4, 3)
    for name in ("risk", "log10_risk", "theta_bits"):
        assert np.all(np.isfinite(out[name])), name
    assert np.all(out["risk"] > 0)
    assert np.array_equal(out["underdetermined"][:, 3, 0], np.ones((2, 3, 3)))  # k = 7 > T = 5
    assert out["underdetermined"].sum() == 2 * 3 * 3
    theta = out["theta"]
    assert np.all(np.isnan(theta[:, 0, ..., 1:])) and np.all(np.isfinite(theta[:, 3, 1:]))
    assert np.all(theta[:, 3, 0, ..., 5:7] == 0.0)  # taps beyond T of an underdetermined cell


def test_same_bits_on_random_sub_grids():
    full_axes = {"r": (1.0, 30.0), "k": (1, 2, 4, 7), "T": (5, 40, 300), "m": (1, 3, 9), "fits": (0, 1, 2)}
    full = _block()
    rng = np.random.default_rng(5)
    for _ in range(3):
        pick = {
            a: sorted(rng.choice(len(v), size=rng.integers(1, len(v) + 1), replace=False).tolist())
            for a, v in full_axes.items()
        }
        sub = _block(**{a: [full_axes[a][i] for i in idx] for a, idx in pick.items()})
        sel = np.ix_(pick["r"], pick["k"], pick["T"], pick["m"], pick["fits"])
        for name in ("risk", "log10_risk", "theta_bits", "underdetermined"):
            assert np.array_equal(sub[name], full[name][sel]), name
        kk = max(full_axes["k"][i] for i in pick["k"])
        assert np.array_equal(sub["theta"], full["theta"][sel][..., :kk], equal_nan=True)
        assert np.array_equal(sub["bias"], full["bias"][np.ix_(pick["r"], pick["k"], pick["T"])])


def test_lam_variant_equals_one_term_spectrum():
    a = fitted_fir_block(1.0, [4.0], [1, 3], [50, 400], [2, 5], [0, 1], seed=3)
    b = fitted_fir_block("1.0", [4.0], [1, 3], [50, 400], [2, 5], [0, 1], seed=3)
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=True), name
    scalar = hidden.risk_block([1.0], [4.0], "best_fir", [1, 3], [50, 400])["risk"][0, 0]
    np.testing.assert_allclose(a["bias"][0], scalar, rtol=1e-12)
    spec = hidden_spectrum.risk_block("1.0", [4.0], "best_fir", [1, 3], [50, 400])["risk"][0]
    assert np.array_equal(a["bias"][0], spec)


def test_bad_inputs():
    with pytest.raises(ValueError, match="fits"):
        fitted_fir_block("1.0", [1.0], [1], [10], [1], [-1], seed=0)
    with pytest.raises(ValueError, match="k"):
        fitted_fir_block("1.0", [1.0], [0, 1], [10], [1], [0], seed=0)
    with pytest.raises(ValueError, match="noise_ratio"):
        fitted_fir_block("1.0", [0.0], [1], [10], [1], [0], seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("system", ["0.9", "1.0"])
def test_mean_fitted_risk_tends_to_the_bias(system):
    """MATH §6.5: the mean over fits of the fitted risk tends to best_fir at T as m grows; the
    excess is positive (up to noise) and shrinks like 1 / m."""
    F, T = 24, 200
    out = fitted_fir_block(system, [2.0], [1, 3], [T], [8, 400], list(range(F)), seed=8)
    bias = out["bias"][0, :, 0]
    risk = out["risk"][0, :, 0]  # (K, M, F)
    mean = risk.mean(axis=-1)
    se = risk.std(axis=-1, ddof=1) / np.sqrt(F)
    excess = mean - bias[:, None]
    assert np.all(excess > -3 * se)
    assert np.all(excess[:, 1] < 0.2 * excess[:, 0])  # 50x the data: much less than 1/5 of the excess
    assert np.all(np.abs(excess[:, 1]) < 0.02 * bias)
