"""Batch-system clusters (SLURM, PBS, ...) through dask-jobqueue (extra ``cluster``).

The ``[cluster]`` table of a workflow, or ``--cluster KIND`` with a profile file of
the same keys, describes the worker jobs. Validation happens before anything starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError, UsageError

KINDS = {
    "local": None,
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
}
_STR, _INT, _LIST = "a string", "an integer >= 1", "a list of strings"
KEYS: dict[str, str] = {
    "kind": _STR,
    "cores": _INT,
    "processes": _INT,
    "memory": _STR,
    "walltime": _STR,
    "queue": _STR,
    "account": _STR,
    "worker_lifetime": _STR,
    "jobs": _INT,
    "adaptive_minimum": _INT,
    "adaptive_maximum": _INT,
    "job_extra_directives": _LIST,
    "job_script_prologue": _LIST,
    "local_directory": _STR,
    "interface": _STR,
    "python": _STR,
}


@dataclass(frozen=True)
class ClusterSpec:
    """Validated cluster settings; ``kind == "local"`` means a LocalCluster."""

    kind: str
    options: Mapping[str, Any]

    @property
    def is_batch(self) -> bool:
        return self.kind != "local"

    def overridden(self, kind: str | None = None, profile: Mapping[str, Any] | None = None) -> ClusterSpec:
        """These settings < a profile's < ``--cluster KIND`` (the additions validated)."""
        if kind is None and not profile:
            return self
        return cluster_spec({"kind": self.kind, **self.options}, kind=kind, profile=profile)


def load_profile(path: str | Path) -> dict[str, Any]:
    """A profile's keys: bare (``cores = 4``) or all inside one ``[cluster]`` table."""
    name = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"cluster profile {name!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"cluster profile {name!r}: TOML syntax error: {exc}") from None
    hint = "give bare keys or a single [cluster] table"
    for key, value in raw.items():
        if isinstance(value, dict) and key != "cluster":
            raise UsageError(f"cluster profile {name!r}: unexpected table [{key}]; {hint}")
    if "cluster" in raw:
        if not isinstance(raw["cluster"], dict):
            raise UsageError(f"cluster profile {name!r}: 'cluster' must be a table; {hint}")
        for key in raw:
            if key != "cluster":
                raise UsageError(f"cluster profile {name!r}: key {key!r} outside [cluster]; {hint}, not both")
        return dict(raw["cluster"])
    return raw


def cluster_spec(
    table: Mapping[str, Any], kind: str | None = None, profile: Mapping[str, Any] | None = None, prefix: str = "cluster"
) -> ClusterSpec:
    """Merge workflow table < profile < ``--cluster`` and validate every key."""
    merged = dict(table) | dict(profile or {})
    if kind is not None:
        merged["kind"] = kind
    for key, value in merged.items():
        rule = KEYS.get(key)
        if rule is None:
            raise ConfigError(f"{prefix}.{key}", value, f"unknown key; allowed {sorted(KEYS)}")
        ok = {
            _STR: isinstance(value, str) and value != "",
            _INT: isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            _LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[rule]
        if key == "adaptive_minimum" and isinstance(value, int) and not isinstance(value, bool) and value == 0:
            ok = True
        if not ok:
            raise ConfigError(f"{prefix}.{key}", value, f"must be {rule}")
    chosen = merged.pop("kind", "local")
    if chosen not in KINDS:
        raise ConfigError(f"{prefix}.kind", chosen, f"must be one of {sorted(KINDS)}")
    if chosen != "local":
        for key in ("cores", "memory"):
            if key not in merged:
                raise ConfigError(f"{prefix}.{key}", None, f"is required for a {chosen} cluster")
    if "adaptive_maximum" in merged and merged.get("adaptive_minimum", 0) > merged["adaptive_maximum"]:
        raise ConfigError(
            f"{prefix}.adaptive_minimum",
            merged["adaptive_minimum"],
            f"must not exceed adaptive_maximum = {merged['adaptive_maximum']}",
        )
    return ClusterSpec(chosen, merged)


def _jobqueue_kwargs(spec: ClusterSpec) -> dict[str, Any]:
    o = dict(spec.options)
    kwargs: dict[str, Any] = {"cores": o["cores"], "memory": o["memory"], "processes": o.get("processes", o["cores"])}
    for key in ("walltime", "queue", "account", "local_directory", "interface", "python", "job_extra_directives"):
        if key in o:
            kwargs[key] = o[key]
    if "job_script_prologue" in o:
        kwargs["job_script_prologue"] = list(o["job_script_prologue"])
    if "worker_lifetime" in o:
        kwargs["worker_extra_args"] = ["--lifetime", o["worker_lifetime"], "--lifetime-stagger", "2m"]
    return kwargs


def cluster_class(spec: ClusterSpec) -> Any:
    """The dask-jobqueue class of a batch ``spec``; UsageError when dask-jobqueue is missing
    (checked before a run writes anything)."""
    try:
        import dask_jobqueue
    except ImportError:
        raise UsageError(
            f"a {spec.kind} cluster needs dask-jobqueue, which is not installed: "
            "pip install 'emergence-pipeline[cluster]'; nothing was written"
        ) from None
    return getattr(dask_jobqueue, str(KINDS[spec.kind]))


def start_batch_cluster(spec: ClusterSpec) -> Any:
    """Start a dask-jobqueue cluster and scale it (fixed ``jobs`` or adaptive)."""
    cluster = cluster_class(spec)(**_jobqueue_kwargs(spec))
    o = spec.options
    if "adaptive_maximum" in o:
        cluster.adapt(minimum_jobs=o.get("adaptive_minimum", 0), maximum_jobs=o["adaptive_maximum"])
    else:
        cluster.scale(jobs=o.get("jobs", 1))
    return cluster


def job_script(spec: ClusterSpec) -> str:
    """The job script the cluster would submit (nothing is submitted)."""
    with cluster_class(spec)(**_jobqueue_kwargs(spec)) as cluster:
        return str(cluster.job_script())
