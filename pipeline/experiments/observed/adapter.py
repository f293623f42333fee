"""Experiment ``observed``: best-in-class risk of fully observed linear systems.

Cube axes ``(spectrum, family, learner_family, d, T, draw)``; see MATH.md section 1.
``family`` is the adversary's family (MATH section 1.3); ``learner_family`` the family
the learner's basis spans (MATH section 1.5): ``same`` (the default, the cell's
``family``: the cube of MATH section 1.3, bit for bit as before the axis existed),
``block``, ``full``, ``similarity`` or ``diagonal``.

Static part: ``learner_basis`` (spectrum, family, component, row, col) is the ``same``
learner's basis (the adversary family's own Haar basis); ``learner_family_basis``
(spectrum, learner_family, learner_component, row, col) the basis of each named learner
family (NaN for ``same``, whose basis is ``learner_basis`` of the cell's family);
``perturbation`` (spectrum, family, draw, row, col). ``learner_dim``,
``critical_d_theory`` and ``learnable`` are per (spectrum, family, learner_family):
``critical_d_theory`` is ``+inf`` exactly where ``learnable`` is False ("never").
Cells with ``d > learner_dim`` hold NaN (the only NaN of a cube) and
``bounded = True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.types import AxisRule, SettingRule, Settings, VariableSpec
from pipeline.experiments.base import PackageReaders, str_array
from pipeline.models import observed as om
from pipeline.models import parametrisation as pm
from pipeline.models.spectra import (
    FAMILIES,
    SpectrumError,
    critical_d_theory,
    family_dimension,
    parse_spectrum,
)
from pipeline.models.streams import cell_rng

if TYPE_CHECKING:  # imported in static(): `emergence run` reads workflows before importing xarray
    import xarray as xr

    from pipeline.experiments.base import DrawnFigure

BASES = ("jordan", "random")
UNDEFINED = "d > learner_dim (no learner with that many parameters)"
SAME = "same"
LEARNER_FAMILIES = (SAME, *pm.LEARNER_FAMILIES)


def resolved_learner(family: str, learner_family: str) -> str:
    """The learner's family of a cell: ``learner_family``, or ``family`` for ``same``."""
    return family if learner_family == SAME else learner_family


def _check_nan_only_where_undefined(
    out: dict[str, np.ndarray], coords: Mapping[str, np.ndarray], static: xr.Dataset
) -> None:
    """NaN is the mark of d > family_dim; anywhere else it is a kernel fault."""
    d = np.asarray(coords["d"])
    dims = static["learner_dim"].transpose("spectrum", "family", "learner_family").values
    defined = d[None, None, None, :] <= dims[:, :, :, None]
    for name, values in out.items():
        if values.dtype.kind != "f" or values.ndim != 6:
            continue
        bad = np.argwhere(np.isnan(values) & defined[:, :, :, :, None, None])
        if bad.size:
            i, j, l, k, t, q = bad[0]
            cell = {
                "spectrum": str(coords["spectrum"][i]),
                "family": str(coords["family"][j]),
                "learner_family": str(coords["learner_family"][l]),
                "d": int(d[k]),
                "T": int(coords["T"][t]),
                "draw": int(coords["draw"][q]),
            }
            raise FloatingPointError(f"{name} is NaN at the defined cell {cell}")


LOG10_2 = float(np.log10(2.0))


def _check_spectrum(value: Any) -> str | None:
    try:
        parse_spectrum(str(value) if isinstance(value, np.str_) else value)
    except SpectrumError as exc:
        return str(exc)
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_d(value: Any) -> str | None:
    if isinstance(value, str) and value == "all":
        return None
    if not _is_int(value) or value < 0:
        return 'must be an integer >= 0 (or "all")'
    return None


def _check_T(value: Any) -> str | None:
    if not _is_int(value) or value < 1:
        return "must be an integer >= 1"
    return None


def _check_draw(value: Any) -> str | None:
    if not _is_int(value) or value < 1:
        return "must be an integer count >= 1"
    return None


def _check_basis(value: Any) -> str | None:
    if value not in BASES:
        return f"must be one of {', '.join(repr(b) for b in BASES)}"
    return None


