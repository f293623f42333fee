"""The seam between the engine and an experiment.

The engine knows only this interface: axis rules to validate a grid, static
variables computed once on the driver, and a pure block kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

AxisKind = Literal["float", "int", "str"]


@dataclass(frozen=True)
class AxisRule:
    """How one grid axis is typed and checked.

    ``check`` returns None for an allowed value, or the text of the rule it
    breaks ("must be >= 1"). ``choices`` restricts string axes.
    """

    name: str
    kind: AxisKind
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class VariableSpec:
    """A result variable of the cube: its dims (a subset of the cube's), dtype and attrs."""

    dims: tuple[str, ...]
    long_name: str
    units: str
    dtype: str = "float64"
    description: str = ""
    nan_means: str = ""
    """If non-empty, NaN is a legitimate value with this meaning (e.g. "d > family_dim");
    otherwise a NaN from the kernel fails the block."""


@dataclass(frozen=True)
class Settings:
    """Workflow settings that are not grid axes (what a kernel may read)."""

    experiment: str
    name: str
    seed: int = 0
    method: str = "exact"
    mc_samples: int = 1000
    extra: Mapping[str, Any] = field(default_factory=dict)


class Experiment(Protocol):
    name: str
    axes: tuple[str, ...]
    axis_rules: Mapping[str, AxisRule]
    # Extra top-level workflow keys: key -> (default, checker returning error text or None)
    extra_settings: Mapping[str, tuple[Any, Callable[[Any], str | None]]]

    def resolve_axes(
        self, axes: dict[str, np.ndarray], settings: Settings
    ) -> dict[str, np.ndarray]:
        """Turn raw axis values into final coordinates (e.g. ``d = "all"``).

        Raises ConfigError for values that only the experiment can judge.
        """
        ...

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        """Variables the block kernel returns, by name."""
        ...

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        """Variables that depend on no blocked work (computed once, on the driver).

        May add non-dimension coordinates. Its dims are cube axes plus extra dims.
        """
        ...

    def kernel(
        self,
        coords: Mapping[str, np.ndarray],
        static: xr.Dataset,
        settings: Settings,
    ) -> dict[str, np.ndarray]:
        """Compute one block.

        ``coords`` holds the block's 1-D coordinate values per axis; ``static`` is the
        static dataset restricted to the block's coordinates. Returns, for every
        variable of ``variables()``, an array shaped by that variable's dims over the
        block. Must be pure: the same cell gives the same bits in any block.
        """
        ...
