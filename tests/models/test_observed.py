"""Tests of the observed-system model and experiment adapter.

The high-precision oracle recomputes cells with mpmath from the stored cube
matrices (``system``, ``learner_basis``, ``perturbation``) only.
"""

import math

import mpmath as mp
import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.core.errors import ConfigError
from pipeline.core.types import Settings
from pipeline.experiments.observed.adapter import OBSERVED
from pipeline.models import observed as om
from pipeline.models.spectra import critical_d_theory, family_dimension, parse_spectrum
from tests.oracles import observed_fixed_point as fx
from tests.oracles.observed_mp import mp_oracle, mp_sigmabar

FAMS = ("block", "full", "similarity")


def _settings(basis="jordan", seed=7, **kw):
    return Settings(experiment="observed", name="t", seed=seed, extra={"basis": basis}, **kw)


def _cube(spectra, T, draws=3, basis="jordan", d="all", seed=7, families=FAMS, **kw):
    s = _settings(basis, seed, **kw)
    axes = {
        "spectrum": np.array(spectra, dtype=object),
        "family": np.array(families, dtype=object),
        "d": np.array("all", dtype=object) if d == "all" else np.array(d),
        "T": np.array(T),
        "draw": np.array([draws]),
    }
    coords = OBSERVED.resolve_axes(axes, s)
    static = OBSERVED.static(coords, s)
    return coords, static, s


def _kernel(coords, static, s):
    """The kernel's output for the default learner (``learner_family = same``), with the
    learner_family axis (size 1) dropped: the layout of MATH section 1.3's cube."""
    out = OBSERVED.kernel(coords, static, s)
    assert all(v.shape[2] == 1 for v in out.values())
    return {k: v[:, :, 0] for k, v in out.items()}


def _stored(static, text, fam):
    sp = parse_spectrum(text)
    n = sp.n
    st_ = static.sel(spectrum=text, family=fam)
    D = int(st_["family_dim"])
    A = static["system"].sel(spectrum=text).values[:n, :n]
    B = st_["learner_basis"].values[:D, :n, :n]
    H = st_["perturbation"].values[:, :n, :n]
    return A, B, H


# ---------------------------------------------------------------------------
# oracles


def _brute(A, B, H, T):
    """float64 O(T) oracle, fine for small T."""
    S = om.sigmabar_loop(A, T)
    w, V = np.linalg.eigh(S)
    L = V * np.sqrt(np.maximum(w, 0))
    X = np.array([(Bi @ L).ravel() for Bi in B]).T.reshape(-1, len(B))
    b = (H @ L).ravel()
    out = [b @ b]
    for d in range(1, len(B) + 1):
        phi = np.linalg.lstsq(X[:, :d], b, rcond=None)[0]
        r = b - X[:, :d] @ phi
        out.append(r @ r)
    return np.array(out)


# ---------------------------------------------------------------------------
# families, bases, perturbations


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


def test_similarity_of_repeated_diagonal_is_empty():
    coords, static, s = _cube(["1.0^[1,1]"], [1, 10, 1000], draws=2, families=("similarity",))
    assert int(static["family_dim"].item()) == 0 and int(static["critical_d_theory"].item()) == 0
    assert np.all(static["perturbation"].values[..., :2, :2] == 0)
    out = _kernel(coords, static, s)
    assert list(coords["d"]) == [0]
    assert np.all(out["risk"] == 0) and np.all(np.isneginf(out["log10_risk"]))
    assert np.all(out["bounded"])


# ---------------------------------------------------------------------------
# Sigmabar and small-T exactness


@pytest.mark.parametrize("text", ["1.0^3", "1.05@30, 0.3^2", "-1.0^2, 0.5"])
def test_sigmabar_doubling_matches_loop(text):
    A = om.system(text, "random", 1)
    for T in (1, 2, 3, 17, 64):
        np.testing.assert_allclose(om.sigmabar(A, T), om.sigmabar_loop(A, T), rtol=1e-12, atol=1e-12)
        oracle = np.array(mp_sigmabar(mp.matrix(A.tolist()), T).tolist(), dtype=float)
        np.testing.assert_allclose(oracle, om.sigmabar_loop(A, T), rtol=1e-12, atol=1e-12)  # the test's oracle
        sp = parse_spectrum(text)
        F = 80
        for i, b in enumerate(sp.blocks):
            Jb = sp.jordan_matrix()[b.start : b.start + b.dim, b.start : b.start + b.dim]
            Sx = fx.sigmabar_fixed(Jb, T, F).astype(float) / 2.0**F
            np.testing.assert_allclose(Sx, om.sigmabar_loop(Jb, T), rtol=1e-13, atol=1e-13)
            if T > 1:  # the fast kernel's row-scaled square root of the same block
                mant, exps = om._block_weight(text, i, T)
                R = mant * np.exp2(exps.astype(float))[:, None]
                np.testing.assert_allclose(R.T @ R, om.sigmabar_loop(Jb, T), rtol=1e-13, atol=1e-13)
                assert np.all(np.tril(mant, -1) == 0)


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
                    ref = _brute(A, B, H[q], T)
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


