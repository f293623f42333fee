"""``emergence summary``: a few lines on what a cube shows (used by ``make demo``).

The lines come from the cube's experiment, drawn from its thresholds; the head names the cube's axes
(``Experiment.axes``), growth needs two horizons (``Experiment.horizon``), and the last line counts
how the cube's comparisons with theory stand (agree, disagree, unresolved, not known yet).
"""

from __future__ import annotations

from pipeline.storage.location import StoreLocation


def summarize(location: StoreLocation, partial: bool = False) -> str:
    from pipeline.core import verdicts
    from pipeline.core.types import BLOCKS_ATTR, PARTIAL_ATTR
    from pipeline.experiments import experiment_of
    from pipeline.readers.cubes import open_cube
    from pipeline.readers.thresholding import compute_thresholds

    ds = open_cube(location, partial=partial)
    experiment = experiment_of(ds)
    shape = " x ".join(f"{ds.sizes[d]} {d}" for d in experiment.axes)
    head = f"{location.url} ({experiment.name}): {shape}; blocks {ds.attrs[BLOCKS_ATTR]} done"
    if ds.attrs.get(PARTIAL_ATTR):
        head += f" [{ds.attrs[PARTIAL_ATTR]}: findings that need unfinished cells say '?' or '{verdicts.UNKNOWN_TEXT}']"
    if ds.sizes.get(experiment.horizon, 0) < 2:
        return f"{head}\n(one horizon only: nothing to tell about growth in {experiment.horizon})"
    th = compute_thresholds(ds, source=location.url)
    return "\n".join([head, *experiment.summary(ds, th), verdicts.counts_line(th)])
