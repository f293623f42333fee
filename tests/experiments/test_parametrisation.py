"""The learner_family axis of the observed experiment (MATH §1.5) end to end: the default
reproduces the cube from before the axis bit for bit, cross-family cells are exact against
mpmath, a real cube is the same whatever its chunking and recomputable from itself,
thresholds and figures per learner family, bad values refused, the shipped workflow."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import xarray as xr
import xarray.testing as xrt

from pipeline.cli import main
from pipeline.experiments import get_experiment
from pipeline.experiments.observed import report
from pipeline.models import observed as om
from pipeline.models import parametrisation as pm
from pipeline.models.spectra import parse_spectrum
from pipeline.plan.config import load_workflow, parse_workflow
from pipeline.readers import plots
from pipeline.readers import thresholding as thr
from pipeline.readers.cubes import open_cube
from tests.helpers import REPO, assert_cubes_identical, direct, observed, one_clean_line, run_quietly, write_workflow
from tests.oracles.observed_mp import mp_oracle, snap_to_similarity
from tests.references import ACROSS_MACHINES, assert_agree_across_machines

OBSERVED = get_experiment("observed")
REFERENCE = REPO / "tests" / "experiments" / "data" / "observed_before_learner_family.npz"


# ---------------------------------------------------------------------------
# the default learner is the cube of MATH §1.3: bit for bit on this machine, and within the
# cross-machine promise of the values stored before the axis


def _cells_before_the_axis(wf, static) -> dict[str, np.ndarray]:
    """The exact kernel's loop as it was before the learner_family axis (main at e396706): the
    MATH §1.3 cells of every (spectrum, family) from the model functions it called, here."""
    spectra, families = [str(s) for s in wf.coords["spectrum"]], [str(f) for f in wf.coords["family"]]
    dvals, Tvals, draws = (np.asarray(wf.coords[a], dtype=np.int64) for a in ("d", "T", "draw"))
    log2r = np.full((len(spectra), len(families), len(dvals), len(Tvals), len(draws)), np.nan)
    bounded = np.ones((len(spectra), len(families), len(dvals), len(draws)), dtype=bool)
    for i, text in enumerate(spectra):
        sp = parse_spectrum(text)
        n, Q = sp.n, om.basis_change(sp, wf.settings.extra.get("basis", "jordan"), int(wf.settings.seed))
        for j, fam in enumerate(families):
            st = static.sel(spectrum=text, family=fam)
            D = int(st["family_dim"].values)
            B = np.asarray(st["learner_basis"].values, dtype=float)[:D, :n, :n]
            H = np.asarray(st["perturbation"].sel(draw=draws).values, dtype=float)[:, :n, :n]
            prob = om.problem_from_matrices(text, fam, B, H, Q)
            valid = dvals <= D
            dsel = np.where(valid, dvals, 0)
            bounded[i, j] = np.where(valid[:, None], om.bounded(prob)[dsel], True)
            for t, T in enumerate(Tvals):
                lr = om.log2_risk(om.risk_factor(text, fam, prob.P, int(T)), prob.Pinv, prob.h)
                log2r[i, j, :, t, :] = np.where(valid[:, None], lr[:, dsel].T, np.nan)
    with np.errstate(over="ignore"):
        risk = np.exp2(log2r)
    return {"risk": risk, "log10_risk": log2r * float(np.log10(2.0)), "kl_rate": risk / 2.0, "bounded": bounded}


@pytest.mark.parametrize("basis", ["jordan", "random"])
def test_default_learner_reproduces_the_cube_from_before_the_axis(basis):
    """Bits are promised on one machine only: the default slice equals, bit for bit, the
    pre-axis kernel run here; the values main's kernel stored before the axis (on another
    CPU) it equals within the README's cross-machine promise."""
    ref = np.load(REFERENCE)
    text = str(ref[f"{basis}_workflow"])
    assert "learner_family =" not in text
    wf = parse_workflow(text)
    assert wf.coords["learner_family"].tolist() == ["same"]
    out = direct(text)
    static = OBSERVED.static(wf.coords, wf.settings)
    before = _cells_before_the_axis(wf, static)
    for name in ("risk", "log10_risk", "kl_rate", "bounded"):
        got = out[name]
        assert got.shape[2] == 1, name
        assert got.dtype == ref[f"{basis}_{name}"].dtype, name
        np.testing.assert_array_equal(got[:, :, 0], before[name], strict=True, err_msg=name)
    assert_agree_across_machines(out["log10_risk"][:, :, 0], ref[f"{basis}_log10_risk"], "log10_risk")
    for name in ("risk", "kl_rate"):
        assert_agree_across_machines(out[name][:, :, 0], ref[f"{basis}_{name}"], name, log10=ref[f"{basis}_log10_risk"])
    np.testing.assert_array_equal(out["bounded"][:, :, 0], ref[f"{basis}_bounded"], strict=True)  # a rank decision
    for name in ("system", "learner_basis", "perturbation"):  # drawn and orthonormalised: BLAS rounding
        got, stored = static[name].values, ref[f"{basis}_static_{name}"]
        np.testing.assert_allclose(got, stored, rtol=0, atol=ACROSS_MACHINES * np.nanmax(np.abs(stored)), err_msg=name)
    np.testing.assert_array_equal(static["family_dim"].values, ref[f"{basis}_static_family_dim"], strict=True)
    crit = static["critical_d_theory"].sel(learner_family="same").values
    np.testing.assert_array_equal(crit, ref[f"{basis}_static_critical_d_theory"].astype(np.float64))
    assert bool(static["learnable"].all())
    np.testing.assert_array_equal(
        static["learner_dim"].sel(learner_family="same").values, static["family_dim"].values, strict=True
    )
    # naming the axis explicitly changes nothing
    explicit = direct(text.replace("[grid]\n", '[grid]\nlearner_family = ["same"]\n'))
    for name, values in out.items():
        np.testing.assert_array_equal(explicit[name], values, strict=True)