# ---------------------------------------------------------------------------
# the hard cells, against mpmath from the stored matrices


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


def test_precision_is_converged():
    """The fast kernel against the fixed-point oracle run with 300 extra bits."""
    prob = om.problem_from_seed("1.0^3, 0.5", "full", 4, 3)
    for T in (10**8, 10**3):
        a = om.log2_risk(om.risk_factor(prob.text, prob.family, prob.P, T), prob.Pinv, prob.h)
        b = fx.log2_risk(fx.risk_factor(prob.text, prob.family, prob.P, T, extra_bits=300), prob.Pinv, prob.h)
        np.testing.assert_allclose(a[:, :-1], b[:, :-1], rtol=1e-12)
        assert np.all(np.isneginf(a[:, -1]))


def test_overflowing_risk_keeps_finite_log():
    coords, static, s = _cube(["1.05, 0.5"], [20000], draws=1, families=("full",))
    out = _kernel(coords, static, s)
    l10 = out["log10_risk"][0, 0, :, 0, 0]
    D = 4
    assert np.all(np.isfinite(l10[:D])) and l10[0] > 400
    assert np.isinf(out["risk"][0, 0, 0, 0, 0])
    assert np.all(np.isfinite(out["risk"][0, 0, 2:D, 0, 0]))  # bounded cells (d* = 2)


# ---------------------------------------------------------------------------
# critical d: theory vs numerical rank vs bounded


_real = st.sampled_from([0.5, -0.7, 0.3, 1.0, -1.0, 1.1])
_pair = st.tuples(st.sampled_from([0.6, 1.0, 1.03]), st.sampled_from([30.0, 100.0]))
_sizes = st.lists(st.integers(1, 2), min_size=1, max_size=2)
_term = st.one_of(st.tuples(_real, _sizes), st.tuples(_pair, _sizes))


def _text(terms):
    parts = []
    for eig, sizes in terms:
        e = f"{eig[0]}@{eig[1]}" if isinstance(eig, tuple) else f"{eig}"
        parts.append(e + (f"^{sizes[0]}" if len(sizes) == 1 else "^[" + ",".join(map(str, sizes)) + "]"))
    return ", ".join(parts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_term, min_size=1, max_size=3), st.sampled_from(FAMS), st.integers(0, 10**6))
def test_critical_d_rank_and_bounded(terms, fam, seed):
    n = sum(sum(sz) * (2 if isinstance(e, tuple) else 1) for e, sz in terms)
    assume(n <= 5)
    text = _text(terms)
    sp = parse_spectrum(text)
    A = om.system(sp, "random", seed)
    Q = om.basis_change(sp, "random", seed)
    # unstable invariant subspace of A, from an ordered real Schur form of A itself
    _, Z, k = sla.schur(A, output="real", sort=lambda x, y=0.0: abs(complex(x, y)) > 0.85)
    Vu = Z[:, :k]
    assert k == sp.n_unstable
    E = om.family_space(A, sp, fam, Q)
    crit = critical_d_theory(sp, fam)
    if len(E):
        restr = np.array([(M @ Vu).ravel() for M in E])
        rank = np.linalg.matrix_rank(restr, tol=1e-7) if restr.size else 0
    else:
        rank = 0
    assert rank == crit
    prob = om.problem_from_matrices(
        text,
        fam,
        om.learner_basis(text, fam, seed, "random"),
        om.perturbations(text, fam, seed, 3, "random"),
        Q,
    )
    b = om.bounded(prob)
    expect = np.arange(prob.D + 1) >= crit
    assert np.array_equal(b, np.broadcast_to(expect[:, None], b.shape))


# ---------------------------------------------------------------------------
# experiment adapter


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
