"""Axes and the block plan: integer spacing, chunks, cost-based block sizes, tasks of blocks."""

from __future__ import annotations

import math

import numpy as np

from pipeline.plan.config import parse_workflow
from pipeline.plan.grid import (
    MIN_PARALLEL,
    TARGET_BLOCK_SECONDS,
    TASK_SECONDS,
    BlockPlan,
    geom_axis,
    plan_blocks,
    range_axis,
)
from tests.helpers import hidden, observed


def test_integer_axes_round_and_drop_repeats():
    assert geom_axis(1, 10, 8, integer=True).tolist() == [1, 2, 3, 4, 5, 7, 10]
    assert range_axis(2, 9, 3).tolist() == [2, 5, 8]


def test_tasks_tile_the_blocks_and_count_the_edges():
    plan = BlockPlan(("a", "b"), (10, 7), (3, 2), (2, 3))
    assert plan.nblocks == (4, 4) and plan.ntasks == (2, 2) and plan.shard == (6, 6)
    counts = {t: plan.task_block_count(t) for t in plan.task_keys()}
    assert counts == {(0, 0): 6, (0, 1): 2, (1, 0): 6, (1, 1): 2} and sum(counts.values()) == plan.total
    covered = np.zeros(plan.shape, dtype=int)
    for task in plan.task_keys():
        s = plan.task_slices(task)
        covered[s["a"], s["b"]] += 1
    assert (covered == 1).all()  # every cell in exactly one task


def flat(cost_per_cell: float):
    return lambda region: math.prod(s.stop - s.start for s in region.values()) * cost_per_cell


def test_expensive_cells_spread_over_many_blocks():
    plan = plan_blocks(("s", "d"), (4, 64), {}, flat(0.5))  # 128 s of work
    costs = [flat(0.5)(plan.slices(k)) for k in plan]
    assert max(costs) <= TARGET_BLOCK_SECONDS and plan.total >= MIN_PARALLEL
    assert plan.task_blocks == (1, 1)


def test_shared_work_is_not_split_apart():
    """An expensive computation shared by every d and draw of one T (the observed
    factorisation): blocks split along T only; splitting d or draw would repeat it."""

    def factorisation_per_T(region):
        cells = math.prod(s.stop - s.start for s in region.values())
        return 8.0 * (region["T"].stop - region["T"].start) + 1e-5 * cells

    plan = plan_blocks(("s", "d", "T", "draw"), (1, 1025, 10, 100), {}, factorisation_per_T)
    assert plan.chunks == (1, 1025, 1, 100) and plan.total == 10
    total = sum(factorisation_per_T(plan.slices(k)) for k in plan)
    assert (
        total
        <= factorisation_per_T({"s": slice(0, 1), "d": slice(0, 1025), "T": slice(0, 10), "draw": slice(0, 100)})
        * 1.001
    )


def test_cheap_sweeps_make_no_tiny_blocks_and_group_requested_ones():
    plan = plan_blocks(("s", "d"), (4, 64), {}, flat(1e-9))
    assert plan.total == 1  # nothing worth splitting
    tiny = plan_blocks(("s", "d"), (100, 100), {"s": 1, "d": 1}, lambda r: 1e-4)
    assert tiny.total == 10_000 and tiny.tasks_total < tiny.total / 100
    assert math.prod(tiny.task_blocks) * 1e-4 <= TASK_SECONDS * 1.01
    capped = plan_blocks(("s", "d"), (100, 100), {"s": 1, "d": 1}, lambda r: 1e-4, max_blocks_per_task=1)
    assert capped.tasks_total == 10_000
    # a cluster's larger tasks: ten times the seconds, a tenth of the tasks, never below MIN_PARALLEL
    costlier = plan_blocks(("s", "d"), (100, 100), {"s": 1, "d": 1}, lambda r: 1e-2)  # 100 s in all
    big = plan_blocks(("s", "d"), (100, 100), {"s": 1, "d": 1}, lambda r: 1e-2, task_seconds=10 * TASK_SECONDS)
    assert big.chunks == costlier.chunks and big.tasks_total <= costlier.tasks_total / 8
    assert big.tasks_total >= MIN_PARALLEL
    huge = plan_blocks(("s", "d"), (100, 100), {"s": 1, "d": 1}, lambda r: 1e-4, task_seconds=3600)
    assert huge.tasks_total >= MIN_PARALLEL


def test_workflow_plans_use_the_experiments_estimates():
    cheap = parse_workflow(hidden(chunks={"k": 1}))
    assert cheap.plan.chunks[3] == 1 and cheap.plan.tasks_total == 1  # requested tiny blocks, grouped
    per_block = parse_workflow(hidden(chunks={"k": 1, "blocks_per_task": 1}))
    assert per_block.plan.tasks_total == per_block.plan.total == 6
    many = {"noise_ratio": {"geom": [0.01, 100.0], "num": 100}, "k": {"range": [1, 100]}}
    small_tasks = parse_workflow(hidden(chunks={"noise_ratio": 1, "k": 1}, **many)).plan
    large_tasks = parse_workflow(hidden(chunks={"noise_ratio": 1, "k": 1, "task_seconds": 2.5}, **many)).plan
    assert large_tasks.chunks == small_tasks.chunks and large_tasks.tasks_total < small_tasks.tasks_total
    heavy = parse_workflow(observed(spectrum=["1.0^16, 0.5^16"], family=["full"], T=[100, 10**4, 10**6]))
    assert heavy.plan.total > 1  # a few expensive cells (n = 32, D = 1024: ~30 s) still use every worker