def test_the_adversarys_own_family_named_is_the_same_learner():
    text = observed(
        "own",
        seed=2,
        spectrum=["1.0^2, 0.5", "1.05@30"],
        family=["block", "full", "similarity"],
        learner_family=["same", "block", "full", "similarity"],
        T=[1, 100, 10**6],
        basis="random",
    )
    out = direct(text)
    for j, fam in enumerate(["block", "full", "similarity"]):
        k = 1 + j
        for name, values in out.items():
            np.testing.assert_array_equal(values[:, j, k], values[:, j, 0], strict=True, err_msg=f"{name} {fam}")


# ---------------------------------------------------------------------------
# exact: cross-family cells against mpmath

CROSS = [  # (spectrum, adversary, learner, T): bounded and unbounded cells, T to 1e8 at radius 1
    ("1.0, -1.0, 0.5", "block", "diagonal", 10**8),
    ("1.0@45, 0.5", "block", "diagonal", 10**8),
    ("1.0^2, 0.5", "block", "diagonal", 10**8),
    ("1.0^3, 0.5", "block", "full", 10**8),
    ("1.0^2, 0.5", "similarity", "full", 10**8),
    ("1.0^2, 0.5", "similarity", "block", 10**6),
    ("1.0^[1,1], 0.5", "block", "diagonal", 10**8),
    ("1.0^[1,1], 0.5", "similarity", "diagonal", 10**8),
    ("1.05@30, 0.3", "block", "full", 10**4),
    ("1.0, 0.5", "full", "diagonal", 10**8),
]


