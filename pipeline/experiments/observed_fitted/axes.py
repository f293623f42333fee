"""The fitted observed experiment's grid: axes, their rules and resolution, and its settings.

Selected by ``experiment = "observed"`` with ``fit = "least_squares"`` (MATH.md section 6.1).
``nominal = "zero"`` learns ``A`` from nothing: ``family`` is then ``"none"`` and ``draw``
one (their defaults); ``nominal = "perturbed"`` starts from ``A - H``, ``H`` the adversary
of section 1.3 drawn from ``family``. ``trajectories`` is ``m``; ``fits`` (grid key) is a
count of independent training sets, the dim ``fit`` (0 .. fits - 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.types import AxisRule, SettingRule, Settings
from pipeline.experiments.base import str_array
from pipeline.models.fitted.problem import LEARNERS, NOMINALS
from pipeline.models.parametrisation import learner_dimension
from pipeline.models.spectra import FAMILIES, SpectrumError, parse_spectrum

AXES = ("spectrum", "family", "draw", "learner_family", "d", "T", "trajectories", "fit")
BASES = ("jordan", "random")
NO_ADVERSARY = "none"
UNDEFINED = "d > learner_dim (no learner with that many parameters)"
FIT = "least_squares"


def learner_dim(spectrum: str, learner: str) -> int:
    """The dimension ``D`` of a learner family for ``spectrum`` (``leading``: ``n^2``)."""
    sp = parse_spectrum(spectrum)
    return sp.n * sp.n if learner == "leading" else int(learner_dimension(sp, learner))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_spectrum(value: Any) -> str | None:
    try:
        parse_spectrum(str(value))
    except SpectrumError as exc:
        return str(exc)
    return None


def _check_int(minimum: int) -> Any:
    def check(value: Any) -> str | None:
        return None if _is_int(value) and value >= minimum else f"must be an integer >= {minimum}"

    return check


def _check_d(value: Any) -> str | None:
    if isinstance(value, str) and value == "all":
        return None
    return _check_int(0)(value)


def _check_family(value: Any) -> str | None:
    allowed = (NO_ADVERSARY, *FAMILIES)
    return None if value in allowed else f"must be one of {', '.join(allowed)}"


def _choice(allowed: tuple[str, ...]) -> Any:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(repr(a) for a in allowed)}"

    return check


AXIS_RULES: Mapping[str, AxisRule] = {
    "spectrum": AxisRule(
        "spectrum", "str", "eigenvalue spectrum of A (docs/theory.md §1.1 notation)", "1", check=_check_spectrum
    ),
    "family": AxisRule(
        "family",
        "str",
        "adversary's perturbation family (none: nominal = zero)",
        "1",
        check=_check_family,
        default=(NO_ADVERSARY,),
    ),
    "draw": AxisRule("draw", "int", "adversary draw index", "1", check=_check_int(1), default=(1,)),
    "learner_family": AxisRule("learner_family", "str", "learner's family", "1", choices=LEARNERS),
    "d": AxisRule("d", "int", "learner parameter count d", "parameters", check=_check_d),
    "T": AxisRule("T", "int", "horizon T (steps per trajectory)", "steps", check=_check_int(1)),
    "trajectories": AxisRule(
        "trajectories", "int", "trajectories per training set m", "trajectories", check=_check_int(1)
    ),
    "fit": AxisRule("fit", "int", "training set index", "1", check=_check_int(1), key="fits"),
}
EXTRA_SETTINGS: Mapping[str, SettingRule] = {
    "fit": SettingRule(FIT, _choice((FIT,))),
    "nominal": SettingRule("zero", _choice(NOMINALS)),
    "basis": SettingRule("jordan", _choice(BASES)),
}


def _strings(axes: Mapping[str, np.ndarray], axis: str) -> list[str]:
    return [str(v) for v in np.atleast_1d(np.asarray(axes[axis], dtype=object)).ravel()]


def _count(axes: Mapping[str, np.ndarray], axis: str) -> np.ndarray:
    key = AXIS_RULES[axis].grid_key
    raw = np.atleast_1d(np.asarray(axes[axis], dtype=object)).ravel()
    if raw.size != 1 or not _is_int(raw[0]) or raw[0] < 1:
        raise ConfigError(f"grid.{key}", raw[0] if raw.size == 1 else list(raw), "must be an integer count >= 1")
    return np.arange(int(raw[0]), dtype=np.int64)


def _increasing(axes: Mapping[str, np.ndarray], axis: str, minimum: int) -> np.ndarray:
    vals = np.atleast_1d(np.asarray(axes[axis])).ravel()
    for v in vals:
        if not _is_int(v.item() if hasattr(v, "item") else v) or v < minimum:
            raise ConfigError(f"grid.{axis}", v, f"must be integers >= {minimum}")
    out = vals.astype(np.int64)
    if np.any(np.diff(out) <= 0):
        raise ConfigError(f"grid.{axis}", out.tolist(), "must be strictly increasing")
    return out


def resolve_axes(axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
    """Checked, resolved axes: ``d = "all"`` to ``0 .. max learner_dim``, the counts ``draw``
    and ``fits`` to indices; ``family`` must be ``none`` exactly when ``nominal = "zero"``."""
    nominal = settings.extra.get("nominal", "zero")
    spectra = _strings(axes, "spectrum")
    for s in spectra:
        err = _check_spectrum(s)
        if err:
            raise ConfigError("grid.spectrum", s, err)
    families = _strings(axes, "family")
    learners = _strings(axes, "learner_family")
    for f in families:
        if nominal == "zero" and f != NO_ADVERSARY:
            raise ConfigError("grid.family", f, 'nominal = "zero" has no adversary: leave family out (or "none")')
        if nominal == "perturbed" and f not in FAMILIES:
            raise ConfigError("grid.family", f, f'nominal = "perturbed" needs one of {", ".join(FAMILIES)}')
    for lf in learners:
        if lf not in LEARNERS:
            raise ConfigError("grid.learner_family", lf, f"must be one of {', '.join(LEARNERS)}")
    out = dict(axes)
    out["spectrum"] = str_array(spectra)
    out["family"] = str_array(families)
    out["learner_family"] = str_array(learners)
    out["draw"] = _count(axes, "draw")
    if nominal == "zero" and out["draw"].size != 1:
        raise ConfigError("grid.draw", int(out["draw"].size), 'nominal = "zero" has no adversary: leave draw out')
    out["fit"] = _count(axes, "fit")
    d = np.asarray(axes["d"])
    if d.ndim == 0 and str(d.item() if d.dtype == object else d) == "all":
        dmax = max(learner_dim(s, lf) for s in spectra for lf in learners)
        out["d"] = np.arange(dmax + 1, dtype=np.int64)
    else:
        out["d"] = _increasing(axes, "d", 0)
    out["T"] = _increasing(axes, "T", 1)
    out["trajectories"] = _increasing(axes, "trajectories", 1)
    return out
