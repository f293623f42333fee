"""The observed experiment's grid: its axes, their rules and their resolution (``d = "all"``,
the draw count, the learner families), and the ``basis`` setting.

``family`` is the adversary's family (MATH section 1.3); ``learner_family`` the family the
learner's basis spans (MATH section 1.5): ``same`` (the default, the cell's ``family``),
``block``, ``full``, ``similarity`` or ``diagonal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.types import AxisRule, SettingRule, Settings
from pipeline.experiments.base import str_array
from pipeline.experiments.simulated_range import STATE_BOUND, check_simulated_range
from pipeline.models import parametrisation as pm
from pipeline.models.spectra import FAMILIES, SpectrumError, parse_spectrum

AXES = ("spectrum", "family", "learner_family", "d", "T", "draw")
BASES = ("jordan", "random")
UNDEFINED = "d > learner_dim (no learner with that many parameters)"
SAME = "same"
LEARNER_FAMILIES = (SAME, *pm.LEARNER_FAMILIES)


def resolved_learner(family: str, learner_family: str) -> str:
    """The learner's family of a cell: ``learner_family``, or ``family`` for ``same``."""
    return family if learner_family == SAME else learner_family


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


AXIS_RULES: Mapping[str, AxisRule] = {
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


def _check_fit(value: Any) -> str | None:
    if value != "best":
        return "must be 'best' (the best learner of a class) or 'least_squares' (fitted to data)"
    return None


EXTRA_SETTINGS: Mapping[str, SettingRule] = {
    "basis": SettingRule("jordan", _check_basis),
    "fit": SettingRule("best", _check_fit, recorded_at_default=False),
}


def resolve_axes(axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
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
    if settings.method == "montecarlo":  # x_0 = 0; an orthogonal basis change keeps the norm
        systems = ((f"spectrum {s!r}", parse_spectrum(s).jordan_matrix(), None) for s in spectra)
        check_simulated_range(systems, out["T"], STATE_BOUND, "squares and sums of states stay finite")
    return out
