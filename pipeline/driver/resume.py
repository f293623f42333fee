"""Creating, resuming and extending the cube of a workflow (the engine decides which).

The store's block plan is authoritative once it exists; ``new_regions`` tells a
block which of its cells still need computing after an extension.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import UsageError
from pipeline.core.wording import count
from pipeline.driver.status import axis_mismatches
from pipeline.experiments import get_experiment
from pipeline.plan.config import Workflow
from pipeline.plan.grid import BlockPlan
from pipeline.storage import layout, ledger, nodes, provenance
from pipeline.storage.location import StoreLocation


@dataclass(frozen=True)
class StoreState:
    """The block plan a store was created with, and the region known complete
    before its latest extension (cells inside it are never recomputed)."""

    plan: BlockPlan
    complete_shape: tuple[int, ...]


def create_store(workflow: Workflow, location: StoreLocation) -> StoreState:
    """Write a new cube's metadata, coordinates and static part (the caller checked the path)."""
    experiment = get_experiment(workflow.experiment)
    static = experiment.static(workflow.coords, workflow.settings)
    variables = experiment.variables(workflow.settings)
    attrs = provenance.provenance(
        workflow.text,
        workflow.fingerprint,
        workflow.base_fingerprint,
        workflow.experiment,
        workflow.plan,
        workflow.source,
    )
    attrs["result_variables"] = json.dumps(list(variables))
    ds, encoding = layout.template(workflow.coords, experiment.axis_rules, static, variables, workflow.plan, attrs)
    layout.create_cube(location, ds, encoding, workflow.plan)
    return StoreState(workflow.plan, (0,) * len(workflow.plan.axes))


def stored_state(workflow: Workflow, location: StoreLocation) -> StoreState:
    """The stored plan of a cube of ``workflow``, after checking its metadata agrees."""
    attrs = nodes.read_attrs(location)
    try:
        plan = _stored_plan(attrs, workflow.plan.axes, workflow.plan.shape, ledger.task_blocks(location))
        group = nodes.open_group(location, mode="r")
        blocks = nodes.array(group, f"{ledger.DONE_GROUP}/done")
        complete = tuple(nodes.int_list(blocks.attrs.get("complete_shape"), [0] * len(plan.axes)))
        shapes_ok = blocks.shape == plan.ntasks and all(
            nodes.array(group, a).shape == (n,) for a, n in zip(plan.axes, plan.shape, strict=True)
        )
    except Exception as exc:
        raise UsageError(
            f"store {location.url!r}: metadata is corrupt or incomplete "
            f"({type(exc).__name__}: {exc}); pass --overwrite to rebuild it"
        ) from None
    if not shapes_ok:
        raise UsageError(
            f"store {location.url!r}: array shapes disagree with its workflow "
            "(an interrupted --extend?); pass --overwrite to rebuild it"
        )
    return StoreState(plan, complete)


def extension_plan(workflow: Workflow, location: StoreLocation) -> tuple[BlockPlan, BlockPlan]:
    """(old plan, grown plan) for ``--extend``; UsageError saying why the cube cannot grow."""
    attrs = nodes.read_attrs(location)
    if (
        attrs.get("experiment") != workflow.experiment
        or attrs.get("workflow_base_fingerprint") != workflow.base_fingerprint
    ):
        raise UsageError(
            f"store {location.url!r}: --extend may only add axis values; the workflow's "
            "experiment, seed, method, mc_samples or settings differ from the store's"
        )
    bad = axis_mismatches(workflow, location)
    group = nodes.open_group(location, mode="r")
    if bad:
        raise UsageError(
            f"--extend: axis {bad[0]!r} must keep its {nodes.array(group, bad[0]).shape[0]} existing values "
            "first, in order, and add new values after them"
        )
    old_plan = ledger.stored_plan(location)
    done = ledger.count_done(location, old_plan)
    if done != old_plan.total:
        raise UsageError(
            f"--extend: the cube has {done}/{count(old_plan.total, 'block')} done; "
            "finish it first (re-run the old workflow without --extend)"
        )
    return old_plan, BlockPlan(workflow.plan.axes, workflow.plan.shape, old_plan.chunks, old_plan.task_blocks)


def extend_store(workflow: Workflow, location: StoreLocation, say: Callable[[str], None] = print) -> StoreState:
    """Grow a complete cube to the workflow's axes (old values must be a prefix of new)."""
    old_plan, plan = extension_plan(workflow, location)
    experiment = get_experiment(workflow.experiment)
    static = experiment.static(workflow.coords, workflow.settings)
    layout.grow_cube(
        location,
        workflow.coords,
        static,
        experiment.variables(workflow.settings),
        plan,
        complete_shape=old_plan.shape,
        attrs={
            "workflow": workflow.text,
            "workflow_fingerprint": workflow.fingerprint,
            "workflow_file": workflow.source,
            "blocks_total": plan.total,
        },
    )
    say(f"{location.url}: extended from {count(old_plan.cells, 'cell')} to {count(plan.cells, 'cell')}")
    return StoreState(plan, old_plan.shape)


def _stored_plan(
    attrs: Mapping[str, Any], axes: tuple[str, ...], shape: tuple[int, ...], task_blocks: tuple[int, ...]
) -> BlockPlan:
    """The block plan recorded in a cube, over a grid of ``shape``."""
    chunks = json.loads(attrs["block_chunks"])
    return BlockPlan(axes, shape, tuple(int(chunks[a]) for a in axes), task_blocks)


def new_regions(block: Mapping[str, slice], complete_shape: tuple[int, ...]) -> list[dict[str, slice]]:
    """The block's cells outside the complete region, as disjoint rectangles.

    Rectangle ``i`` takes axes before ``i`` inside the complete region, axis ``i``
    outside it, and later axes whole. For a fresh cube this is the block itself.
    """
    axes = list(block)
    regions = []
    for i in range(len(axes)):
        region = {}
        for j, axis in enumerate(axes):
            s = block[axis]
            lo, hi = s.start, s.stop
            if j < i:
                hi = min(hi, complete_shape[j])
            elif j == i:
                lo = max(lo, complete_shape[j])
            if hi <= lo:
                break
            region[axis] = slice(lo, hi)
        else:
            regions.append(region)
    return regions
