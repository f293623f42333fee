import numpy as np
import pytest

from pipeline.models.spectra import (
    FAMILIES,
    SpectrumError,
    critical_d_theory,
    family_dimension,
    parse_spectrum,
    system_matrix,
)

TABLE = {  # MATH.md section 1.4: n, n_u, block, full, similarity
    "1.0^2, 0.5": (3, 2, 4, 6, 4),
    "1.0^3": (3, 3, 9, 9, 6),
    "1.0^[1,1]": (2, 2, 4, 4, 0),
    "1.0^[2,1]": (3, 3, 9, 9, 4),
    "1.05@30": (2, 2, 2, 4, 2),
    "0.9^2, 0.5": (3, 0, 0, 0, 0),
}


@pytest.mark.parametrize("text", sorted(TABLE))
def test_critical_d_table(text):
    sp = parse_spectrum(text)
    n, nu, *ds = TABLE[text]
    assert (sp.n, sp.n_unstable) == (n, nu)
    assert [critical_d_theory(sp, f) for f in FAMILIES] == ds


@pytest.mark.parametrize(
    "text, n, nu, rho",
    [
        ("1.0^2, 0.5", 3, 2, 1.0),
        ("1.0^[1,1]", 2, 2, 1.0),
        ("1.05@30, 0.3^2", 4, 2, 1.05),
        (" -0.8 ,1.02^[2,1] ", 4, 3, 1.02),
        ("1@90^2", 4, 4, 1.0),
        ("0.5e0, -1.0", 2, 1, 1.0),
        ("0.7@179.5", 2, 0, 0.7),
        ("1.0^32", 32, 32, 1.0),
    ],
)
def test_parse_accepts(text, n, nu, rho):
    sp = parse_spectrum(text)
    assert (sp.n, sp.n_unstable, sp.spectral_radius) == (n, nu, rho)
    assert sp.jordan_matrix().shape == (n, n)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("1.0^0", "1.0^0"),
        ("abc", "abc"),
        ("1.0^[2,]", "1.0^[2,]"),
        ("1.0^[0,1]", "positive"),
        ("1.0^-2", "positive integer"),
        ("1.0@0", "strictly between 0 and 180"),
        ("1.0@180", "strictly between 0 and 180"),
        ("1.0@-30", "strictly between"),
        ("1.0,,0.5", "empty term"),
        ("", "empty"),
        ("1.0, ", "empty term"),
        ("1.0^33", "exceeds the maximum 32"),
        ("1.0@30^17", "exceeds"),
        ("0@30", "magnitude"),
        ("1.0^2.5", "1.0^2.5"),
        ("1.0^", "1.0^"),
        ("1.0^[a]", "1.0^[a]"),
    ],
)
def test_parse_rejects(text, fragment):
    with pytest.raises(SpectrumError) as info:
        parse_spectrum(text)
    msg = str(info.value)
    assert "\n" not in msg and fragment in msg
    assert isinstance(info.value, ValueError)


def test_jordan_layout():
    J = parse_spectrum("1.05@30^2, 0.3^[2,1]").jordan_matrix()
    a, b = 1.05 * np.cos(np.pi / 6), 1.05 * np.sin(np.pi / 6)
    R = np.array([[a, -b], [b, a]])
    np.testing.assert_allclose(J[:2, :2], R)
    np.testing.assert_allclose(J[2:4, 2:4], R)
    np.testing.assert_array_equal(J[:2, 2:4], np.eye(2))
    np.testing.assert_array_equal(J[4:6, 4:6], [[0.3, 1], [0, 0.3]])
    assert J[6, 6] == 0.3 and J[5, 6] == 0.0
    assert np.count_nonzero(J) == 8 + 2 + 3 + 1


def test_groups_merge_repeated_terms():
    sp = parse_spectrum("1.0^2, 0.5, 1.0")
    g = [g for g in sp.groups if g.unstable]
    assert len(g) == 1 and g[0].sizes == (2, 1) and g[0].indices == (0, 1, 3)
    assert critical_d_theory(sp, "block") == 9
    assert critical_d_theory(sp, "similarity") == 4 * 3 - (2 + 1 + 1 + 1)
    assert family_dimension(sp, "block") == 10


def test_system_matrix_random_is_similar():
    sp = parse_spectrum("1.0^2, 0.5")
    A = system_matrix(sp, "random", np.random.default_rng(1))
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(A).real), [0.5, 1, 1], atol=1e-6)
    assert np.array_equal(system_matrix(sp, "jordan"), sp.jordan_matrix())
    with pytest.raises(ValueError):
        system_matrix(sp, "other")