def _names(axes: Mapping[str, np.ndarray], settings: Settings) -> tuple[list[str], list[str], list[str]]:
    """The checked spectrum, family and learner_family names of a grid."""
    spectra = [str(s) for s in np.asarray(axes["spectrum"], dtype=object).ravel()]
    for s in spectra:
        err = _check_spectrum(s)
        if err:
            raise ConfigError("grid.spectrum", s, err)
    families = [str(f) for f in np.asarray(axes["family"], dtype=object).ravel()]
    for f in families:
        if f not in FAMILIES:
            raise ConfigError("grid.family", f, f"must be one of {', '.join(FAMILIES)}")
    learners = [str(f) for f in np.asarray(axes.get("learner_family", [SAME]), dtype=object).ravel()]
    for f in learners:
        if f not in LEARNER_FAMILIES:
            raise ConfigError("grid.learner_family", f, f"must be one of {', '.join(LEARNER_FAMILIES)}")
    if settings.method == "montecarlo" and any(f != SAME for f in learners):
        bad = next(f for f in learners if f != SAME)
        raise ConfigError("grid.learner_family", bad, 'method = "montecarlo" takes only learner_family = "same"')
    return spectra, families, learners


def _resolve_d(d: np.ndarray, spectra: list[str], families: list[str], learners: list[str]) -> np.ndarray:
    """``d = "all"``: ``0 .. max learner_dim`` over the grid; else the checked integers."""
    if (d.ndim == 0 and d.dtype == object and d.item() == "all") or (
        d.ndim == 0 and d.dtype.kind in "US" and str(d) == "all"
    ):
        dmax = max(
            (
                pm.learner_dimension(parse_spectrum(s), resolved_learner(f, lf))
                for s in spectra
                for f in families
                for lf in learners
            ),
            default=0,
        )
        return np.arange(dmax + 1, dtype=np.int64)
    vals = np.atleast_1d(d).ravel()
    for v in vals:
        if _check_d(v.item() if hasattr(v, "item") else v):
            raise ConfigError("grid.d", v, 'must be integers >= 0 or "all"')
    out: np.ndarray = vals.astype(np.int64)
    return out


