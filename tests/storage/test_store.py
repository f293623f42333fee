"""The done state of a real Zarr store: tasks' marks, the ledger they are folded into, and
when the driver folds them."""

from __future__ import annotations

from pathlib import Path

from pipeline.driver import engine, resume
from pipeline.plan.config import parse_workflow
from pipeline.storage import ledger, nodes
from pipeline.storage.location import StoreLocation
from tests.helpers import hidden, run_quietly

ONE_BLOCK_TASKS = hidden("marks", chunks={"blocks_per_task": 1, "noise_ratio": 1, "k": 1})


def _standing(location: StoreLocation) -> list[str]:
    return sorted(p.name for p in Path(location.url, ledger.DONE_GROUP, "done").glob("c.*"))


def test_marks_fold_into_the_ledger_and_none_is_lost(tmp_path):
    wf = parse_workflow(ONE_BLOCK_TASKS)
    location = StoreLocation(str(tmp_path / "marks.zarr"))
    resume.create_store(wf, location)
    tasks = list(wf.plan.task_keys())
    assert len(tasks) >= 8 and ledger.done_tasks(location) == set()
    group = nodes.open_group(location)
    for task in tasks[:5]:
        ledger.mark_done(group, task)
    assert ledger.done_tasks(location) == set(tasks[:5]) and len(_standing(location)) == 5
    assert ledger.compact_done(location) == 5
    assert _standing(location) == [] and ledger.read_ledger(location) == set(tasks[:5])
    for task in tasks[4:7]:  # one of them is in the ledger already
        ledger.mark_done(group, task)
    assert ledger.done_tasks(location) == set(tasks[:7]) and ledger.count_done(location, wf.plan) == 7
    assert ledger.compact_done(location) == 7
    assert _standing(location) == [] and ledger.read_ledger(location) == set(tasks[:7])


def test_the_driver_folds_by_time_or_by_count():
    assert not engine.fold_due(0.0, 0)
    assert engine.fold_due(engine.COMPACT_SECONDS + 0.1, 1)
    assert engine.fold_due(0.0, engine.COMPACT_TASKS)
    assert not engine.fold_due(engine.COMPACT_SECONDS / 2, engine.COMPACT_TASKS - 1)


def test_a_run_folds_as_it_goes_and_leaves_no_mark_standing(tmp_path, threaded_cluster, monkeypatch):
    folds: list[int] = []
    real = ledger.compact_done

    def counting(location: StoreLocation) -> int:
        folds.append(len(_standing(location)))
        return real(location)

    monkeypatch.setattr(engine, "COMPACT_TASKS", 3)
    monkeypatch.setattr(ledger, "compact_done", counting)
    wf = parse_workflow(ONE_BLOCK_TASKS)
    location = StoreLocation(str(tmp_path / "run.zarr"))
    run_quietly(wf, location.url, threaded_cluster)
    tasks = set(wf.plan.task_keys())
    # one fold at the start, one every 3 finished tasks, one at the end
    assert len(folds) >= 2 + len(tasks) // 3 - 1
    assert _standing(location) == [] and ledger.read_ledger(location) == tasks
