"""``emergence figures``: regenerate every figure from the workflows with one command.

For every ``*.toml`` under the workflows folder (sorted by file name):

1. the cube ``<data>/<name>.zarr`` is run when it is missing, resumed when it is
   incomplete, re-run from scratch when it was made from a different workflow
   (``workflow_fingerprint`` differs from ``load_workflow(path).fingerprint``),
   and left alone when it is up to date;
2. its thresholds are written to ``<data>/<name>.thresholds.zarr`` and the printed
   table to ``<out>/<name>.thresholds.txt``;
3. its figures go to ``<out>/<name>/``.

Finally ``<out>/index.md`` and ``<out>/index.html`` list every figure with its
workflow, the command that regenerates it and one sentence on what it shows, and how each
cube's comparisons with theory stand. A comparison made by several cubes of one experiment
(the same verdict variable at the same coordinates, e.g. a companion workflow that extends
the horizons of another's ``k*`` slopes) counts once in the gallery, with its most decisive
verdict (``verdicts.most_decisive``): an unresolved comparison that another cube resolves is
reported as resolved there. All workflows are validated before anything is run or written.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core import verdicts
from pipeline.core.cliargs import positive_int
from pipeline.core.errors import UsageError
from pipeline.driver.where import Where
from pipeline.experiments import experiment_of
from pipeline.storage.guard import FIGURES_MANIFEST, check_target, figures_manifest, manifest_text
from pipeline.storage.location import StoreLocation

DEFAULT_OUT = "docs/gallery"
DEFAULT_DATA = "data"
DEFAULT_WORKFLOWS = "workflows"


@dataclass
class WorkflowResult:
    path: Path
    name: str
    experiment: str
    store: Path
    status: str
    """The cube's state before (``pipeline.driver.status``): new, incomplete, other_workflow, complete."""
    thresholds_path: Path | None = None
    table_path: Path | None = None
    table: str = ""
    disagreements: list[str] = field(default_factory=list)
    plots: list[Any] = field(default_factory=list)
    comparisons: dict[tuple[str, ...], str] = field(default_factory=dict)
    """Every comparison with theory of the cube (``verdicts.by_comparison``, keys prefixed by the experiment)."""
    resolved_by: dict[str, int] = field(default_factory=dict)
    """How many of this cube's unresolved comparisons each other workflow resolves."""
    still_unresolved: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    """Per verdict variable, the coordinates of this cube's unresolved comparisons no cube resolves."""

    @property
    def counts(self) -> Counter[str]:
        return verdicts.counts_of(list(self.comparisons.values()))

    @property
    def ran(self) -> bool:
        return self.status != "complete"


