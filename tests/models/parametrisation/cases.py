"""Spectra and family pairs the learner-family tests share."""

from __future__ import annotations

from pipeline.models import parametrisation as pm

PAIRS = [(a, l) for a in pm.LEARNER_FAMILIES for l in pm.LEARNER_FAMILIES]


SPECTRA = [
    "1.0, 0.5",
    "1.0, -1.0, 0.5",
    "1.0@45, 0.5",
    "1.0^2, 0.5",
    "1.0^3, 0.5",
    "1.0^[1,1], 0.5",
    "1.0^[1,1]",
    "1.0",
    "1.05@30, 0.3^2",
    "1.0^[2,1], -0.6",
    "0.9@100^2",
    "0.6@30^2, 1.1, -1.0^2",
]


def _u(sp):
    return sp.unstable_indices
