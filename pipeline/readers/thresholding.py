"""``emergence thresholds``: where the phase transition sits, measured and predicted.

The cube's experiment extracts its thresholds, each beside its theory (see the
``thresholds`` module of every experiment); this module adds what is common: the
provenance, the mark of values a partial cube cannot know yet, the written store
(a consolidated Zarr group that plain ``xarray.open_zarr`` opens quietly, marked as
this tool's output) and the printed table with every disagreement at the end.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import UsageError
from pipeline.experiments.base import DEFAULT_GROWTH_TOL, DEFAULT_TAUS, ThresholdOptions
from pipeline.storage.guard import OUTPUT_ATTR, check_target, swap_into_place
from pipeline.storage.location import StoreLocation

if TYPE_CHECKING:  # xarray is imported where it is used: `emergence run` builds this parser too
    import xarray as xr


def options(taus: Sequence[float] | None = None, growth_tol: float = DEFAULT_GROWTH_TOL) -> ThresholdOptions:
    """Checked threshold options (UsageError naming the flag)."""
    chosen = tuple(float(t) for t in (taus or DEFAULT_TAUS))
    for t in chosen:
        if not math.isfinite(t) or t <= 0:
            raise UsageError(f"--tau {t!r}: must be a finite number > 0")
    if len(set(chosen)) != len(chosen):
        raise UsageError(f"--tau {list(chosen)}: values must be distinct")
    if not math.isfinite(growth_tol) or growth_tol <= 0:
        raise UsageError(f"--growth-tol {growth_tol!r}: must be a finite number > 0")
    return ThresholdOptions(chosen, float(growth_tol), taus_given=bool(taus))


def require_levels(ds: xr.Dataset, opts: ThresholdOptions) -> None:
    """UsageError when ``--tau`` was given for a cube whose experiment has no risk levels
    (it would be ignored)."""
    from pipeline.experiments import experiment_of

    experiment = experiment_of(ds)
    if opts.taus_given and experiment.levels is None:
        given = " ".join(f"{t:g}" for t in opts.taus)
        raise UsageError(
            f"--tau {given}: a {experiment.name} cube has no risk levels; --tau chooses among the levels "
            "of an experiment that reads k* at a risk level"
        )


def workflow_name(ds: xr.Dataset) -> str:
    try:
        return str(tomllib.loads(str(ds.attrs.get("workflow", ""))).get("name") or "cube")
    except tomllib.TOMLDecodeError:
        return "cube"


def compute_thresholds(ds: xr.Dataset, opts: ThresholdOptions | None = None, source: str = "") -> xr.Dataset:
    """Thresholds of a cube opened with ``cubes.open_cube`` (every value beside its theory)."""
    from pipeline.core.types import PARTIAL_ATTR
    from pipeline.experiments import experiment_of
    from pipeline.storage.provenance import now

    opts = opts or ThresholdOptions()
    experiment = experiment_of(ds)
    if ds.sizes.get(experiment.horizon, 0) < 2:
        raise UsageError(f"thresholds need at least two horizons {experiment.horizon} in the cube")
    th = mask_unknown(experiment.thresholds(ds, opts), ds)
    th.attrs.update(
        {
            "title": f"emergence thresholds ({experiment.name})",
            OUTPUT_ATTR: "thresholds",
            "experiment": experiment.name,
            "source": source or str(ds.encoding.get("source", "")),
            "workflow_name": workflow_name(ds),
            "workflow_fingerprint": ds.attrs.get("workflow_fingerprint", ""),
            "created": now(),
        }
    )
    if ds.attrs.get(PARTIAL_ATTR):
        th.attrs[PARTIAL_ATTR] = ds.attrs[PARTIAL_ATTR]
    return th


def mask_unknown(th: xr.Dataset, ds: xr.Dataset) -> xr.Dataset:
    """In thresholds of a partial cube, every measured value that depends on an unfinished
    cell becomes NaN, every verdict weighing such a value becomes ``unknown``, and
    ``<name>_known`` says which values were drawn from computed cells only: a value over some
    of the cube's dims depends on every cell of the cube that projects onto it."""
    import xarray as xr

    from pipeline.core import verdicts
    from pipeline.core.measure import MEASURED
    from pipeline.core.types import COMPUTED

    if COMPUTED not in ds:
        return th
    computed = ds[COMPUTED]
    out = th.copy()

    def own(var: xr.DataArray) -> xr.DataArray:
        reduced = [d for d in computed.dims if d not in var.dims]
        return computed.all(reduced) if reduced else computed

    for name, var in th.data_vars.items():
        role = var.attrs.get("role")
        if role == MEASURED:
            out[name] = var.where(own(var))
            out[f"{name}_known"] = own(var).assign_attrs(long_name=f"{name} drawn from computed cells only", units="1")
        elif role == verdicts.VERDICT and any(
            th[c].attrs.get("role") == MEASURED for c in var.attrs.get("compares", "").split() if c in th
        ):
            compared = (var != verdicts.NOT_COMPARED) & ~own(var)
            out[name] = xr.where(compared, verdicts.UNKNOWN, var).astype(object).assign_attrs(var.attrs)
    return out


