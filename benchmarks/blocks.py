"""Many small blocks: a plan of 10^4 blocks run with tasks grouping blocks (today's path)
beside one task per block (the path before tasks grouped blocks, kept as ``[chunks]
blocks_per_task = 1``), the files and bytes each leaves, and the time to read the done
state of a 10^5-block store (issue 13)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from benchmarks.harness import Figure, alternate, check, emergence_command, median, run_timed

MANY_BLOCKS = """experiment = "hidden"
name = "many"
[grid]
lam = [1.0]
noise_ratio = {{ geom = [0.01, 100.0], num = 100 }}
learner = ["truncated_kalman", "best_fir"]
k = {{ range = [1, 100] }}
T = [1000, 100000]
[chunks]
noise_ratio = 1
k = 1
{extra}"""
SCAN_BLOCKS = 100_000


def _disk(path: Path) -> tuple[int, int]:
    """(files, bytes allocated on disk) under ``path``."""
    files = allocated = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            allocated += os.stat(os.path.join(root, name)).st_blocks * 512
    return files, allocated


def many_blocks(quick: bool) -> list[Figure]:
    """``emergence run`` of 40,000 cells in 10,000 blocks with 2 workers: grouped tasks
    against one task per block, alternating, fresh stores each time."""
    root = Path(tempfile.mkdtemp(prefix="emergence-blocks-"))
    grouped, single = root / "grouped.toml", root / "single.toml"
    grouped.write_text(MANY_BLOCKS.format(extra=""))
    single.write_text(MANY_BLOCKS.format(extra="blocks_per_task = 1\n"))
    phases: dict[str, list[float]] = {"grouped": [], "per_block": []}
    disk: dict[str, tuple[int, int]] = {}
    tasks: dict[str, int] = {}
    count = 0

    def run(label: str, workflow: Path) -> None:
        nonlocal count
        count += 1
        out = root / f"{label}-{count}.zarr"
        _wall, done = run_timed(
            [*emergence_command(), "run", str(workflow), "--out", str(out), "--no-progress", "--workers", "2"]
        )
        check(done)
        phases[label].append(float(re.search(r"\(([0-9.]+) s computing blocks\)", done.stdout).group(1)))
        disk[label] = _disk(out)
        dry = run_timed([*emergence_command(), "run", str(workflow), "--dry-run", "--out", str(root / "x")])[1]
        tasks[label] = int(re.search(r"tasks: ([0-9,]+)", dry.stdout).group(1).replace(",", ""))
        shutil.rmtree(out, ignore_errors=True)

    try:
        times = alternate(
            {"grouped": lambda: run("grouped", grouped), "per_block": lambda: run("per_block", single)},
            1 if quick else 2,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratios = [b / a for a, b in zip(times["grouped"], times["per_block"], strict=True)]
    blocks, cells = 10_000, 40_000
    overhead = {label: 2 * median(phases[label]) / tasks[label] * 1e3 for label in phases}
    files, allocated = disk["grouped"], disk["per_block"]
    return [
        Figure(
            "many_blocks_speedup",
            median(ratios),
            "x",
            ">=",
            5.0,
            note=(
                f"{cells:,} hidden cells in {blocks:,} blocks ([chunks] noise_ratio = 1, k = 1), 2 workers, "
                f"`emergence run` wall: one task per block {median(times['per_block']):.1f} s vs "
                f"{tasks['grouped']} grouped tasks {median(times['grouped']):.1f} s"
            ),
            details={"times": times, "blocks_phase": phases, "tasks": tasks},
        ),
        Figure(
            "block_overhead_ms",
            overhead["grouped"] * tasks["grouped"] / blocks,
            "ms",
            "<=",
            overhead["per_block"] / 5,
            note=(
                f"worker time per block (2 workers x blocks phase / blocks; kernel ~0.01 ms): grouped "
                f"{overhead['grouped'] * tasks['grouped'] / blocks:.3f} ms ({overhead['grouped']:.0f} ms "
                f"per task of {blocks // tasks['grouped']} blocks) vs one task per block "
                f"{overhead['per_block']:.1f} ms; target a fifth of the latter"
            ),
            details={"ms_per_task": overhead},
        ),
        Figure(
            "bytes_on_disk_per_cell",
            files[1] / cells,
            "B",
            None,
            None,
            note=(
                f"grouped: {files[0]:,} files, {files[1] / 2**20:.1f} MiB allocated for {cells:,} cells; "
                f"one task per block: {allocated[0]:,} files, {allocated[1] / 2**20:.1f} MiB "
                f"({allocated[1] / cells:.0f} B per cell)"
            ),
            details={
                "grouped": {"files": files[0], "bytes": files[1]},
                "per_block": {"files": allocated[0], "bytes": allocated[1]},
            },
        ),
    ]


def _scan_workflow(blocks: int) -> str:
    """A hidden grid of ``blocks`` one-cell blocks, one task each."""
    return (
        MANY_BLOCKS.format(extra="blocks_per_task = 1\n")
        .replace("num = 100 }", f"num = {blocks // 100} }}")
        .replace("T = [1000, 100000]", "T = [1000]")
        .replace('learner = ["truncated_kalman", "best_fir"]', 'learner = ["truncated_kalman"]')
    )


def _mark(location: object, tasks: Iterable[tuple[int, ...]]) -> None:
    """These tasks' one-byte marks, named as ``ledger.mark_done`` writes them."""
    from pipeline.storage import ledger

    fs, root = location.fs()  # type: ignore[attr-defined]
    marks = {f"{root}/{ledger.DONE_GROUP}/done/c." + ".".join(map(str, t)): b"\x01" for t in tasks}
    if location.is_local:  # type: ignore[attr-defined]
        for path, data in marks.items():
            Path(path).write_bytes(data)
    else:
        fs.pipe(marks, batch_size=256)


