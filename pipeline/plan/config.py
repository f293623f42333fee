"""TOML workflow -> validated Workflow. Every error names the key, the value and the rule."""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError, UsageError
from pipeline.core.types import AxisRule, Settings
from pipeline.driver.cluster import ClusterSpec, cluster_spec
from pipeline.experiments import get_experiment, known_experiments, resolve_experiment
from pipeline.experiments.base import Experiment
from pipeline.plan.grid import TASK_SECONDS, BlockPlan, geom_axis, linspace_axis, plan_blocks, range_axis

DEFAULT_MAX_CELLS = 10**9
METHODS = ("exact", "montecarlo")
"""Every ``method`` the tool knows; an experiment implements some of them (``Experiment.methods``)."""
BLOCKS_PER_TASK = "blocks_per_task"
"""``[chunks] blocks_per_task = N``: at most N blocks per task (default: as cheap blocks need)."""
TASK_SECONDS_KEY = "task_seconds"
"""``[chunks] task_seconds = S``: cheap blocks are grouped into tasks of about S seconds of
estimated work (default ``grid.TASK_SECONDS``; larger suits clusters of hundreds of workers)."""
MAX_TASK_SECONDS = 3600.0
COMMON_KEYS = ("experiment", "name", "seed", "method", "mc_samples", "grid", "chunks", "cluster")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: settings, final coordinates per axis, the block plan and
    the (validated) ``[cluster]`` table."""

    settings: Settings
    coords: dict[str, np.ndarray]
    plan: BlockPlan
    text: str
    cluster: ClusterSpec
    source: str = ""
    """The workflow file it was read from ("" for text)."""

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def experiment(self) -> str:
        return self.settings.experiment

    @cached_property
    def fingerprint(self) -> str:
        """Hash of what determines the cube's numbers (not comments, spacing or chunking),
        computed once per Workflow (it is immutable).

        Chunking is left out because results are bit-identical whatever the chunking;
        a store keeps the block plan it was created with.
        """
        return _digest(self._determining() | {"axes": {k: _jsonable(v) for k, v in self.coords.items()}})

    @cached_property
    def base_fingerprint(self) -> str:
        """``fingerprint`` without the axis values, which is what may change when a sweep
        is extended."""
        return _digest(self._determining())

    def _determining(self) -> dict[str, Any]:
        return {
            "experiment": self.settings.experiment,
            "seed": self.settings.seed,
            "method": self.settings.method,
            "mc_samples": self.settings.mc_samples if self.settings.method == "montecarlo" else None,
            "extra": dict(sorted(self.settings.extra.items())),
        }


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(values: np.ndarray) -> list[Any]:
    if values.dtype.kind == "f":
        return [float(v).hex() for v in values]
    return [v.item() if hasattr(v, "item") else v for v in values]


def load_workflow(path: str | Path, max_cells: int = DEFAULT_MAX_CELLS) -> Workflow:
    """Read and validate a workflow file. Raises UsageError/ConfigError (exit code 2)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"workflow file {str(path)!r} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UsageError(f"workflow file {str(path)!r} cannot be read: {exc}") from None
    return parse_workflow(text, max_cells=max_cells, source=str(path))