def regenerate(
    workflows_dir: str | Path = DEFAULT_WORKFLOWS,
    data_dir: str | Path = DEFAULT_DATA,
    out_dir: str | Path = DEFAULT_OUT,
    *,
    where: Where | None = None,
    taus: Sequence[float] | None = None,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> list[WorkflowResult]:
    """Run stale or missing cubes, then thresholds, plots and the index (see module docstring)."""
    from pipeline.driver.engine import run
    from pipeline.driver.setup import RunSetup
    from pipeline.driver.status import store_status
    from pipeline.plan.config import load_workflow
    from pipeline.readers import plots
    from pipeline.readers import thresholding as thresholds
    from pipeline.readers.cubes import open_cube

    workflows_dir, data_dir, out_dir = Path(workflows_dir), Path(data_dir), Path(out_dir)
    if not workflows_dir.is_dir():
        raise UsageError(f"--workflows {str(workflows_dir)!r} is not a folder")
    paths = sorted(workflows_dir.glob("*.toml"))
    if not paths:
        raise UsageError(f"no workflow files (*.toml) in {str(workflows_dir)!r}")
    opts = thresholds.options(taus)

    loaded = [(path, load_workflow(path)) for path in paths]  # validate everything first
    names: dict[str, Path] = {}
    for path, wf in loaded:
        if wf.name in names:
            raise UsageError(
                f"workflows {names[wf.name]} and {path} share the name {wf.name!r} "
                f"(both would write {data_dir / (wf.name + '.zarr')})"
            )
        names[wf.name] = path
    statuses = [store_status(wf, StoreLocation(str(data_dir / f"{wf.name}.zarr"))) for _, wf in loaded]
    check_target(StoreLocation(str(out_dir)), "figures")
    for (_, wf), status in zip(loaded, statuses, strict=True):
        cube = StoreLocation(str(data_dir / f"{wf.name}.zarr"))
        if status.state == "foreign":
            check_target(cube, "cube")  # raises: nothing is run before every path is ours
        check_target(StoreLocation(str(out_dir / wf.name)), "figures")
        check_target(StoreLocation(thresholds.default_output(cube.url)), "thresholds")

    data_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for (path, wf), status in zip(loaded, statuses, strict=True):
        store = data_dir / f"{wf.name}.zarr"
        result = WorkflowResult(path, wf.name, wf.experiment, store, status.state)
        if status.state == "complete":
            say(f"{path}: cube {store} is up to date, not re-run")
        else:
            say(f"{path}: cube {store} is {status.describe()}; running")
            overwrite = status.state in ("other_workflow", "extendable")
            setup = RunSetup(wf, StoreLocation(str(store)), where or Where.choose(cluster=wf.cluster), overwrite)
            run(setup, progress=progress, say=say)
        ds = open_cube(str(store))
        th = thresholds.compute_thresholds(ds, opts, source=store.as_posix())
        result.thresholds_path = Path(thresholds.default_output(str(store)))
        thresholds.write_thresholds(th, str(result.thresholds_path))
        result.table = thresholds.format_table(th)
        result.disagreements = experiment_of(th).disagreements(th)
        result.comparisons = {(wf.experiment, *key): v for key, v in verdicts.by_comparison(th).items()}
        result.table_path = out_dir / f"{wf.name}.thresholds.txt"
        result.plots = plots.save(plots.draw(ds, th, opts.taus[0]), out_dir / wf.name)
        say(
            f"{path}: {len(result.plots)} figures in {out_dir / wf.name}; comparisons with theory: "
            f"{verdicts.counts_text(result.counts)}"
        )
        results.append(result)
    gallery = reconcile(results)
    for r in results:
        for other, n in r.resolved_by.items():
            say(f"{r.name}: {n} unresolved comparison(s) resolved by the cube of {other}")
        for name, cells in r.still_unresolved.items():
            shown = "; ".join(" ".join(c) for c in cells[:8]) + ("; ..." if len(cells) > 8 else "")
            what = name.removesuffix("_verdict")
            say(f"{r.name}: {len(cells)} {what} comparison(s) unresolved by every cube: {shown}")
    say(f"gallery (each comparison once, at its most decisive cube): {verdicts.counts_text(gallery)}")
    write_index(results, out_dir, opts.taus[0], gallery)
    say(f"index: {out_dir / 'index.md'} and {out_dir / 'index.html'}")
    return results


def reconcile(results: Sequence[WorkflowResult]) -> Counter[str]:
    """The gallery's verdicts, each comparison counted once with its most decisive verdict over
    the cubes that make it; fills every result's ``resolved_by``. Returns the counts."""
    found: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for r in results:
        for key, verdict in r.comparisons.items():
            found.setdefault(key, []).append((r.name, verdict))
    for r in results:
        resolved: Counter[str] = Counter()
        left: dict[str, list[tuple[str, ...]]] = {}
        for key, verdict in r.comparisons.items():
            if verdict != verdicts.UNRESOLVED:
                continue
            deciders = [name for name, v in found[key] if v in (verdicts.AGREES, verdicts.DISAGREES)]
            if deciders:
                resolved[deciders[0]] += 1
            else:
                left.setdefault(key[1], []).append(key[2:])
        r.resolved_by, r.still_unresolved = dict(resolved), left
    return verdicts.counts_of([verdicts.most_decisive(v for _, v in seen) for seen in found.values()])


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def _plot_command(result: WorkflowResult, out_dir: Path, tau: float) -> str:
    tau_part = f" --tau {tau:g}" if tau != 1.0 else ""
    return f"emergence plot {result.store.as_posix()} --out {(out_dir / result.name).as_posix()}{tau_part}"


def _verdict_text(r: WorkflowResult) -> str:
    text = f"comparisons with theory: {verdicts.counts_text(r.counts)}"
    notes = [f"{n} of the unresolved resolved by the cube of {other}" for other, n in r.resolved_by.items()]
    return text + (f" ({'; '.join(notes)})" if notes else "")


def write_index(
    results: Sequence[WorkflowResult], out_dir: Path, tau: float = 1.0, gallery: Counter[str] | None = None
) -> tuple[Path, Path]:
    """``index.md``, a static ``index.html`` and the thresholds tables, listing every figure
    (no timestamps: regenerating from unchanged cubes changes no byte)."""
    total = (
        f"Comparisons with theory across the gallery (each counted once, at its most decisive cube): "
        f"{verdicts.counts_text(gallery)}."
        if gallery is not None
        else ""
    )
    md = [
        "# Emergence figures",
        "",
        f"Regenerate everything with `emergence figures --out {out_dir.as_posix()}` "
        "(runs only the cubes that are missing, unfinished or made from a different workflow text).",
        "",
    ] + ([total, ""] if total else [])
    body = [
        "<h1>Emergence figures</h1>",
        f"<p>Regenerate everything with <code>emergence figures --out {html.escape(out_dir.as_posix())}</code> "
        "(runs only the cubes that are missing, unfinished or made from a different workflow text).</p>",
    ] + ([f"<p>{html.escape(total)}</p>"] if total else [])
    for r in results:
        wf_rel = r.path.as_posix()
        cmd = _plot_command(r, out_dir, tau)
        th_rel = _rel(r.table_path, out_dir) if r.table_path else ""
        verdict = _verdict_text(r)
        md += [
            f"## {r.name} ({r.experiment})",
            "",
            f"Workflow `{wf_rel}`, cube `{r.store.as_posix()}`; thresholds "
            f"`emergence thresholds {r.store.as_posix()}` ([table]({th_rel}), {verdict}).",
            "",
        ]
        body += [
            f"<h2>{html.escape(r.name)} ({html.escape(r.experiment)})</h2>",
            f"<p>Workflow <code>{html.escape(wf_rel)}</code>, cube <code>{html.escape(r.store.as_posix())}"
            f"</code>; thresholds <code>emergence thresholds {html.escape(r.store.as_posix())}</code> "
            f'(<a href="{html.escape(th_rel)}">table</a>, {html.escape(verdict)}).</p>',
            f"<details><summary>thresholds table</summary><pre>{html.escape(r.table)}</pre></details>",
        ]
        for p in r.plots:
            png, svg = _rel(p.png, out_dir), _rel(p.svg, out_dir)
            md += [
                f"### {p.title}",
                "",
                f"![{p.title}]({png})",
                "",
                f"{p.caption} Workflow `{wf_rel}`; regenerate: `{cmd}` ([SVG]({svg})).",
                "",
            ]
            body += [
                "<figure>",
                f'<a href="{html.escape(svg)}"><img src="{html.escape(png)}" alt="{html.escape(p.title)}"></a>',
                f"<figcaption><b>{html.escape(p.title)}.</b> {html.escape(p.caption)} Workflow "
                f"<code>{html.escape(wf_rel)}</code>; regenerate: <code>{html.escape(cmd)}</code>."
                "</figcaption>",
                "</figure>",
            ]
    md_path, html_path = out_dir / "index.md", out_dir / "index.html"
    for r in results:
        if r.table_path is not None:
            r.table_path.write_text(r.table + "\n")
    md_path.write_text("\n".join(md) + "\n")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.4}"
        "img{max-width:100%;border:1px solid #ddd}figure{margin:1.5em 0}"
        "figcaption{font-size:0.95em;color:#333}pre{font-size:0.8em;overflow-x:auto}"
    )
    html_path.write_text(
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>Emergence figures</title><style>{style}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    ours = [md_path.name, html_path.name] + [r.table_path.name for r in results if r.table_path is not None]
    (out_dir / FIGURES_MANIFEST).write_text(manifest_text(ours + list(figures_manifest_of(out_dir))))
    return md_path, html_path


def figures_manifest_of(folder: Path) -> list[str]:
    """Files of ours already listed in ``folder``'s manifest (kept when regenerating)."""
    return [f for f in figures_manifest(StoreLocation(str(folder))) or [] if (folder / f).exists()]


def _cmd_figures(args: Any) -> int:
    where = Where.choose(scheduler=args.scheduler, workers=args.workers)
    results = regenerate(args.workflows, args.data, args.out, where=where, taus=args.tau, progress=not args.no_progress)
    ran = [r.name for r in results if r.ran]
    print(
        f"{len(results)} workflows, {len(ran)} run ({', '.join(ran) or 'none'}), "
        f"{sum(len(r.plots) for r in results)} figures; index in {args.out}; comparisons with theory: "
        f"{verdicts.counts_text(reconcile(results))}"
    )
    return 0


def add_figures_parser(sub: Any) -> Any:
    p = sub.add_parser("figures", help="run stale workflows, then thresholds, plots and an index page")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"figure folder (default {DEFAULT_OUT})")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"cube folder (default {DEFAULT_DATA})")
    p.add_argument(
        "--workflows",
        default=DEFAULT_WORKFLOWS,
        metavar="DIR",
        help=f"folder of workflow TOML files (default {DEFAULT_WORKFLOWS})",
    )
    p.add_argument("--workers", type=positive_int, help="local workers (default: one per core)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (or $DASK_SCHEDULER_ADDRESS)")
    p.add_argument(
        "--tau",
        type=float,
        nargs="+",
        metavar="X",
        help="risk levels for k* (the first is plotted; default 1 0.1 0.01)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_figures)
    return p