class ObservedExperiment(PackageReaders):
    name = "observed"
    package = "pipeline.experiments.observed"
    axes = ("spectrum", "family", "learner_family", "d", "T", "draw")
    axis_rules: Mapping[str, AxisRule] = {
        "spectrum": AxisRule(
            "spectrum", "str", "eigenvalue spectrum of A (docs/theory.md §1.1 notation)", "1", check=_check_spectrum
        ),
        "family": AxisRule("family", "str", "perturbation family", "1", choices=FAMILIES),
        "learner_family": AxisRule(
            "learner_family",
            "str",
            "learner's family (same: the adversary's family)",
            "1",
            choices=LEARNER_FAMILIES,
            default=(SAME,),
        ),
        "d": AxisRule("d", "int", "learner parameter count d", "parameters", check=_check_d),
        "T": AxisRule("T", "int", "horizon T", "steps", check=_check_T),
        "draw": AxisRule("draw", "int", "adversary draw index", "1", check=_check_draw),
    }
    extra_settings: Mapping[str, SettingRule] = {"basis": SettingRule("jordan", _check_basis)}

    # -- configuration -----------------------------------------------------

    def resolve_axes(self, axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
        """Checked, resolved axes: the names, ``d = "all"`` to ``0..max learner_dim``, the
        draw count to indices, ``learner_family`` defaulting to ``same``."""
        out = dict(axes)
        spectra, families, learners = _names(axes, settings)
        out["spectrum"] = str_array(spectra)
        out["family"] = str_array(families)
        out["learner_family"] = str_array(learners)
        out["d"] = _resolve_d(np.asarray(axes["d"]), spectra, families, learners)

        draw = np.atleast_1d(np.asarray(axes["draw"], dtype=object)).ravel()
        if draw.size != 1 or _check_draw(draw[0]):
            value = draw[0] if draw.size == 1 else list(draw)
            raise ConfigError("grid.draw", value, "must be an integer count >= 1")
        out["draw"] = np.arange(int(draw[0]), dtype=np.int64)

        T = np.atleast_1d(np.asarray(axes["T"])).ravel()
        for v in T:
            if _check_T(v.item() if hasattr(v, "item") else v):
                raise ConfigError("grid.T", v, "must be an integer >= 1")
        out["T"] = T.astype(np.int64)
        basis = settings.extra.get("basis", "jordan")
        problem = _check_basis(basis)
        if problem:
            raise ConfigError("basis", basis, problem)
        return out

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        cube = ("spectrum", "family", "learner_family", "d", "T", "draw")
        exact = settings.method != "montecarlo"
        how = "exact" if exact else "Monte Carlo estimate of the"
        out = {
            "risk": VariableSpec(
                cube,
                "best-in-class risk per unit squared perturbation",
                "process-noise variance",
                description=f"{how} r_T(d) = min_phi tr((H - sum phi_i B_i) Sigmabar_T (.)')",
                nan_means=UNDEFINED,
            ),
            "log10_risk": VariableSpec(
                cube,
                "log10 of the best-in-class risk",
                "log10(process-noise variance)",
                description="finite where the risk overflows float64; -inf where it is exactly 0",
                nan_means=UNDEFINED,
            ),
            "kl_rate": VariableSpec(
                cube,
                "KL risk rate (risk / 2)",
                "nats per step",
                nan_means=UNDEFINED,
            ),
            "bounded": VariableSpec(
                ("spectrum", "family", "learner_family", "d", "draw"),
                "best-in-class risk bounded in T",
                "1",
                dtype="bool",
                description="rank test: some phi makes H - sum phi_i B_i vanish on V_u",
            ),
        }
        if not exact:
            out["risk_stderr"] = VariableSpec(
                cube,
                "standard error of the Monte Carlo risk",
                "process-noise variance",
                nan_means=UNDEFINED,
            )
        return out

    # -- static ------------------------------------------------------------

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        import xarray as xr

        seed = int(settings.seed)
        basis = settings.extra.get("basis", "jordan")
        spectra = [str(s) for s in coords["spectrum"]]
        families = [str(f) for f in coords["family"]]
        learners = [str(f) for f in coords["learner_family"]]
        draws = np.asarray(coords["draw"], dtype=np.int64)
        sps = [parse_spectrum(s) for s in spectra]
        nmax = max(sp.n for sp in sps)
        dims = {(i, j): family_dimension(sp, f) for i, sp in enumerate(sps) for j, f in enumerate(families)}
        ldims = {
            (i, k): pm.learner_dimension(sp, lf)
            for i, sp in enumerate(sps)
            for k, lf in enumerate(learners)
            if lf != SAME
        }
        Dmax = max(dims.values(), default=0)
        Lmax = max(ldims.values(), default=0)
        S, Fm, Lm, N = len(sps), len(families), len(learners), len(draws)
        system = np.full((S, nmax, nmax), np.nan)
        pert = np.full((S, Fm, N, nmax, nmax), np.nan)
        lb = np.full((S, Fm, Dmax, nmax, nmax), np.nan)
        lfb = np.full((S, Lm, Lmax, nmax, nmax), np.nan)
        crit = np.zeros((S, Fm, Lm), dtype=np.float64)
        learnable = np.ones((S, Fm, Lm), dtype=bool)
        ldim = np.zeros((S, Fm, Lm), dtype=np.int64)
        fdim = np.zeros((S, Fm), dtype=np.int64)
        for i, sp in enumerate(sps):
            n = sp.n
            system[i, :n, :n] = om.system(sp, basis, seed)
            for j, f in enumerate(families):
                D = dims[i, j]
                fdim[i, j] = D
                pert[i, j, :, :n, :n] = om.perturbations(sp.text, f, seed, draws, basis)
                if D:
                    lb[i, j, :D, :n, :n] = om.learner_basis(sp.text, f, seed, basis)
                for k, lf in enumerate(learners):
                    learner = resolved_learner(f, lf)
                    c = critical_d_theory(sp, f) if learner == f else pm.critical_d(sp, f, learner)
                    learnable[i, j, k] = c is not None
                    crit[i, j, k] = math.inf if c is None else float(c)
                    ldim[i, j, k] = pm.learner_dimension(sp, learner)
            for k, lf in enumerate(learners):
                if lf != SAME and ldims[i, k]:
                    lfb[i, k, : ldims[i, k], :n, :n] = pm.learner_matrices(sp, lf, seed, basis)
        sc = str_array(spectra)
        ds = xr.Dataset(
            {
                "critical_d_theory": (
                    ("spectrum", "family", "learner_family"),
                    crit,
                    {
                        "long_name": "theory critical parameter count (docs/theory.md §1.4, §1.5)",
                        "units": "parameters",
                        "description": "+inf where learnable is False: no d <= learner_dim bounds the risk",
                    },
                ),
                "learnable": (
                    ("spectrum", "family", "learner_family"),
                    learnable,
                    {"long_name": "theory: some d <= learner_dim bounds the risk (docs/theory.md §1.5)", "units": "1"},
                ),
                "learner_dim": (
                    ("spectrum", "family", "learner_family"),
                    ldim,
                    {"long_name": "learner family dimension D_L (largest meaningful d)", "units": "parameters"},
                ),
                "family_dim": (
                    ("spectrum", "family"),
                    fdim,
                    {"long_name": "adversary family dimension D", "units": "1"},
                ),
                "learner_family_basis": (
                    ("spectrum", "learner_family", "learner_component", "row", "col"),
                    lfb,
                    {
                        "long_name": "learner's orthonormal basis B_i of each named learner family (NaN-padded;"
                        " all NaN for same, whose basis is learner_basis of the cell's family)",
                        "units": "1",
                    },
                ),
                "system": (
                    ("spectrum", "row", "col"),
                    system,
                    {"long_name": "system matrix A (NaN-padded)", "units": "1"},
                ),
                "perturbation": (
                    ("spectrum", "family", "draw", "row", "col"),
                    pert,
                    {"long_name": "adversary direction H, unit Frobenius norm (NaN-padded)", "units": "1"},
                ),
                "learner_basis": (
                    ("spectrum", "family", "component", "row", "col"),
                    lb,
                    {"long_name": "learner's orthonormal family basis B_i (NaN-padded)", "units": "1"},
                ),
            },
            coords={
                "spectrum": sc,
                "family": str_array(families),
                "learner_family": str_array(learners),
                "draw": draws,
                "row": np.arange(nmax, dtype=np.int64),
                "col": np.arange(nmax, dtype=np.int64),
                "component": np.arange(Dmax, dtype=np.int64),
                "learner_component": np.arange(Lmax, dtype=np.int64),
                "n": (
                    "spectrum",
                    np.array([sp.n for sp in sps], dtype=np.int64),
                    {"long_name": "state dimension", "units": "1"},
                ),
                "n_unstable": (
                    "spectrum",
                    np.array([sp.n_unstable for sp in sps], dtype=np.int64),
                    {"long_name": "unstable dimension n_u (|eig| >= 1)", "units": "1"},
                ),
                "spectral_radius": (
                    "spectrum",
                    np.array([sp.spectral_radius for sp in sps]),
                    {"long_name": "spectral radius", "units": "1"},
                ),
            },
        )
        for name, attrs in (
            ("spectrum", {"long_name": "eigenvalue spectrum of A (MATH.md 1.1 notation)", "units": "1"}),
            ("family", {"long_name": "perturbation family", "units": "1"}),
            ("draw", {"long_name": "adversary draw index", "units": "1"}),
            ("row", {"long_name": "matrix row", "units": "1"}),
            ("col", {"long_name": "matrix column", "units": "1"}),
            ("component", {"long_name": "learner basis index i - 1", "units": "1"}),
            ("learner_family", {"long_name": "learner's family (same: the adversary's family)", "units": "1"}),
            ("learner_component", {"long_name": "learner family basis index i - 1", "units": "1"}),
        ):
            ds[name].attrs.update(attrs)
        return ds

    # -- kernel --------------------------------------------------------------

    def kernel(self, coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
        seed = int(settings.seed)
        basis = settings.extra.get("basis", "jordan")
        montecarlo = settings.method == "montecarlo"
        spectra = [str(s) for s in coords["spectrum"]]
        families = [str(f) for f in coords["family"]]
        learners = [str(f) for f in coords["learner_family"]]
        dvals = np.asarray(coords["d"], dtype=np.int64)
        Tvals = np.asarray(coords["T"], dtype=np.int64)
        draws = np.asarray(coords["draw"], dtype=np.int64)
        S, Fm, Lm = len(spectra), len(families), len(learners)
        shape = (S, Fm, Lm, len(dvals), len(Tvals), len(draws))
        log2r = np.full(shape, np.nan)
        bnd = np.ones((S, Fm, Lm, len(dvals), len(draws)), dtype=bool)
        risk_mc = np.full(shape, np.nan) if montecarlo else None
        stderr = np.full(shape, np.nan) if montecarlo else None

        for i, text in enumerate(spectra):
            sp = parse_spectrum(text)
            n = sp.n
            st_s = static.sel(spectrum=text)
            A = np.asarray(st_s["system"].values, dtype=float)[:n, :n]
            Q = om.basis_change(sp, basis, seed)
            J = sp.jordan_matrix()
            if not np.allclose(Q @ J @ Q.T, A, rtol=0, atol=1e-12 * max(1.0, np.abs(J).max())):
                raise ValueError(f"static system of {text!r} does not match basis {basis!r}")
            for j, fam in enumerate(families):
                st = st_s.sel(family=fam)
                D = int(st["family_dim"].values)
                B = np.asarray(st["learner_basis"].values, dtype=float)[:D, :n, :n]
                H = np.asarray(st["perturbation"].sel(draw=draws).values, dtype=float)[:, :n, :n]
                for k, lf in enumerate(learners):
                    learner = resolved_learner(fam, lf)
                    if learner == fam:  # the adversary's own family: MATH section 1.3, as before the axis
                        self._same_cells(
                            (i, j, k),
                            text,
                            fam,
                            B,
                            H,
                            Q,
                            A,
                            (dvals, Tvals, draws),
                            settings,
                            log2r,
                            bnd,
                            risk_mc,
                            stderr,
                        )
                        continue
                    DL = int(st["learner_dim"].sel(learner_family=lf).values)
                    BL = np.asarray(st_s["learner_family_basis"].sel(learner_family=lf).values, dtype=float)
                    cp = pm.cross_problem(sp, fam, learner, BL[:DL, :n, :n], H, Q)
                    valid = dvals <= DL
                    dsel = np.where(valid, dvals, 0)
                    bnd[i, j, k] = np.where(valid[:, None], pm.cross_bounded(cp)[dsel], True)
                    for t, T in enumerate(Tvals):
                        lr = pm.cross_log2_risk(cp, int(T))  # (N, DL+1)
                        log2r[i, j, k, :, t, :] = np.where(valid[:, None], lr[:, dsel].T, np.nan)

        out: dict[str, np.ndarray] = {"bounded": bnd}
        if risk_mc is not None and stderr is not None:
            risk = risk_mc
            with np.errstate(divide="ignore"):
                log10 = np.log10(risk)
            out["risk_stderr"] = stderr
        else:
            with np.errstate(over="ignore"):
                risk = np.exp2(log2r)
            log10 = log2r * LOG10_2
        out["risk"] = risk
        out["log10_risk"] = log10
        out["kl_rate"] = np.asarray(risk / 2.0)
        _check_nan_only_where_undefined(out, coords, static)
        return out

    @staticmethod
    def _same_cells(
        at: tuple[int, int, int],
        text: str,
        fam: str,
        B: np.ndarray,
        H: np.ndarray,
        Q: np.ndarray,
        A: np.ndarray,
        axes: tuple[np.ndarray, np.ndarray, np.ndarray],
        settings: Settings,
        log2r: np.ndarray,
        bnd: np.ndarray,
        risk_mc: np.ndarray | None,
        stderr: np.ndarray | None,
    ) -> None:
        """Fill the cells of one (spectrum, family, learner_family) whose learner is the
        adversary's family (MATH section 1.3): the learner basis ``B`` (D, n, n) and the
        draws ``H`` (N, n, n) as stored, ``Q`` (n, n) the basis change of ``A`` (n, n)."""
        i, j, k = at
        dvals, Tvals, draws = axes
        seed = int(settings.seed)
        n = A.shape[0]
        D = B.shape[0]
        prob = om.problem_from_matrices(text, fam, B, H, Q)
        valid = dvals <= D
        dsel = np.where(valid, dvals, 0)
        bt = om.bounded(prob)  # (D+1, N)
        bnd[i, j, k] = np.where(valid[:, None], bt[dsel], True)
        for t, T in enumerate(Tvals):
            fac = om.risk_factor(text, fam, prob.P, int(T))
            lr = om.log2_risk(fac, prob.Pinv, prob.h)  # (N, D+1)
            log2r[i, j, k, :, t, :] = np.where(valid[:, None], lr[:, dsel].T, np.nan)
            if risk_mc is not None and stderr is not None:
                for q, dr in enumerate(draws):
                    deltas = _deltas(fac, prob, B, q, n)
                    rng = cell_rng(seed, "observed.montecarlo", text, fam, int(dr), int(T))
                    mean, se = om.montecarlo_risk(A, deltas, int(T), int(settings.mc_samples), rng)
                    risk_mc[i, j, k, :, t, q] = np.where(valid, mean[dsel], np.nan)
                    stderr[i, j, k, :, t, q] = np.where(valid, se[dsel], np.nan)

    def estimate_seconds(self, coords: Mapping[str, np.ndarray], settings: Settings) -> float:
        """One exact factorisation per (spectrum, family, learner_family, T), shared by every d and draw
        (~0.05 s + 7e-9 D^3 s in the fast kernel, D the learner's dimension: measured 0.19 s at
        D = 128, 1.0 s at D = 512, ~10 s at D = 1024), plus ~10 us per cell;
        Monte Carlo simulates D + 1 residuals per draw over T steps (~5 ns per sample, step and
        matrix entry)."""
        total = 1e-3
        families = [str(f) for f in coords["family"]]
        learners = [str(f) for f in coords.get("learner_family", [SAME])]
        cells_per = len(coords["d"]) * len(coords["draw"])
        for text in coords["spectrum"]:
            sp = parse_spectrum(str(text))
            for family in families:
                for lf in learners:
                    D = pm.learner_dimension(sp, resolved_learner(family, lf))
                    if settings.method == "montecarlo":
                        steps = float(np.sum(coords["T"]))
                        total += 5e-9 * settings.mc_samples * steps * (D + 1) * sp.n**2 * len(coords["draw"])
                    else:
                        total += len(coords["T"]) * (0.05 + 7e-9 * D**3 + 1e-5 * cells_per)
        return total

    def adapt(self, ds: xr.Dataset) -> xr.Dataset:
        """Cubes of the first format stored the theory d* as ``critical_d``; cubes from
        before the ``learner_family`` axis read as ``learner_family = same``."""
        from pipeline.experiments.observed.thresholds import with_learner_axis

        if "critical_d" in ds and "critical_d_theory" not in ds:
            ds = ds.rename_vars({"critical_d": "critical_d_theory"})
        return with_learner_axis(ds)

    def figures(self, ds: xr.Dataset, th: xr.Dataset, tau: float) -> list[DrawnFigure]:
        """Every figure of the cube (no ``k*`` here: ``tau`` is not used)."""
        return list(self._module("figures").figures(ds, th))


def _deltas(fac, prob, B: np.ndarray, q: int, n: int) -> np.ndarray:
    D = prob.D
    out = np.zeros((D + 1, n, n))
    if D == 0:
        return out
    h = prob.h[q : q + 1]
    for d in range(D + 1):
        c = om.best_coefficients(fac, prob.Pinv, h, d)[0]
        out[d] = np.einsum("i,ikl->kl", c, B)
    return out


OBSERVED = ObservedExperiment()