def parse_workflow(text: str, max_cells: int = DEFAULT_MAX_CELLS, source: str = "<workflow>") -> Workflow:
    """Validate workflow TOML text; see ``load_workflow``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: TOML syntax error: {exc}") from None
    experiment = _experiment(raw)
    settings = _settings(raw, experiment)
    coords = _coords(raw, experiment, settings)
    chunks, max_blocks_per_task, task_seconds = _chunks(raw, experiment)
    cluster = raw.get("cluster", {})
    if not isinstance(cluster, dict):
        raise ConfigError("cluster", cluster, "must be a table (see README, Running on a cluster)")
    spec = cluster_spec(cluster)
    shape = tuple(len(coords[a]) for a in experiment.axes)
    _check_size(experiment.axes, shape, max_cells)

    def estimate(region: Mapping[str, slice]) -> float:
        return experiment.estimate_seconds({a: coords[a][sl] for a, sl in region.items()}, settings)

    plan = plan_blocks(experiment.axes, shape, chunks, estimate, max_blocks_per_task, task_seconds=task_seconds)
    return Workflow(
        settings=settings,
        coords=coords,
        plan=plan,
        text=text,
        cluster=spec,
        source="" if source == "<workflow>" else source,
    )


def _experiment(raw: Mapping[str, Any]) -> Experiment:
    """The workflow's experiment, after checking every top-level key is one it allows."""
    experiment_name = raw.get("experiment")
    if experiment_name is None:
        raise ConfigError("experiment", None, f"is required: one of {known_experiments()}")
    if not isinstance(experiment_name, str) or experiment_name not in known_experiments():
        raise ConfigError("experiment", experiment_name, f"must be one of {known_experiments()}")
    experiment = get_experiment(resolve_experiment(experiment_name, raw))
    allowed = set(COMMON_KEYS) | set(experiment.extra_settings)
    for key in raw:
        if key not in allowed:
            raise ConfigError(key, raw[key], f"unknown key; allowed top-level keys are {sorted(allowed)}")
    return experiment


def _settings(raw: Mapping[str, Any], experiment: Experiment) -> Settings:
    """The scalar settings: name, seed, method, Monte Carlo samples and the experiment's own keys."""
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError("name", name, "must be a non-empty string of letters, digits, '_', '-' or '.'")
    seed = _integer(raw, "seed", 0, minimum=0)
    method = raw.get("method", "exact")
    if method not in METHODS:
        raise ConfigError("method", method, f"must be one of {list(experiment.methods)}")
    if method not in experiment.methods:
        offered = list(experiment.methods)
        raise ConfigError("method", method, f"the {experiment.name} experiment has no such method; it offers {offered}")
    mc_samples = _integer(raw, "mc_samples", 1000, minimum=2)
    extra: dict[str, Any] = {}
    for key, rule in experiment.extra_settings.items():
        value = raw.get(key, rule.default)
        problem = rule.check(value)
        if problem:
            raise ConfigError(key, value, problem)
        if rule.recorded_at_default or value != rule.default:
            extra[key] = value
    return Settings(
        experiment=experiment.name,
        name=name,
        seed=seed,
        method=method,
        mc_samples=mc_samples,
        extra=extra,
    )


def _coords(raw: Mapping[str, Any], experiment: Experiment, settings: Settings) -> dict[str, np.ndarray]:
    """The ``[grid]`` table parsed, checked and resolved by the experiment into 1-D coordinates."""
    grid = raw.get("grid")
    if not isinstance(grid, dict):
        raise ConfigError("grid", grid, f"must be a table with the axes {list(experiment.axes)}")
    keys = {experiment.axis_rules[a].grid_key: a for a in experiment.axes}
    for key in grid:
        if key not in keys:
            raise ConfigError(f"grid.{key}", grid[key], f"unknown axis; axes are {list(keys)}")
    raw_axes: dict[str, np.ndarray] = {}
    for key, axis in keys.items():
        default = experiment.axis_rules[axis].default
        if key not in grid and default is None:
            raise ConfigError(f"grid.{key}", None, "is required: a list, or a geom/linspace/range table")
        value = grid[key] if key in grid else list(default or ())
        raw_axes[axis] = parse_axis(f"grid.{key}", value, experiment.axis_rules[axis])
        if raw_axes[axis].ndim == 1:
            _check_values(f"grid.{key}", raw_axes[axis], experiment.axis_rules[axis])
    coords = experiment.resolve_axes(raw_axes, settings)
    for axis in experiment.axes:
        _check_values(f"grid.{experiment.axis_rules[axis].grid_key}", coords[axis], rule=None)
    return coords


