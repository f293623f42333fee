"""The ``emergence`` command. Exit codes: 0 ok, 1 runtime failure, 2 bad input."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from pipeline.core.cliargs import positive_int
from pipeline.core.errors import RunError, UsageError
from pipeline.storage.location import StoreLocation


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emergence", description="Exact sweeps of the emergence phase transition.")
    parser.add_argument("--version", action="version", version=f"emergence {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run (or resume) a workflow into a Zarr cube")
    run.add_argument("workflow", help="workflow TOML file")
    run.add_argument("--out", help="store path or fsspec URL (default data/<name>.zarr)")
    run.add_argument("--workers", type=positive_int, help="local workers (default: one per core)")
    run.add_argument("--scheduler", help="address of an existing Dask scheduler (or $DASK_SCHEDULER_ADDRESS)")
    run.add_argument("--scheduler-file", help="scheduler file of an existing Dask scheduler")
    run.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for the scheduler to answer (default: Dask's distributed.comm.timeouts.connect, 30 s)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a cube made from another workflow (the new one is built beside it and takes "
        "its place when complete; anything that is not an emergence cube is never replaced)",
    )
    run.add_argument("--max-cells", type=positive_int, default=None, help="refuse larger grids (default 1e9)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--verbose", action="store_true", help="show Dask's own log messages")
    run.add_argument(
        "--dry-run", action="store_true", help="print cells, blocks, size on disk (and the job script) without writing"
    )
    run.add_argument(
        "--cluster",
        choices=("local", "slurm", "pbs", "sge", "lsf", "htcondor"),
        help="start workers through dask-jobqueue (overrides [cluster] kind)",
    )
    run.add_argument("--cluster-profile", help="TOML file with [cluster] keys (cores, memory, ...)")
    run.add_argument(
        "--extend",
        action="store_true",
        help="grow an existing cube to the workflow's larger axes, computing only new cells",
    )

    info = sub.add_parser("info", help="dims, completion and provenance of a cube")
    info.add_argument("store")
    info.add_argument("--format", choices=("text", "json"), default="text")

    query = sub.add_parser(
        "query",
        help="select cells of a cube",
        description="Select cells of a cube. DIM=VALUE takes the cell at exactly VALUE on every axis (floats "
        "as stored, e.g. noise_ratio=3.1622776601683795; a miss names the values beside it); DIM~VALUE takes "
        "the nearest value of a numeric axis and says which (e.g. noise_ratio~3).",
    )
    query.add_argument("store")
    query.add_argument(
        "--sel",
        action="append",
        default=[],
        metavar="DIM=VALUE|DIM~VALUE",
        help="select along a dim: exactly (=) or the nearest value (~); repeatable",
    )
    query.add_argument("--var", action="append", default=None, help="variable(s) to show (default: all)")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")

    summary = sub.add_parser("summary", help="a short account of what a cube shows")
    summary.add_argument("store")
    summary.add_argument("--partial", action="store_true", help="summarise an unfinished cube (says so)")

    from pipeline.readers.figures import add_figures_parser
    from pipeline.readers.plots import add_plot_parser
    from pipeline.readers.thresholding import add_thresholds_parser

    add_thresholds_parser(sub)
    add_plot_parser(sub)
    add_figures_parser(sub)
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("emergence-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    code = _main(argv)
    if argv is None and Path(sys.argv[0]).name == "emergence":
        _fast_exit(code)
    return code


def _fast_exit(code: int) -> None:
    """End the ``emergence`` console-script process without interpreter teardown.

    Everything is written and closed by now (stores, the Dask cluster, the lock);
    tearing down the modules of xarray, pandas, zarr and distributed only costs
    ~0.5-0.9 s of wall time per command (benchmarks/, issue 6). Only for the
    console script, never when ``main`` is called with arguments (tests, library use).
    """
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not getattr(args, "verbose", False):
        import logging

        for name in ("distributed", "dask_jobqueue", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return _dispatch(args)
    except UsageError as exc:
        print(f"emergence: error: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"emergence: failed: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `emergence query ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except KeyboardInterrupt:
        print("emergence: interrupted; finished blocks are kept, re-run to resume", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "func", None) is not None:
        return int(args.func(args))
    if args.command == "run":
        return _cmd_run(args)
    location = StoreLocation(args.store)
    if args.command == "info":
        from pipeline.readers.inspect import cube_info, format_info

        info = cube_info(location)
        print(json.dumps(info, indent=2) if args.format == "json" else format_info(info))
        return 0
    if args.command == "query":
        from pipeline.readers.inspect import query

        print(query(location, args.sel, args.var, args.format))
        return 0
    if args.command == "summary":
        from pipeline.readers.summary import summarize

        print(summarize(location, partial=args.partial))
        return 0
    raise UsageError(f"unknown command {args.command!r}")


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.driver.setup import setup_run
    from pipeline.plan.config import DEFAULT_MAX_CELLS, load_workflow

    setup = setup_run(
        load_workflow(args.workflow, max_cells=args.max_cells or DEFAULT_MAX_CELLS),
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
        connect_timeout=args.connect_timeout,
        cluster=args.cluster,
        cluster_profile=args.cluster_profile,
        overwrite=args.overwrite,
        extend=args.extend,
    )
    if not args.dry_run and setup.where.is_local and setup.workflow.plan.total != 1:
        from pipeline.driver.clients import start_worker_forkserver

        start_worker_forkserver()  # its imports overlap with ours below

    from pipeline.driver.engine import describe_plan, run

    if args.dry_run:
        print(describe_plan(setup))
        return 0
    report = run(setup, progress=not args.no_progress)
    if report.blocks_computed:
        print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
