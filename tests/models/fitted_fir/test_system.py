"""Systems, their reference filters and graded bases (MATH §6.4)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pipeline.models.fitted_fir.reference import reference
from pipeline.models.fitted_fir.system import UnsupportedSystem, fitted_system, system_text
from pipeline.models.hidden_spectrum.system import ObservabilityError
from pipeline.models.spectra import parse_spectrum


def _poly_product(ps):
    out = [Fraction(1)]
    for p in ps:
        new = [Fraction(0)] * (len(out) + len(p) - 1)
        for i, a in enumerate(out):
            for j, b in enumerate(p):
                new[i + j] += a * b
        out = new
    return out


@pytest.mark.parametrize(
    ("text", "phi"),
    [
        ("0.9", [1]),
        ("1.0", [1, -1]),
        ("-1.0, 0.5", [1, 1]),
        ("1.0^3", [1, -3, 3, -1]),
        ("1.0@60", [1, -1, 1]),
        ("1.0@90^2", [1, 0, 2, 0, 1]),
        ("1.0@120, 1.0", [1, 0, 0, -1]),
    ],
)
def test_reference_filter_annihilates_unit_roots(text, phi):
    ref = reference(parse_spectrum(text))
    assert ref.n_u == len(phi) - 1
    assert list(ref.partial_products[-1]) == [Fraction(c) for c in phi]
    for k in range(1, 7):
        d = ref.design(k)
        assert len(d.regressors) == k and len(d.basis) == k
        if k >= ref.n_u:
            assert list(d.theta_ref[: ref.n_u]) == [-Fraction(c) for c in phi[1:]]


@pytest.mark.parametrize("text", ["1.0^2, 1.0@60, 0.5", "1.0@90^2", "1.0^3", "1.05, 0.3"])
def test_graded_basis_is_triangular_with_unit_leading_terms(text):
    """Regressor ``a`` has degree ``a + 1`` in the lags: the change of basis is exact and every
    filter length is a leading block of the next."""
    ref = reference(parse_spectrum(text))
    for k in range(1, 9):
        d = ref.design(k)
        for a, row in enumerate(d.basis):
            assert all(c == 0 for c in row[a + 1 :]) and row[a] != 0
            if all(f.a2 != 0.0 or abs(f.a1) == 1.0 for f in ref.factors):  # unit-modulus roots
                assert abs(row[a]) == 1
        if k > 1:
            prev = ref.design(k - 1)
            if k - 1 >= ref.n_u:
                assert d.regressors[: k - 1] == prev.regressors


def test_snapped_pair_factors():
    assert [f.a1 for f in reference(parse_spectrum("1.0@60, 1.0@90, 1.0@120")).factors] == [-1.0, 0.0, 1.0]
    f = reference(parse_spectrum("1.0@45")).factors[0]
    assert f.a1 == -2 * 0.7071067811865476 and f.a2 == 1.0


def test_system_errors_are_one_line():
    with pytest.raises(ValueError, match="noise_ratio"):
        fitted_system("1.0", 0.0)
    with pytest.raises(ObservabilityError):
        fitted_system("1.0^[1,1]", 1.0)
    with pytest.raises(UnsupportedSystem, match="modulus"):
        fitted_system("1.05@30", 1.0)
    with pytest.raises(ValueError, match="lam"):
        system_text(float("nan"))
    assert system_text(0.9) == "0.9" and system_text(1) == "1.0"


def test_explosive_horizons_beyond_faithful_data_are_refused_in_one_line():
    from pipeline.models.fitted_fir import training_statistics

    s = fitted_system("1.5", 1.0)
    training_statistics(s, seed=0, fit=0, T=[44], trajectories=[2], k_max=3)  # 1.5^44 < 2^26: fine
    with pytest.raises(UnsupportedSystem, match=r"allowed T <= 44"):
        training_statistics(s, seed=0, fit=0, T=[45], trajectories=[2], k_max=3)