def _rerun_command(folder: Path, url: str) -> list[str]:
    """``emergence run`` of the scan workflow into ``url`` (a resume: every block is done)."""
    path = folder / "scan.toml"
    path.write_text(_scan_workflow(SCAN_BLOCKS))
    return [*emergence_command(), "run", str(path), "--out", url, "--no-progress"]


def done_scan(quick: bool) -> Figure:
    """``emergence info --format json`` (a fresh process: imports, metadata, the done state)
    on a local cube of 10^5 blocks, one task each, every one marked done: as a killed run
    leaves it (10^5 standing marks to list) and as a finished run leaves it (marks folded
    into the ledger); the note adds ``emergence run`` on the finished cube (a resume with
    nothing left to do)."""
    from pipeline.driver import resume
    from pipeline.plan.config import parse_workflow
    from pipeline.storage import ledger
    from pipeline.storage.location import StoreLocation

    root = Path(tempfile.mkdtemp(prefix="emergence-scan-"))
    wf = parse_workflow(_scan_workflow(SCAN_BLOCKS))
    location = StoreLocation(str(root / "scan.zarr"))
    info = [*emergence_command(), "info", location.url, "--format", "json"]
    rerun = _rerun_command(root, location.url)
    try:
        resume.create_store(wf, location)
        _mark(location, wf.plan.task_keys())
        assert ledger.count_done(location) == SCAN_BLOCKS
        standing = alternate({"info": lambda: check(run_timed(info)[1])}, 3 if quick else 5)
        t0 = time.perf_counter()
        ledger.compact_done(location)
        compaction = time.perf_counter() - t0
        folded = alternate(
            {"info": lambda: check(run_timed(info)[1]), "run": lambda: check(run_timed(rerun)[1])}, 3 if quick else 5
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    worst = median(standing["info"])
    return Figure(
        "done_scan_seconds_1e5",
        worst,
        "s",
        "<=",
        3.0,
        note=(
            f"`emergence info` on a local cube of {SCAN_BLOCKS:,} blocks, one task each, all done, "
            f"process start and imports included: {worst:.2f} s with 10^5 standing marks (the worst "
            f"case: never folded), {median(folded['info']):.2f} s once folded into the ledger (a finished run; "
            f"the fold took {compaction:.1f} s); `emergence run` on the finished cube (nothing to do) "
            f"{median(folded['run']):.2f} s"
        ),
        details={"standing": standing, "folded": folded, "compaction_seconds": compaction},
    )


def done_scan_s3(quick: bool) -> Figure:
    """``emergence info --format json`` (a fresh process) on a cube of 10^5 one-task blocks on
    the loopback S3 server the tests use (moto): every task folded into the ledger (a finished
    run, or a killed one up to its last fold), then with the standing marks that one fold
    interval can leave on top (the driver folds every ``engine.COMPACT_SECONDS`` or
    ``engine.COMPACT_TASKS`` tasks, whichever comes first: the marks 10 s of batched PUTs leave,
    at most ``COMPACT_TASKS``)."""
    from pipeline.driver import engine, resume
    from pipeline.plan.config import parse_workflow
    from pipeline.storage import ledger
    from pipeline.storage.location import StoreLocation
    from tests.processes import S3_BUCKET, loopback_s3

    wf = parse_workflow(_scan_workflow(SCAN_BLOCKS))
    repeats = 3 if quick else 5
    root = Path(tempfile.mkdtemp(prefix="emergence-scan-s3-"))
    with loopback_s3():
        location = StoreLocation(f"s3://{S3_BUCKET}/scan.zarr")
        info = [*emergence_command(), "info", location.url, "--format", "json"]
        rerun = _rerun_command(root, location.url)
        t0 = time.perf_counter()
        resume.create_store(wf, location)
        created = time.perf_counter() - t0
        tasks = list(wf.plan.task_keys())
        ledger.write_ledger(location, set(tasks), wf.plan.ntasks)
        assert ledger.count_done(location) == SCAN_BLOCKS
        folded = alternate(
            {"info": lambda: check(run_timed(info)[1]), "run": lambda: check(run_timed(rerun)[1])}, repeats
        )
        marked, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < engine.COMPACT_SECONDS and marked < engine.COMPACT_TASKS:
            batch = tasks[marked : min(marked + 256, engine.COMPACT_TASKS)]
            _mark(location, batch)
            marked += len(batch)
        put_rate = marked / (time.perf_counter() - t0)
        standing = alternate({"info": lambda: check(run_timed(info)[1])}, repeats)
    shutil.rmtree(root, ignore_errors=True)
    worst = median(standing["info"])
    return Figure(
        "done_scan_seconds_1e5_s3",
        worst,
        "s",
        "<=",
        10.0,
        note=(
            f"`emergence info` on a cube of {SCAN_BLOCKS:,} blocks on the loopback S3 server (moto), "
            f"process start included: {median(folded['info']):.2f} s with every task in the ledger, "
            f"{worst:.2f} s with {marked:,} standing marks on top (what a kill between two folds can "
            f"leave: {engine.COMPACT_SECONDS:g} s of PUTs at {put_rate:.0f}/s, at most "
            f"{engine.COMPACT_TASKS:,}); `emergence run` on the finished cube (nothing to do) "
            f"{median(folded['run']):.2f} s; creating the store took {created:.0f} s"
        ),
        details={"folded": folded, "standing": standing, "standing_marks": marked, "put_per_s": put_rate},
    )