def _chunks(raw: Mapping[str, Any], experiment: Experiment) -> tuple[dict[str, int], int | None, float]:
    """The ``[chunks]`` table: cells per block along named axes, the optional blocks per task
    and the seconds of estimated work per task."""
    chunks_raw = raw.get("chunks", {})
    if not isinstance(chunks_raw, dict):
        raise ConfigError("chunks", chunks_raw, "must be a table of axis = cells per block")
    chunks: dict[str, int] = {}
    max_blocks_per_task = None
    task_seconds = TASK_SECONDS
    for key, value in chunks_raw.items():
        if key == TASK_SECONDS_KEY:
            task_seconds = _task_seconds(value)
            continue
        if key != BLOCKS_PER_TASK and key not in experiment.axes:
            raise ConfigError(
                f"chunks.{key}",
                value,
                f"unknown axis; axes are {list(experiment.axes)} (or {BLOCKS_PER_TASK}, {TASK_SECONDS_KEY})",
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"chunks.{key}", value, "must be an integer >= 1")
        if key == BLOCKS_PER_TASK:
            max_blocks_per_task = value
        else:
            chunks[key] = value
    return chunks, max_blocks_per_task, task_seconds


def _task_seconds(value: object) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= MAX_TASK_SECONDS
    if not ok:
        raise ConfigError(
            f"chunks.{TASK_SECONDS_KEY}", value, f"must be a number of seconds > 0 and <= {MAX_TASK_SECONDS:g}"
        )
    return float(value)  # type: ignore[arg-type]


def _check_size(axes: Sequence[str], shape: tuple[int, ...], max_cells: int) -> None:
    """Refuse a grid of more than ``max_cells`` cells, naming its shape."""
    cells = math.prod(shape)
    if cells > max_cells:
        dims = " x ".join(f"{a}={n}" for a, n in zip(axes, shape, strict=True))
        raise ConfigError(
            "grid",
            f"{cells:,} cells ({dims})",
            f"exceeds --max-cells {max_cells:,}; shrink the grid or raise --max-cells",
        )


def _integer(raw: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, value, f"must be an integer >= {minimum}")
    if value < minimum:
        raise ConfigError(key, value, f"must be an integer >= {minimum}")
    return value


def _number(key: str, value: Any, rule: AxisRule) -> Any:
    """Check the type of one scalar axis value and convert it to the axis kind."""
    if rule.kind == "str":
        if not isinstance(value, str):
            raise ConfigError(key, value, "must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, value, f"must be a{'n integer' if rule.kind == 'int' else ' number'}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, value, "must be finite (not NaN or infinite)")
    if rule.kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(key, value, "must be an integer")
            value = int(value)
        return value
    return float(value)


def parse_axis(key: str, spec: Any, rule: AxisRule) -> np.ndarray:
    """One axis spec (list, geom, linspace or range table) -> 1-D array.

    Special literal values that only the experiment understands (a string on an
    integer axis, e.g. ``d = "all"``, or a bare integer count such as ``draw = 3``)
    pass through as 0-d arrays for ``Experiment.resolve_axes``.
    """
    integer = rule.kind == "int"
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(key, spec, "must not be empty")
        values = [_number(f"{key}[{i}]", v, rule) for i, v in enumerate(spec)]
        if rule.kind == "str":
            return np.array(values, dtype=object)
        return np.array(values, dtype=np.int64 if integer else np.float64)
    if isinstance(spec, dict):
        return _table_axis(key, spec, rule)
    if integer and isinstance(spec, (int, str)) and not isinstance(spec, bool):
        return np.array(spec, dtype=object)
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        raise ConfigError(key, spec, "must be a list of values, e.g. [" + repr(spec) + "]")
    raise ConfigError(key, spec, "must be a list, or a table with one of geom, linspace, range")


_FORM_KEYS = {"geom": {"geom", "num"}, "linspace": {"linspace", "num"}, "range": {"range", "step"}}


