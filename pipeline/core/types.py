"""Neutral types shared by the configuration, the store, the engine and the experiments.

Nothing here knows an experiment: an experiment describes itself with these types,
and every other module reads those descriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PARTIAL_ATTR = "emergence_partial"
"""Attribute of a dataset read from an unfinished cube (``"partial: 6/16 blocks"``); every
output drawn from it carries it on."""
BLOCKS_ATTR = "emergence_blocks_done"
"""Attribute set by ``cubes.open_cube``: ``"done/total"`` blocks."""
COMPUTED = "computed"
"""Boolean over a partial cube's axes: the cells of finished blocks."""

AxisKind = Literal["float", "int", "str"]
Check = Callable[[Any], "str | None"]
"""A rule: returns None for an allowed value, or the text of the rule it breaks ("must be >= 1")."""


@dataclass(frozen=True)
class AxisRule:
    """How one grid axis is typed, checked and described.

    ``check`` returns None for an allowed value, or the rule it breaks; ``choices``
    restricts string axes. ``long_name`` and ``units`` become the coordinate's
    attributes in the cube (so plain xarray plots label their axes).
    """

    name: str
    kind: AxisKind
    long_name: str
    units: str
    check: Check | None = None
    choices: tuple[str, ...] | None = None
    default: tuple[Any, ...] | None = None
    """Values the axis takes when a workflow's ``[grid]`` leaves it out (None: required)."""
    key: str | None = None
    """The axis's key in a workflow's ``[grid]`` when it differs from its name (e.g. a count
    ``fits = 20`` giving the dim ``fit``); None: the name."""

    @property
    def grid_key(self) -> str:
        """The key naming this axis in a workflow's ``[grid]``."""
        return self.key or self.name


@dataclass(frozen=True)
class VariableSpec:
    """A result variable of the cube: its dims, dtype and attrs.

    ``dims`` are cube axes (blocked like the grid), possibly followed by inner dims: dims
    that are no grid axis (e.g. the index of a fitted parameter), each a coordinate of the
    experiment's static part, whole in every block."""

    dims: tuple[str, ...]
    long_name: str
    units: str
    dtype: str = "float64"
    description: str = ""
    nan_means: str = ""
    """If non-empty, NaN is a legitimate value with this meaning (e.g. "d > family_dim");
    otherwise a NaN from the kernel fails the block."""


@dataclass(frozen=True)
class SettingRule:
    """A top-level workflow key an experiment adds (e.g. ``basis``): default and check."""

    default: Any
    check: Check
    recorded_at_default: bool = True
    """False for a key added after cubes of the experiment exist (e.g. ``fit = "best"``): at
    its default it is left out of the settings, so the fingerprint of every workflow that
    does not change it stays what it was (``Settings.extra.get(key, default)`` reads it)."""


@dataclass(frozen=True)
class Settings:
    """Workflow settings that are not grid axes (what a kernel may read)."""

    experiment: str
    name: str
    seed: int = 0
    method: str = "exact"
    mc_samples: int = 1000
    extra: Mapping[str, Any] = field(default_factory=dict)
