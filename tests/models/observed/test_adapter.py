"""The observed experiment's adapter as it calls the model: block invariance, variables, static layout, axes."""

import numpy as np
import pytest

from pipeline.core.errors import ConfigError
from pipeline.experiments.observed.adapter import OBSERVED
from tests.models.observed.cubes import _cube, _kernel, _settings


def test_block_invariance_bits():
    spectra = ["1.0^2, 0.5", "1.05@30, 0.3^2", "1.0^[1,1]"]
    coords, static, s = _cube(spectra, [2, 100, 10**6], draws=4, basis="random")
    full = _kernel(coords, static, s)
    sub = dict(coords)
    sub["spectrum"] = coords["spectrum"][1:]
    sub["family"] = coords["family"][::2]
    sub["d"] = coords["d"][3:9]
    sub["T"] = coords["T"][1:]
    sub["draw"] = coords["draw"][2:3]
    st_sub = static.sel(spectrum=sub["spectrum"], family=sub["family"], draw=sub["draw"])
    part = _kernel(sub, st_sub, s)
    sl = (slice(1, None), slice(None, None, 2), slice(3, 9), slice(1, None), slice(2, 3))
    for name in ("risk", "log10_risk", "kl_rate"):
        assert np.array_equal(part[name], full[name][sl], equal_nan=True)
    assert np.array_equal(part["bounded"], full["bounded"][sl[0], sl[1], sl[2], sl[4]])


def test_variables_and_static_layout():
    coords, static, s = _cube(["1.0^2, 0.5", "1.05@30, 0.3^2"], [10], draws=2)
    specs = OBSERVED.variables(s)
    assert set(specs) == {"risk", "log10_risk", "kl_rate", "bounded"}
    assert specs["bounded"].dims == ("spectrum", "family", "learner_family", "d", "draw")
    assert specs["bounded"].dtype == "bool"
    assert "risk_stderr" in OBSERVED.variables(_settings(method="montecarlo"))
    for v in specs.values():
        assert v.long_name and v.units
    for name in list(static.data_vars) + list(static.coords):
        assert static[name].attrs.get("long_name") and "units" in static[name].attrs, name
    assert static["spectrum"].dtype == object and all(type(x) is str for x in static["spectrum"].values)
    assert static["critical_d_theory"].dtype == np.float64 and static["family_dim"].dtype == np.int64
    assert static["learner_dim"].dtype == np.int64 and static["learnable"].dtype == bool
    assert static["learner_basis"].shape == (2, 3, 16, 4, 4)
    lb = static["learner_basis"].sel(spectrum="1.0^2, 0.5", family="block").values
    assert np.all(np.isnan(lb[5:])) and np.all(np.isnan(lb[:5, 3:, :])) and not np.isnan(lb[:5, :3, :3]).any()
    assert list(static["n"].values) == [3, 4] and list(static["n_unstable"].values) == [2, 2]
    out = OBSERVED.kernel(coords, static, s)
    for name, spec in specs.items():
        assert out[name].shape == tuple(len(coords[d]) for d in spec.dims)
    np.testing.assert_array_equal(out["kl_rate"], out["risk"] / 2)


def test_resolve_axes_rules():
    s = _settings()
    base = {
        "spectrum": np.array(["1.0^2, 0.5", "1.05@30"], dtype=object),
        "family": np.array(["block", "full"], dtype=object),
        "d": np.array("all", dtype=object),
        "T": np.array([1, 10]),
        "draw": np.array([3]),
    }
    c = OBSERVED.resolve_axes(dict(base), s)
    assert list(c["d"]) == list(range(10)) and list(c["draw"]) == [0, 1, 2]
    for bad in (np.array([0]), np.array([-2]), np.array([1, 2])):
        with pytest.raises(ConfigError) as info:
            OBSERVED.resolve_axes(dict(base, draw=bad), s)
        assert info.value.key == "grid.draw"
    with pytest.raises(ConfigError):
        OBSERVED.resolve_axes(dict(base, spectrum=np.array(["1.0^0"], dtype=object)), s)
    assert OBSERVED.axis_rules["spectrum"].check("1.0^0")
    assert OBSERVED.axis_rules["spectrum"].check("1.0^2") is None
    assert OBSERVED.extra_settings["basis"].check("nope") and OBSERVED.extra_settings["basis"].check("random") is None
