"""Random streams keyed by the run seed and plain values: kept for importers of this path.

The streams live in :mod:`pipeline.models.simulation.streams` with the rest of the
simulation; this module re-exports its keys.
"""

from pipeline.models.simulation.streams import cell_rng, coordinate_key

__all__ = ["cell_rng", "coordinate_key"]
