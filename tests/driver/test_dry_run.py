"""``emergence run --dry-run`` describes the run that would happen: the plan it would follow
(the store's own when it resumes or extends one), the blocks and tasks left, and their
estimated compute; its counts agree with each other and with the store."""

from __future__ import annotations

import re

from pipeline.cli import main
from pipeline.core.wording import count
from pipeline.driver.estimate import TASK_SECONDS_OVERHEAD, planned_work
from pipeline.driver.resume import create_store, new_regions
from pipeline.plan.config import parse_workflow
from pipeline.storage.location import StoreLocation
from pipeline.worker.tasks import compute_task
from tests.helpers import run_quietly, write_workflow

BASE = """
experiment = "hidden"
name = "grow"
[grid]
lam = [0.9, 1.0]
noise_ratio = [0.5, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 5] }
T = [1, 10, 1000]
[chunks]
k = 2
T = 2
blocks_per_task = 1000
"""
GROWN = (  # its own [chunks] differ from the stored ones, which an extension keeps
    BASE.replace("lam = [0.9, 1.0]", "lam = [0.9, 1.0, 1.05]")
    .replace("range = [1, 5]", "range = [1, 7]")
    .replace("T = [1, 10, 1000]", "T = [1, 10, 1000, 100000]")
    .replace("k = 2\nT = 2\nblocks_per_task = 1000\n", "lam = 1\n")
)


def dry_run(tmp_path, capsys, text: str, out, *flags: str) -> str:
    assert main(["run", str(write_workflow(tmp_path, text)), "--out", str(out), "--dry-run", *flags]) == 0
    return capsys.readouterr().out


def plan_lines(text: str) -> tuple[int, str, int]:
    """(blocks, chunk description, tasks) of the printed plan."""
    blocks = re.search(r"^blocks: ([\d,]+) of (.+)$", text, re.M)
    tasks = re.search(r"^tasks: ([\d,]+) of ", text, re.M)
    assert blocks and tasks, text
    return int(blocks[1].replace(",", "")), blocks[2], int(tasks[1].replace(",", ""))


def test_a_fresh_run_counts_every_block(tmp_path, capsys):
    wf = parse_workflow(GROWN)
    text = dry_run(tmp_path, capsys, GROWN, tmp_path / "new.zarr")
    assert plan_lines(text) == (wf.plan.total, "lam=1 x noise_ratio=2 x learner=2 x k=7 x T=4", wf.plan.tasks_total)
    work = planned_work(wf.plan, wf.coords, wf.experiment, wf.settings)
    assert work.blocks == wf.plan.total and work.tasks == wf.plan.tasks_total
    assert work.seconds >= wf.plan.tasks_total * TASK_SECONDS_OVERHEAD
    assert re.search(r"^estimated compute: \S+ \S+ on one core \(\S+ \S+ per task on average\)$", text, re.M), text


def test_extend_counts_the_stored_plan_and_only_the_new_blocks(tmp_path, capsys):
    out = tmp_path / "g.zarr"
    assert run_quietly(BASE, out).complete  # one task: computed in this process
    text = dry_run(tmp_path, capsys, GROWN, out, "--extend")
    blocks, chunks, tasks = plan_lines(text)
    assert chunks == "lam=2 x noise_ratio=2 x learner=2 x k=2 x T=2"  # the store's chunking, not GROWN's
    # lam 3 in 2 blocks, k 7 in 4, T 4 in 2; tasks of the stored 3 k-blocks x 2 T-blocks
    assert (blocks, tasks) == (2 * 4 * 2, 2 * 2 * 1)
    # a block is new where it reaches past the old cube (lam 2, k 5, T 3) along some axis
    new = sum(
        1
        for i in range(2)
        for j in range(4)
        for t in range(2)
        if min(2 * i + 2, 3) > 2 or min(2 * j + 2, 7) > 5 or min(2 * t + 2, 4) > 3
    )
    assert f"--extend would add 216 cells (120 -> 336) in {new} blocks (of {blocks};" in text
    assert f"on one core for the {new} blocks to compute (" in text


def test_a_resume_counts_what_is_left(tmp_path, capsys):
    text = BASE.replace("blocks_per_task = 1000\n", "blocks_per_task = 1\n")
    wf = parse_workflow(text)
    location = StoreLocation(str(tmp_path / "r.zarr"))
    state = create_store(wf, location)
    done = list(wf.plan.task_keys())[:5]
    for task in done:  # the real task body, in this process
        regions = new_regions(wf.plan.task_slices(task), state.complete_shape)
        compute_task(wf.experiment, wf.settings, location, wf.fingerprint, task, regions)
    printed = dry_run(tmp_path, capsys, text, location.url)
    assert plan_lines(printed) == (wf.plan.total, "lam=2 x noise_ratio=2 x learner=2 x k=2 x T=2", wf.plan.total)
    left = wf.plan.total - len(done)
    assert f"on one core for the {count(left, 'block')} to compute (" in printed
    assert f"({len(done)}/{wf.plan.total} blocks done: run resumes)" in printed
