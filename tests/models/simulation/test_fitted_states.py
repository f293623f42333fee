"""pipeline.models.simulation.fitted_states: streams keyed by plain values, prefixes in T and m,
the recursion's definition, the scaled form for rho > 1."""

import numpy as np
import pytest

from pipeline.models.simulation import fitted_states as sa
from pipeline.models.spectra import parse_spectrum

KEY = ("sampler-test", 0)


def _plain(spectrum: str, v: np.ndarray) -> np.ndarray:
    """The recursion written out coordinate by coordinate in the documented order
    ``((lam z[r] + beta z[partner]) + z[r + s]) + v[r]``."""
    n = parse_spectrum(spectrum).n
    m, T, _ = v.shape
    terms = []  # per coordinate: (lam, (beta, partner) or None, superdiagonal column or None)
    for c in sa.chains(spectrum):
        for k in range(c.dim):
            r = c.start + k
            pair = None
            if c.pair:
                pair = (-c.imag, r + 1) if k % 2 == 0 else (c.imag, r - 1)
            sup = r + c.step if k + c.step < c.dim else None
            terms.append((c.real, pair, sup))
    z = np.zeros((m, T + 1, n))
    for t in range(T):
        for r, (lam, pair, sup) in enumerate(terms):
            acc = lam * z[:, t, r]
            if pair is not None:
                acc = acc + pair[0] * z[:, t, pair[1]]
            if sup is not None:
                acc = acc + z[:, t, sup]
            z[:, t + 1, r] = acc + v[:, t, r]
    return z


@pytest.mark.parametrize("spectrum", ["1.0^2, 0.5", "0.9@30^2, 1.0", "1.1^3, -0.4", "1.05@60, 0.2^2"])
def test_recursion_is_the_documented_one(spectrum):
    z, v = sa.trajectories(spectrum, 3, KEY, 40, 50)
    assert np.array_equal(z, _plain(spectrum, v))
    J = parse_spectrum(spectrum).jordan_matrix()
    step = z[:, 1:] - (z[:, :-1] @ J.T + v)
    assert np.max(np.abs(step)) <= 1e-14 * max(1.0, np.max(np.abs(z)))


def test_prefixes_in_T_and_m_and_plain_keys():
    z, v = sa.trajectories("1.0^2, 0.5", 5, KEY, 70, 45)
    z2, v2 = sa.trajectories("1.0^2, 0.5", 5, KEY, 33, 17)
    assert np.array_equal(z2, z[:33, :18]) and np.array_equal(v2, v[:33, :17])
    z3, _ = sa.trajectories("1.0^2, 0.5", 5, ("sampler-test", 1), 33, 17)
    z4, _ = sa.trajectories("1.0^2, 0.5", 6, KEY, 33, 17)
    assert not np.array_equal(z3, z2) and not np.array_equal(z4, z2)


def test_streams_are_per_group_and_blockwise():
    """Group g's block k is the k-th standard_normal((n, BLOCK, GROUP)) of its own stream."""
    from pipeline.models.simulation.streams import cell_rng

    n = 3
    parts = [sa.Segment(KEY, 1, sa.GROUP), sa.Segment(("other", 2), 0, 5), sa.Segment(KEY, 2, 7)]
    blocks = [b.copy() for b in sa.noise(9, n, parts, 3)]
    start = 0
    for p in parts:
        rng = cell_rng(9, "fitted.noise", *p.key, p.group)
        for k in range(3):
            ref = rng.standard_normal((n, sa.BLOCK, sa.GROUP))[:, :, : p.count]
            assert np.array_equal(blocks[k][:, :, start : start + p.count], ref)
        start += p.count
    assert sa.segments(KEY, 70) == [sa.Segment(KEY, 0, 32), sa.Segment(KEY, 1, 32), sa.Segment(KEY, 2, 6)]


def test_scaled_form_is_exact_where_floats_do_not_overflow():
    """For rho > 1 the scaled simulation reproduces the plain recursion bit for bit."""
    spectrum = "1.3^2, 0.5"
    z, v = sa.trajectories(spectrum, 1, KEY, 5, 600)  # 1.3^600 ~ 2^227
    rec = sa.Recursion.of(sa.chains(spectrum))
    assert rec.scaled and rec.exponents(10)[0] > 0 and rec.exponents(10)[2] == 0
    assert np.array_equal(z, _plain(spectrum, v))


def test_scaled_form_reaches_past_float64():
    spectrum = "1.1^4, 0.4"
    rec = sa.Recursion.of(sa.chains(spectrum))
    last = None
    for blk in sa.simulate(rec, 1, sa.segments(KEY, 4), 10_000):
        last = blk
    assert last is not None
    assert np.all(np.isfinite(last.z)) and np.max(np.abs(last.z)) < 2.0**64
    top = np.log2(np.abs(last.z[0, -1])) + last.e[0]  # log2 |z_T| at the top of the block
    assert np.all(top > 0.9 * 10_000 * np.log2(1.1))


def test_exponent_schedule_is_exact():
    c = sa.chains("1.1")[0]
    assert c.growth == pytest.approx(np.log2(1.1), abs=1e-15)
    rec = sa.Recursion.of((c,))
    assert [int(rec.exponents(k)[0]) for k in (0, 1, 10)] == [0, int(16 * np.log2(1.1)), int(160 * np.log2(1.1))]


def test_refuses_absurd_growth():
    with pytest.raises(sa.UnsupportedSystem, match="grows by more than"):
        sa.Recursion.of(sa.chains("1e6"))


def test_scale_in_the_kernel_is_ldexp(monkeypatch):
    """The scaled noise ``v 2^-e`` formed in the compiled loop (2^-e normal) has the bits of
    ``ldexp(v, -e)``, the path taken beyond 2^-1022."""
    spectrum = "1.2^3, 0.5"
    fast = sa.trajectories(spectrum, 2, KEY, 40, 700)
    monkeypatch.setattr(sa, "_NORMAL_SCALE", -1)
    slow = sa.trajectories(spectrum, 2, KEY, 40, 700)
    assert sa.Recursion.of(sa.chains(spectrum)).exponents(40)[0] > 100
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
