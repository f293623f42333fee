"""Sufficient statistics: exact sums (plain and compensated), prefix sharing and
independence of the grid, the batching and the product chunking."""

from fractions import Fraction

import numpy as np
import pytest

from pipeline.models.fitted import statistics as st
from pipeline.models.simulation import fitted_states as sa

KEY = ("statistics-test", 0)


def _exact(z, v, m, T, a, b):
    """Exact S_ab and W_ab of the first m trajectories and T steps (rationals)."""
    zs = z[:m, :T].reshape(-1, z.shape[-1])
    vs = v[:m, :T].reshape(-1, v.shape[-1])
    S = sum(Fraction(x) * Fraction(y) for x, y in zip(zs[:, a], zs[:, b], strict=True))
    W = sum(Fraction(x) * Fraction(y) for x, y in zip(vs[:, a], zs[:, b], strict=True))
    return S, W, zs, vs


def _value(hi, lo, e):
    return (Fraction(float(hi)) + Fraction(float(lo))) * Fraction(2) ** int(e)


@pytest.mark.parametrize("spectrum", ["1.0^2, 0.5", "0.9@30^2, 1.0", "1.1^3, 0.4"])
def test_sums_are_exact_to_their_precision(spectrum):
    chs = sa.chains(spectrum)
    T, m = [1, 7, 16, 41], [1, 3, 37]
    mo = st.moments(chs, 4, KEY, T, m)
    z, v = sa.trajectories(spectrum, 4, KEY, 37, 41)
    comp = st.compensated_coordinates(chs)
    n = mo.n
    for j, TT in enumerate(T):
        for i, mm in enumerate(m):
            e = mo.e[j]
            for a in range(n):
                for b in range(n):
                    S, W, zs, _ = _exact(z, v, mm, TT, a, b)
                    got_S = _value(mo.S_hi[j, i, a, b], mo.S_lo[j, i, a, b], e[a] + e[b])
                    got_W = _value(mo.W_hi[j, i, a, b], mo.W_lo[j, i, a, b], e[b])
                    scale_S = float(np.sqrt(np.sum(zs[:, a] ** 2) * np.sum(zs[:, b] ** 2))) + 1e-300
                    scale_W = float(np.sqrt(zs.shape[0] * np.sum(zs[:, b] ** 2))) + 1e-300
                    tol = 1e-30 if comp[a] and comp[b] else 2.0**-52 * mm * TT
                    assert abs(float(got_S - S)) <= tol * scale_S
                    tol = 1e-30 if comp[b] else 2.0**-52 * mm * TT
                    assert abs(float(got_W - W)) <= tol * scale_W


def test_compensated_where_floats_lose_the_data():
    flags = st.compensated_coordinates(sa.chains("1.1^2, 1.0^4, 1.0^5, 0.5, 1.0@30"))
    assert flags.tolist() == [True] * 2 + [False] * 4 + [True] * 5 + [False] * 3


def _fields(mo, j, i):
    return [mo.S_hi[j, i], mo.S_lo[j, i], mo.W_hi[j, i], mo.W_lo[j, i], mo.e[j]]


@pytest.mark.parametrize("spectrum", ["0.9, 0.5^2", "1.1^2, 0.4"])
def test_cells_do_not_depend_on_the_grid_or_the_batching(spectrum, monkeypatch):
    chs = sa.chains(spectrum)
    T = [1, 3, 16, 17, 40, 77]
    m = [1, 5, 32, 33, 70]
    full = st.moments(chs, 2, KEY, T, m)
    rng = np.random.default_rng(0)
    for trial in range(4):
        Ts = sorted(rng.choice(T, size=rng.integers(1, len(T) + 1), replace=False).tolist())
        ms = sorted(rng.choice(m, size=rng.integers(1, len(m) + 1), replace=False).tolist())
        monkeypatch.setattr(st, "BATCH_GROUPS", [1, 3, 2, 8][trial])
        sub = st.moments(chs, 2, KEY, Ts, ms)
        for j, TT in enumerate(Ts):
            for i, mm in enumerate(ms):
                for a, b in zip(_fields(sub, j, i), _fields(full, T.index(TT), m.index(mm)), strict=True):
                    assert np.array_equal(a, b)


def test_training_sets_side_by_side_are_their_own():
    """Several keys simulated in one batch give each key's own numbers, bit for bit."""
    chs = sa.chains("1.1^2, 0.4")
    keys = [("statistics-test", f) for f in range(5)]
    many = st.moments_many(chs, 2, keys, [7, 40], [3, 45])
    for key, mo in zip(keys, many, strict=True):
        one = st.moments(chs, 2, key, [7, 40], [3, 45])
        for name in ("S_hi", "S_lo", "W_hi", "W_lo", "e", "raw_z", "raw_v"):
            assert np.array_equal(getattr(mo, name), getattr(one, name))
    assert not np.array_equal(many[0].S_hi, many[1].S_hi)
    with pytest.raises(ValueError, match="distinct"):
        st.moments_many(chs, 2, [keys[0], keys[0]], [7], [3])


def test_raw_first_steps_are_the_trajectories():
    mo = st.moments(sa.chains("1.0^2, 0.5"), 4, KEY, [2, 5, 40], [2, 50])
    z, v = sa.trajectories("1.0^2, 0.5", 4, KEY, 3, 3)
    assert mo.raw_z.shape == (3, 3, 3)
    assert np.array_equal(mo.raw_z, z[:, :3]) and np.array_equal(mo.raw_v, v[:, :3])


def test_rejects_bad_grids():
    chs = sa.chains("0.5")
    for T, m in (([3, 2], [1]), ([0, 2], [1]), ([2], []), ([2], [2, 2])):
        with pytest.raises(ValueError, match="T and m"):
            st.moments(chs, 1, KEY, T, m)