def default_output(cube: str) -> str:
    """``data/x.zarr`` -> ``data/x.thresholds.zarr`` (beside the cube)."""
    base = cube.rstrip("/")
    return base.removesuffix(".zarr") + ".thresholds.zarr"


def write_thresholds(th: xr.Dataset, path: str) -> None:
    """Write beside any old thresholds store of ours, then move into place (consolidated)."""
    target = StoreLocation(path)
    check_target(target, "thresholds")
    staged = target.sibling(".writing")
    if staged.fs()[0].exists(staged.fs()[1]):
        check_target(staged, "thresholds", what="the staging path")
        staged.fs()[0].rm(staged.fs()[1], recursive=True)
    with warnings.catch_warnings():  # zarr's note that consolidation is not in the v3 spec yet
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        th.to_zarr(staged.zarr_store(), mode="w", zarr_format=3, consolidated=True)
    swap_into_place(target, staged)


def format_table(th: xr.Dataset) -> str:
    """A readable table with theory beside each value; the verdicts, the disagreements and, last,
    the counts of agreeing, disagreeing and unresolved comparisons."""
    from pipeline.core import verdicts
    from pipeline.core.types import PARTIAL_ATTR
    from pipeline.experiments import experiment_of

    experiment = experiment_of(th)
    head = [
        f"thresholds of {th.attrs.get('source', '?')} ({experiment.name}, workflow "
        f"{th.attrs.get('workflow_name', '?')})"
    ]
    if th.attrs.get(PARTIAL_ATTR):
        head.append(
            f"{th.attrs[PARTIAL_ATTR]}: values that need unfinished cells are shown as '?' or "
            f"'{verdicts.UNKNOWN_TEXT}' and left out of the comparison with theory"
        )
    problems = experiment.disagreements(th)
    tail = ["", "verdicts against theory (rules: each verdict variable's rule attribute, docs/theory.md §4):"]
    tail += verdicts.lines(th)
    tail += ["", f"disagreements with theory: {len(problems)}"] + [f"  {p}" for p in problems]
    tail += [verdicts.counts_line(th)]
    return "\n".join(head + experiment.table(th) + tail)


def thresholds_for_store(
    cube: str, out: str | None = None, opts: ThresholdOptions | None = None, partial: bool = False
) -> tuple[xr.Dataset, str]:
    """Compute and write the thresholds of ``cube``; returns the dataset and where it went."""
    from pipeline.readers.cubes import open_cube

    path = out or default_output(cube)
    if path.rstrip("/") == cube.rstrip("/"):
        raise UsageError(f"--out {path!r} is the cube itself; choose another path")
    check_target(StoreLocation(path), "thresholds")  # before the work, so a refusal is immediate
    ds = open_cube(cube, partial=partial)
    require_levels(ds, opts or ThresholdOptions())
    th = compute_thresholds(ds, opts, source=cube)
    write_thresholds(th, path)
    return th, path


def _cmd_thresholds(args: Any) -> int:
    th, path = thresholds_for_store(args.store, args.out, options(args.tau, args.growth_tol), args.partial)
    print(format_table(th))
    print(f"\nwritten: {path}")
    return 0


def add_thresholds_parser(sub: Any) -> Any:
    p = sub.add_parser("thresholds", help="thresholds (k*, slopes, critical d) beside theory")
    p.add_argument("store", help="cube written by `emergence run`")
    p.add_argument("--out", help="output Zarr path (default: <store>.thresholds.zarr beside the store)")
    p.add_argument(
        "--tau",
        type=float,
        nargs="+",
        metavar="X",
        help=f"risk levels for k_star (default: {' '.join(map(str, DEFAULT_TAUS))})",
    )
    p.add_argument(
        "--growth-tol",
        type=float,
        default=DEFAULT_GROWTH_TOL,
        metavar="G",
        help="growth exponent below which a risk counts as bounded (default 0.5)",
    )
    p.add_argument(
        "--partial", action="store_true", help="read an unfinished cube (values it cannot know are left out)"
    )
    p.set_defaults(func=_cmd_thresholds)
    return p