@pytest.mark.parametrize("text, adversary, learner, T", CROSS)
def test_cross_family_cells_against_mpmath(text, adversary, learner, T):
    wf = parse_workflow(
        observed("cross", seed=5, spectrum=[text], family=[adversary], learner_family=[learner], T=[T], draw=2)
    )
    static = OBSERVED.static(wf.coords, wf.settings)
    out = OBSERVED.kernel(wf.coords, static, wf.settings)
    sp = parse_spectrum(text)
    n = sp.n
    DL = int(static["learner_dim"].item())
    assert pm.learner_dimension(sp, learner) == DL
    A = static["system"].values[0, :n, :n]
    B = static["learner_family_basis"].sel(learner_family=learner).values[0, :DL, :n, :n]
    H = static["perturbation"].values[0, 0, :, :n, :n]
    l10 = out["log10_risk"][0, 0, 0, : DL + 1, 0, :]
    finite = l10[np.isfinite(l10)]
    dps = int(2 * finite.max() + 60) if finite.size else 60
    # block, full and diagonal bases are stored exactly inside their families; the
    # similarity adversary's are float roundings of an irrational subspace, snapped there
    ref = mp_oracle(A, B, H, T, dps, snap=False) if adversary != "similarity" else None
    if ref is None:
        with mp.workdps(dps):
            Hs = snap_to_similarity(mp.matrix(A.tolist()), [mp.matrix(h.tolist()) for h in H], dps)
            Hf = np.array([[[float(M[i, j]) for j in range(n)] for i in range(n)] for M in Hs])
        ref = mp_oracle(A, B, Hf, T, dps)
    crit = static["critical_d_theory"].item()
    learnable = bool(static["learnable"].item())
    assert learnable == (pm.critical_d(sp, adversary, learner) is not None) == math.isfinite(crit)
    whole = pm.contained_on(sp, adversary, learner, np.arange(n))
    worst = 0.0
    with mp.workdps(dps):
        for q in range(2):
            for d in range(DL + 1):
                exact = ref[q][d]
                if d == DL and whole:
                    assert abs(exact) <= mp.mpf(10) ** (-dps // 3) * ref[q][0]
                    assert out["risk"][0, 0, 0, d, 0, q] == 0.0
                    continue
                got = mp.mpf(10) ** mp.mpf(float(l10[d, q]))
                worst = max(worst, float(abs(got - exact) / exact))
    assert worst < 1e-6, worst
    # bounded exactly from the predicted critical d on, never for "never" pairs
    bounded = out["bounded"][0, 0, 0, : DL + 1, :]
    expect = np.arange(DL + 1) >= crit
    np.testing.assert_array_equal(bounded, np.broadcast_to(expect[:, None], bounded.shape))
    if not learnable:  # the risk at d = learner_dim is huge, and grows with T
        assert np.all(l10[DL] > 3.0)


# ---------------------------------------------------------------------------
# a real cube: chunking, recomputable from itself, thresholds, figures

CUBE = observed(
    "cross_cube",
    seed=4,
    spectrum=["1.0, -1.0, 0.5", "1.0^2, 0.5", "1.0@45, 0.5"],
    family=["block", "similarity"],
    learner_family=["diagonal", "same", "full"],
    T=[1, 10, 10**4, 10**6],
    draw=2,
    basis="random",
)


@pytest.mark.slow
def test_cube_is_chunking_invariant_and_recomputable_from_itself(tmp_path, shared_cluster):
    run_quietly(CUBE, tmp_path / "a.zarr", shared_cluster)
    split = CUBE + "\n[chunks]\nspectrum = 1\nlearner_family = 2\nd = 3\nT = 3\ndraw = 1\n"
    run_quietly(split, tmp_path / "b.zarr", shared_cluster)
    assert_cubes_identical(tmp_path / "a.zarr", tmp_path / "b.zarr", layout=False)
    ds = xr.open_zarr(tmp_path / "a.zarr").load()
    assert ds["risk"].dims == ("spectrum", "family", "learner_family", "d", "T", "draw")
    assert ds["learner_family_basis"].dims[:2] == ("spectrum", "learner_family")
    assert ds["perturbation"].dims[:3] == ("spectrum", "family", "draw")
    for name in ("critical_d_theory", "learnable", "learner_dim"):
        assert ds[name].dims == ("spectrum", "family", "learner_family"), name
    # NaN only where d > learner_dim
    defined = ds["d"] <= ds["learner_dim"]
    assert not bool((ds["risk"].isnull() & defined).any()) and bool((ds["risk"].isnull() | defined).all())
    # "never" is the boolean, and its critical count is no number a plot could count to
    never = ~ds["learnable"]
    assert bool(never.any()) and bool(ds["learnable"].any())
    assert bool(np.isinf(ds["critical_d_theory"].where(never, np.inf)).all())
    assert bool((ds["critical_d_theory"].where(~never, 0) <= ds["learner_dim"]).all())
    # every cell again from the cube alone (its static part is what the kernel reads)
    wf = parse_workflow(ds.attrs["workflow"])
    coords = {axis: ds[axis].values for axis in wf.coords}
    again = OBSERVED.kernel(coords, ds.drop_vars(list(OBSERVED.variables(wf.settings))), wf.settings)
    for name, values in again.items():
        stored = ds[name].drop_vars(list(ds[name].coords)).drop_attrs()
        xrt.assert_identical(xr.DataArray(values, dims=ds[name].dims, name=name), stored)
    # and one cell by hand through the model, from the stored matrices
    sp = parse_spectrum("1.0^2, 0.5")
    n, DL = sp.n, int(ds["learner_dim"].sel(spectrum="1.0^2, 0.5", family="block", learner_family="diagonal"))
    B = ds["learner_family_basis"].sel(spectrum="1.0^2, 0.5", learner_family="diagonal").values[:DL, :n, :n]
    H = ds["perturbation"].sel(spectrum="1.0^2, 0.5", family="block").values[:, :n, :n]
    cp = pm.cross_problem(sp, "block", "diagonal", B, H, om.basis_change(sp, "random", 4))
    lr = pm.cross_log2_risk(cp, 10**6)
    stored = ds["log10_risk"].sel(spectrum="1.0^2, 0.5", family="block", learner_family="diagonal", T=10**6)
    np.testing.assert_array_equal(stored.values[: DL + 1].T, lr * math.log10(2.0))


def test_thresholds_and_figures_per_learner_family(tmp_path, threaded_cluster):
    run_quietly(CUBE, tmp_path / "c.zarr", threaded_cluster)
    ds = open_cube(tmp_path / "c.zarr")
    th = thr.compute_thresholds(ds)
    assert report.disagreements(th) == []
    xrt.assert_equal(th["critical_d"].drop_attrs(), th["critical_d_theory"].drop_attrs())
    xrt.assert_equal(th["critical_d_empirical"].drop_attrs(), th["critical_d_theory"].drop_attrs())
    xrt.assert_equal(th["learnable"].drop_attrs(), th["learnable_theory"].drop_attrs())
    sel = {"spectrum": "1.0^2, 0.5", "family": "block", "learner_family": "diagonal"}
    assert math.isinf(float(th["critical_d"].sel(sel))) and not bool(th["learnable"].sel(sel))
    assert float(th["growth_at_dim_theory"].sel(sel)) == 3.0  # MATH §1.5: like T^3
    np.testing.assert_allclose(th["growth_at_dim"].sel(sel).values, 3.0, atol=0.01)
    learnt = {"spectrum": "1.0, -1.0, 0.5", "family": "block", "learner_family": "diagonal"}
    assert float(th["critical_d"].sel(learnt)) == 2 and np.isnan(th["growth_at_dim"].sel(learnt)).all()
    table = "\n".join(report.table(th))
    assert "never" in table and "disagreements with theory: 0" in thr.format_table(th)
    assert set(np.asarray(th["growth_at_dim_verdict"].sel(sel).values, dtype=str).ravel()) <= {"agrees", "unresolved"}
    stems = [f.stem for f in plots.draw(ds, th)]
    assert "cross_cube_learnable" in stems and "cross_cube_learners_1.0p2_0.5" in stems
    assert "cross_cube_risk_1.0p2_0.5" in stems  # the same learner's figures stay
    # a disagreement is flagged, never hidden: pretend theory said 1 for a never cell
    wrong = ds.load().copy(deep=True)
    wrong["critical_d_theory"].loc[sel] = 1.0
    bad = thr.compute_thresholds(wrong)
    assert any("learner_family=diagonal: never vs theory 1" in line for line in report.disagreements(bad))


# ---------------------------------------------------------------------------
# bad values, the shipped workflow

BAD = {
    "unknown learner": ('learner_family = ["diagonl"]', "grid.learner_family = 'diagonl'", "diagonal"),
    "not a list": ('learner_family = "full"', "grid.learner_family = 'full'", "list"),
    "empty": ("learner_family = []", "grid.learner_family = []", "empty"),
    "montecarlo": ('learner_family = ["same", "full"]', "grid.learner_family = 'full'", "montecarlo"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_learner_family_exit_2_one_line_nothing_written(case, tmp_path, capsys):
    line, named, allowed = BAD[case]
    text = observed("bad", spectrum=["1.0^2, 0.5"], family=["block"], T=[10, 100])
    text = text.replace("[grid]\n", f"[grid]\n{line}\n")
    if case == "montecarlo":
        text = 'method = "montecarlo"\n' + text
    wf = write_workflow(tmp_path, text)
    out = tmp_path / "out.zarr"
    assert main(["run", str(wf), "--out", str(out), "--no-progress"]) == 2
    err = one_clean_line(capsys.readouterr().err)
    assert err.startswith(f"emergence: error: {named}") and allowed in err, err
    assert not out.exists()


def test_parametrisation_workflow_separates_the_cases():
    wf = load_workflow(REPO / "workflows" / "parametrisation.toml")
    assert wf.experiment == "observed"
    spectra = wf.coords["spectrum"].tolist()
    assert set(spectra) == {"1.0, -1.0, 0.5", "1.0@45, 0.5", "1.0^2, 0.5", "1.0^3, 0.5", "1.0^[1,1], 0.5"}
    assert all(parse_spectrum(s).n > parse_spectrum(s).n_unstable for s in spectra)  # a stable mode each
    assert wf.coords["family"].tolist() == ["block", "similarity"]
    assert wf.coords["learner_family"].tolist() == ["diagonal", "block", "full"]
    assert int(wf.coords["T"].max()) == 10**8
    static = OBSERVED.static(wf.coords, wf.settings)
    assert int(wf.coords["d"].max()) == int(static["learner_dim"].max())
    # the diagonal learner learns the block adversary of distinct eigenvalues and a pair, and
    # never that of a Jordan block or a repeated eigenvalue
    diag = static["learnable"].sel(family="block", learner_family="diagonal")
    assert diag.values.tolist() == [True, True, False, False, False]
    assert not bool(static["learnable"].sel(family="similarity", learner_family=["diagonal", "block"]).any())
    assert bool(static["learnable"].sel(learner_family="full").all())


@pytest.mark.parametrize("basis", ["jordan", "random"])
def test_bounded_is_the_rule_for_every_family_pair(basis):
    """The kernel's exact rank test against the rule of MATH §1.5, over spectra with real,
    complex, Jordan, repeated, explosive and zero-restriction cases, every pair of families."""
    spectra = ["1.0, 0.5", "1.0@45, 0.5", "1.0^2, 0.5", "1.0^[1,1]", "1.0", "1.05@30, 0.3", "-1.0^[2,1]", "0.9^2"]
    text = observed(
        "pairs",
        seed=11,
        spectrum=spectra,
        family=["block", "full", "similarity"],
        learner_family=["same", "block", "full", "similarity", "diagonal"],
        T=[1, 10**4],
        draw=2,
        basis=basis,
    )
    wf = parse_workflow(text)
    static = OBSERVED.static(wf.coords, wf.settings)
    out = OBSERVED.kernel(wf.coords, static, wf.settings)
    d = wf.coords["d"]
    for i, s in enumerate(spectra):
        for j, f in enumerate(["block", "full", "similarity"]):
            for k, lf in enumerate(["same", "block", "full", "similarity", "diagonal"]):
                learner = f if lf == "same" else lf
                crit = pm.critical_d(s, f, learner)
                DL = pm.learner_dimension(s, learner)
                expect = (d >= (math.inf if crit is None else crit)) | (d > DL)
                got = out["bounded"][i, j, k]
                assert np.array_equal(got, np.broadcast_to(expect[:, None], got.shape)), (s, f, lf)
                risk = out["risk"][i, j, k]
                assert np.all(np.isnan(risk[d > DL])) and not np.isnan(risk[d <= DL]).any(), (s, f, lf)
                assert np.all(risk[d <= DL, 0] == 0.0)  # T = 1: Sigmabar_1 = 0
                if pm.contained_on(s, f, learner, np.arange(parse_spectrum(s).n)):
                    assert np.all(risk[DL] == 0.0), (s, f, lf)  # F inside L: learnt exactly at D_L