def _table_axis(key: str, spec: Mapping[str, Any], rule: AxisRule) -> np.ndarray:
    """A ``{geom|linspace = [a, b], num = n}`` or ``{range = [a, b], step = s}`` table -> 1-D array."""
    forms = [f for f in _FORM_KEYS if f in spec]
    if len(forms) != 1 or rule.kind == "str":
        raise ConfigError(key, spec, "must be a list, or a table with exactly one of geom, linspace, range")
    form = forms[0]
    for extra_key in spec:
        if extra_key not in _FORM_KEYS[form]:
            raise ConfigError(
                f"{key}.{extra_key}", spec[extra_key], f"unknown key for {form}; allowed {sorted(_FORM_KEYS[form])}"
            )
    ends = spec[form]
    if not isinstance(ends, list) or len(ends) != 2:
        raise ConfigError(f"{key}.{form}", ends, "must be a list [start, stop]")
    if form == "range":
        return _range_form(key, spec, ends, rule)
    integer = rule.kind == "int"
    as_float = AxisRule(rule.name, "float", rule.long_name, rule.units)
    a, b = (float(_number(f"{key}.{form}", v, as_float)) for v in ends)
    num = spec.get("num")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ConfigError(f"{key}.num", num, "must be an integer >= 1")
    if num > 1 and a == b:
        raise ConfigError(f"{key}.{form}", ends, f"start equals stop, so num = {num} would repeat values")
    if form == "geom":
        if a <= 0 or b <= 0:
            raise ConfigError(f"{key}.geom", ends, "geometric spacing needs start > 0 and stop > 0")
        return geom_axis(a, b, num, integer)
    return linspace_axis(a, b, num, integer)


def _range_form(key: str, spec: Mapping[str, Any], ends: list[Any], rule: AxisRule) -> np.ndarray:
    """``{range = [a, b], step = s}`` on an integer axis: ``a, a + s, ... <= b``."""
    if rule.kind != "int":
        raise ConfigError(f"{key}.range", ends, "range is for integer axes; use linspace or geom")
    a, b = (_number(f"{key}.range", v, rule) for v in ends)
    step = spec.get("step", 1)
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ConfigError(f"{key}.step", step, "must be an integer >= 1")
    if b < a:
        raise ConfigError(f"{key}.range", ends, "start must not exceed stop (reversed range)")
    return range_axis(a, b, step)


def _check_values(key: str, values: np.ndarray, rule: AxisRule | None) -> None:
    """Non-empty, no duplicates and, given a rule, every value allowed by it."""
    if values.ndim != 1 or values.size == 0:
        raise ConfigError(key, values.tolist(), "must be a non-empty list of values")
    seen: set[Any] = set()
    for v in values.tolist():
        if v in seen:
            raise ConfigError(key, v, "duplicate axis value; every value must appear once")
        seen.add(v)
        if rule is None:
            continue
        if rule.choices is not None and v not in rule.choices:
            raise ConfigError(key, v, f"must be one of {list(rule.choices)}")
        if rule.check is not None:
            problem = rule.check(v)
            if problem:
                raise ConfigError(key, v, problem)


def toml_text(workflow: Mapping[str, Any]) -> str:
    """TOML text of a workflow given as a dict (what the cube stores as its ``workflow``).

    Top-level values first, then one ``[table]`` per dict value (``grid``, ``chunks``,
    ``cluster``); dicts inside a table become inline tables (``{ geom = [10, 1e8], num = 29 }``).
    """
    lines = [f"{key} = {_toml_value(key, value)}" for key, value in workflow.items() if not isinstance(value, Mapping)]
    for key, table in workflow.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{key}]"] + [f"{k} = {_toml_value(f'{key}.{k}', v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(f'{key}.{k}', v)}" for k, v in value.items()) + " }"
    raise ConfigError(key, value, "must be a string, number, boolean, list or table")
