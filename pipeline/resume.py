"""What a store holds versus what a workflow asks: create, resume or extend a cube.

The store's block plan is authoritative once it exists; ``new_regions`` tells a
block which of its cells still need computing after an extension.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


from pipeline import store
from pipeline.config import Workflow
from pipeline.errors import UsageError
from pipeline.experiments import get_experiment
from pipeline.grid import BlockPlan

@dataclass(frozen=True)
class StoreState:
    """The block plan a store was created with, and the region known complete
    before its latest extension (cells inside it are never recomputed)."""

    plan: BlockPlan
    complete_shape: tuple[int, ...]


def prepare_store(workflow: Workflow, location: store.StoreLocation, overwrite: bool = False,
                  extend: bool = False, say: Callable[[str], None] = print) -> StoreState:
    """Create, check or extend the cube for ``workflow``; return its block plan.

    Refuses (UsageError) a store made from a different workflow unless ``overwrite``,
    or unless ``extend`` and only axis values were added at the ends of axes.
    """
    if location.exists() and not overwrite:
        attrs = store.read_attrs(location)
        if attrs.get("workflow_fingerprint") != workflow.fingerprint():
            if extend:
                return extend_store(workflow, location, attrs, say)
            raise UsageError(
                f"store {location.url!r} was made from a different workflow "
                f"(fingerprint {attrs.get('workflow_fingerprint')} != {workflow.fingerprint()}); "
                "pass --overwrite to replace it, --extend to add axis values, or --out to write elsewhere"
            )
        return _stored_state(workflow, location, attrs)
    if location.anything_here() and not location.exists() and not overwrite:
        raise UsageError(f"{location.url!r} exists and is not an emergence cube; pass --overwrite to replace it")
    experiment = get_experiment(workflow.experiment)
    static = experiment.static(workflow.coords, workflow.settings)
    attrs = store.provenance(workflow.text, workflow.fingerprint(), workflow.experiment, workflow.plan)
    attrs["workflow_base_fingerprint"] = workflow.fingerprint(without_axes=True)
    ds, encoding = store.template(workflow.coords, static, experiment.variables(workflow.settings),
                                  workflow.plan, attrs)
    store.create_cube(location, ds, encoding, workflow.plan)
    return StoreState(workflow.plan, (0,) * len(workflow.plan.axes))


def _stored_state(workflow: Workflow, location: store.StoreLocation, attrs: Mapping[str, Any]) -> StoreState:
    """The stored plan, after checking the metadata agrees with the workflow."""
    try:
        plan = _stored_plan(attrs, workflow.plan.axes, workflow.plan.shape)
        group = store.open_group(location, mode="r")
        blocks = group[f"{store.DONE_GROUP}/done"]
        complete = tuple(int(n) for n in blocks.attrs.get("complete_shape", [0] * len(plan.axes)))
        shapes_ok = blocks.shape == plan.nblocks and all(
            group[a].shape == (n,) for a, n in zip(plan.axes, plan.shape, strict=True))
    except Exception as exc:
        raise UsageError(f"store {location.url!r}: metadata is corrupt or incomplete "
                         f"({type(exc).__name__}: {exc}); pass --overwrite to rebuild it") from None
    if not shapes_ok:
        raise UsageError(f"store {location.url!r}: array shapes disagree with its workflow "
                         "(an interrupted --extend?); pass --overwrite to rebuild it")
    return StoreState(plan, complete)


def extend_store(workflow: Workflow, location: store.StoreLocation, attrs: Mapping[str, Any],
                 say: Callable[[str], None] = print) -> StoreState:
    """Grow a complete cube to the workflow's axes (old values must be a prefix of new)."""
    if attrs.get("workflow_base_fingerprint") != workflow.fingerprint(without_axes=True):
        raise UsageError(f"store {location.url!r}: --extend may only add axis values; the workflow's "
                         "experiment, seed, method, mc_samples or settings differ from the store's")
    old_ds = store.open_cube(location)
    for axis in workflow.plan.axes:
        old = old_ds[axis].values
        new = workflow.coords[axis]
        prefix = new[: len(old)]
        same = len(new) >= len(old) and all(str(a) == str(b) if old.dtype.kind in "OUT" else a == b
                                            for a, b in zip(old.tolist(), prefix.tolist(), strict=True))
        if not same:
            raise UsageError(f"--extend: axis {axis!r} must keep its {len(old)} existing values first, in order, "
                             "and add new values after them")
    old_plan = _stored_plan(attrs, workflow.plan.axes, tuple(old_ds.sizes[a] for a in workflow.plan.axes))
    done = store.done_blocks(store.open_group(location, mode="r"))
    if len(done) != old_plan.total:
        raise UsageError(f"--extend: the cube has {len(done)}/{old_plan.total} blocks done; "
                         "finish it first (re-run the old workflow without --extend)")
    plan = BlockPlan(workflow.plan.axes, workflow.plan.shape, old_plan.chunks)
    experiment = get_experiment(workflow.experiment)
    static = experiment.static(workflow.coords, workflow.settings)
    store.grow_cube(location, workflow.coords, static, experiment.variables(workflow.settings), plan,
                    complete_shape=old_plan.shape,
                    attrs={"workflow": workflow.text, "workflow_fingerprint": workflow.fingerprint(),
                           "blocks_total": plan.total})
    say(f"{location.url}: extended from {old_plan.cells:,} to {plan.cells:,} cells")
    return StoreState(plan, old_plan.shape)


def _stored_plan(attrs: Mapping[str, Any], axes: tuple[str, ...], shape: tuple[int, ...]) -> BlockPlan:
    """The block plan recorded in a cube's attributes, over a grid of ``shape``."""
    chunks = json.loads(attrs["block_chunks"])
    return BlockPlan(axes, shape, tuple(int(chunks[a]) for a in axes))


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
