"""Tests of pipeline.models.observed.montecarlo (MATH.md §3)."""

import numpy as np

from tests.models.observed.cubes import _cube, _kernel, _settings


def test_montecarlo_agrees_with_exact():
    coords, static, s = _cube(["1.0, 0.5"], [30], draws=2, families=("full",), method="montecarlo", mc_samples=4000)
    mc = _kernel(coords, static, s)
    ex = _kernel(coords, static, _settings())
    D = 4
    z = (mc["risk"][..., :D, :, :] - ex["risk"][..., :D, :, :]) / mc["risk_stderr"][..., :D, :, :]
    assert np.all(np.abs(z) < 5), z
    assert np.all(mc["risk"][0, 0, D] < 1e-20)
    mc2 = _kernel(dict(coords, draw=coords["draw"][1:]), static.sel(draw=[1]), s)
    assert np.array_equal(mc2["risk"], mc["risk"][..., 1:], equal_nan=True)
