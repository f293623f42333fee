"""The experiment seam: what an experiment tells the engine and every reader.

An experiment owns its whole story: the axes of its grid and their rules, its result
variables, the static part of its cube, the block kernel (workers), and, for the
readers, its thresholds (measured beside theory), their table and disagreements,
its figures and its summary lines. The engine and the readers know experiments only
through this interface and the registry (``pipeline.experiments``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from pipeline.core.types import AxisRule, SettingRule, Settings, VariableSpec

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

DEFAULT_TAUS = (1.0, 0.1, 0.01)
DEFAULT_GROWTH_TOL = 0.5


@dataclass(frozen=True)
class ThresholdOptions:
    """Levels ``tau`` for ``k*`` and the growth exponent below which a risk counts as bounded."""

    taus: tuple[float, ...] = DEFAULT_TAUS
    growth_tol: float = DEFAULT_GROWTH_TOL
    taus_given: bool = False
    """The levels were asked for (``--tau``), not defaulted: a one-cube reader refuses them for
    an experiment without levels rather than ignoring them."""


@dataclass(frozen=True)
class DrawnFigure:
    """One figure of a cube: ``stem`` names its files (unique within the cube's figures)."""

    stem: str
    title: str
    caption: str
    figure: Figure


@runtime_checkable
class Experiment(Protocol):
    """What an experiment declares and does; the registry returns objects of this type and
    mypy checks every adapter against it (each adapter module annotates its instance with it).

    The engine and the readers assume nothing about a cube beyond what is declared here:
    the axes (the cube's dims, blocked by the engine), the methods the kernel implements,
    the horizon axis along which growth is read, and the thresholds' risk levels.
    """

    @property
    def name(self) -> str:
        """Registry key; stored in the cube's ``experiment`` attribute."""
        ...

    @property
    def axes(self) -> tuple[str, ...]:
        """The grid's axes, in the cube's dim order (every result variable's dims are among them)."""
        ...

    @property
    def axis_rules(self) -> Mapping[str, AxisRule]:
        """How each axis is typed, checked and described (one rule per axis)."""
        ...

    @property
    def extra_settings(self) -> Mapping[str, SettingRule]:
        """Extra top-level workflow keys (e.g. ``basis``)."""
        ...

    @property
    def methods(self) -> tuple[str, ...]:
        """The workflow ``method`` values the kernel implements (``exact``, ``montecarlo``); a
        workflow asking for another is refused before anything is written."""
        ...

    @property
    def horizon(self) -> str:
        """The axis of horizons ``T`` along which growth is read: thresholds and the summary
        need two or more of its values."""
        ...

    @property
    def levels(self) -> str | None:
        """The coordinate of the thresholds holding the risk levels ``tau`` that ``--tau``
        chooses among (figures draw ``k*`` at one of them), or None: no levels."""
        ...

    def example_workflow(self, method: str) -> str:
        """TOML text of a tiny workflow of this experiment with ``method`` (one of ``methods``):
        every axis, two or more horizons, a second of work or so. The test every experiment
        passes (``tests/experiments/test_every_experiment.py``) runs it."""
        ...

    # -- the grid and the cube ------------------------------------------------

    def resolve_axes(self, axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
        """Turn raw axis values into final coordinates (e.g. ``d = "all"``); ConfigError
        for values only the experiment can judge."""
        ...

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        """Variables the block kernel returns, by name."""
        ...

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        """Variables that depend on no blocked work (computed once, on the driver)."""
        ...

    def kernel(self, coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
        """Compute one block: ``coords`` holds the block's 1-D coordinates per axis, ``static``
        the static dataset restricted to them. Returns every variable of ``variables()``
        shaped by its dims over the block. Pure: a cell's bits never depend on the block."""
        ...

    def estimate_seconds(self, coords: Mapping[str, np.ndarray], settings: Settings) -> float:
        """Estimated seconds (one core) of one kernel call on a rectangle of the grid given by
        its coordinates: block sizing, and ``emergence run --dry-run`` (which adds the
        engine's own cost per task). Work the cells of a call share counts once per call."""
        ...

    def adapt(self, ds: xr.Dataset) -> xr.Dataset:
        """A cube of an older format in today's layout (readers call it on open)."""
        ...

    # -- reading ---------------------------------------------------------------

    def thresholds(self, ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
        """Every extracted value beside its theory. Variables derived from result cells carry
        ``attrs["role"] = "measured"``; theory and static ones ``"theory"``/``"static"``."""
        ...

    def table(self, th: xr.Dataset) -> list[str]:
        """Lines of a readable table of ``th``, theory beside every value."""
        ...

    def disagreements(self, th: xr.Dataset) -> list[str]:
        """One line per extracted value that misses its theory beyond the documented tolerance."""
        ...

    def summary(self, ds: xr.Dataset, th: xr.Dataset) -> list[str]:
        """A few lines on what the cube shows."""
        ...

    def figures(self, ds: xr.Dataset, th: xr.Dataset, tau: float | None) -> list[DrawnFigure]:
        """Every figure of the cube; ``tau`` is one of the thresholds' ``levels`` (None
        where the experiment has none)."""
        ...


# -- pieces the experiments share ----------------------------------------------


def positive(v: float) -> str | None:
    """Axis check: ``v > 0``."""
    return None if v > 0 else "must be > 0"


def at_least_one(v: int) -> str | None:
    """Axis check: an integer ``>= 1``."""
    return None if v >= 1 else "must be an integer >= 1"


def _check_best_fit(value: Any) -> str | None:
    if value != "best":
        return "must be 'best' (the exact best learner of a class) or 'least_squares' (fitted to data)"
    return None


BEST_FIT = SettingRule("best", _check_best_fit, recorded_at_default=False)
"""The top-level ``fit`` key of an experiment of best learners: ``"best"`` (its default, left out
of the settings so older fingerprints stand); ``fit = "least_squares"`` selects the fitted
variant (``pipeline.experiments._VARIANTS``) before this rule is read."""


def str_array(values: Iterable[Any]) -> np.ndarray:
    """A 1-D object array of ``str`` (string coordinates of any length)."""
    items = [str(v) for v in values]
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


class PackageReaders:
    """The reading half of :class:`Experiment`, delegated to the experiment's own modules
    ``<package>.thresholds``, ``.report`` and ``.figures``, each imported when first read (the
    engine and the workers import only the adapter). ``adapt`` keeps a cube as it is."""

    package: str
    """The experiment's package, e.g. ``"pipeline.experiments.hidden"``."""

    def _module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{self.package}.{name}")

    def adapt(self, ds: xr.Dataset) -> xr.Dataset:
        return ds

    def thresholds(self, ds: xr.Dataset, options: ThresholdOptions) -> xr.Dataset:
        out: xr.Dataset = self._module("thresholds").thresholds(ds, options)
        return out

    def table(self, th: xr.Dataset) -> list[str]:
        return list(self._module("report").table(th))

    def disagreements(self, th: xr.Dataset) -> list[str]:
        return list(self._module("report").disagreements(th))

    def summary(self, ds: xr.Dataset, th: xr.Dataset) -> list[str]:
        return list(self._module("report").summary(ds, th))

    def figures(self, ds: xr.Dataset, th: xr.Dataset, tau: float | None) -> list[DrawnFigure]:
        return list(self._module("figures").figures(ds, th, tau))
