"""What a store holds against what a workflow asks: one vocabulary for ``run``,
``run --dry-run`` and ``figures``.

``new``             nothing (or an empty folder) at the path: a run creates the cube;
``foreign``         something this tool did not make, or another kind of output: refused;
``other_workflow``  a cube of a different workflow: ``--overwrite`` replaces it;
``extendable``      a complete cube whose axes the workflow only appends to: ``--extend``;
``incomplete``      a cube of this workflow with blocks still to compute: a run resumes;
``complete``        a cube of this workflow, every block done: nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from pipeline.core.wording import count
from pipeline.storage.guard import Found, identify
from pipeline.storage.location import StoreLocation

if TYPE_CHECKING:
    from pipeline.plan.config import Workflow

State = Literal["new", "foreign", "other_workflow", "extendable", "incomplete", "complete"]


@dataclass(frozen=True)
class StoreStatus:
    state: State
    found: Found
    blocks_done: int = 0
    blocks_total: int = 0

    def describe(self) -> str:
        """One phrase for messages and ``--dry-run``."""
        return {
            "new": "new",
            "foreign": f"holds {self.found.value}: run refuses to write there",
            "other_workflow": "a cube of a different workflow: run refuses without --overwrite",
            "extendable": "a complete cube the workflow extends: --extend computes only the new cells "
            "(or --overwrite replaces it)",
            "incomplete": f"{self.blocks_done}/{count(self.blocks_total, 'block')} done: run resumes",
            "complete": f"complete ({count(self.blocks_total, 'block')}): nothing to do",
        }[self.state]


def store_status(workflow: Workflow, location: StoreLocation) -> StoreStatus:
    """The state of ``location`` for ``workflow`` (reads metadata and done-marks only)."""
    from pipeline.storage import ledger, nodes

    found = identify(location)
    if found in (Found.NOTHING, Found.EMPTY_FOLDER):
        return StoreStatus("new", found)
    if found is not Found.CUBE:
        return StoreStatus("foreign", found)
    attrs = nodes.read_attrs(location)
    done, total = ledger.count_done(location), int(attrs["blocks_total"])
    if attrs.get("workflow_fingerprint") == workflow.fingerprint:
        return StoreStatus("complete" if done == total else "incomplete", found, done, total)
    if done == total and extends(workflow, location, attrs):
        return StoreStatus("extendable", found, done, total)
    return StoreStatus("other_workflow", found, done, total)


def extends(workflow: Workflow, location: StoreLocation, attrs: dict[str, object]) -> bool:
    """Whether ``workflow`` differs from the cube only by values appended to its axes."""
    if attrs.get("workflow_base_fingerprint") != workflow.base_fingerprint:
        return False
    return not axis_mismatches(workflow, location)


def axis_mismatches(workflow: Workflow, location: StoreLocation) -> list[str]:
    """Axes whose stored values are not a prefix of the workflow's (empty: extendable)."""
    from pipeline.storage import nodes

    group = nodes.open_group(location, mode="r")
    bad = []
    for axis in workflow.plan.axes:
        old = np.asarray(nodes.array(group, axis)[...]) if axis in group else None
        new = workflow.coords[axis]
        if old is None or len(old) > len(new):
            bad.append(axis)
            continue
        text = old.dtype.kind in "OUT"
        if not all(
            (str(a) == str(b)) if text else (a == b)
            for a, b in zip(old.tolist(), new[: len(old)].tolist(), strict=True)
        ):
            bad.append(axis)
    return bad
