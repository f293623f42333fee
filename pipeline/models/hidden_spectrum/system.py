"""The hidden-state system of a spectrum (MATH §5.1): its limits, observation row and observability.

Also the checks every entry point applies to its inputs (learner, observation, noise ratio,
a block's coordinates), each raising ``ValueError`` naming the bad input.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pipeline.models.fir import LEARNERS, check_learner, check_taps_and_horizons
from pipeline.models.spectra import EigenGroup, Spectrum, SpectrumError, parse_spectrum

__all__ = [
    "LEARNERS",
    "MAX_DIMENSION",
    "OBSERVATIONS",
    "ObservabilityError",
    "as_spectrum",
    "check_block",
    "check_learner",
    "check_observable",
    "check_observation",
    "check_ratio",
    "observation_matrix",
    "unstable_groups",
]

OBSERVATIONS: tuple[str, ...] = ("sum",)
MAX_DIMENSION = 16  # hidden-state systems (observed ones go to spectra.MAX_DIMENSION)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ObservabilityError(ValueError):
    """The observation cannot see a mode with ``|lam| >= 1`` (Assumption 4.1); one-line message."""


def as_spectrum(spectrum: Spectrum | str) -> Spectrum:
    """The parsed spectrum; ``SpectrumError`` beyond :data:`MAX_DIMENSION` (the ball-arithmetic cost)."""
    sp = spectrum if isinstance(spectrum, Spectrum) else parse_spectrum(spectrum)
    if sp.n > MAX_DIMENSION:
        raise SpectrumError(
            f"spectrum {sp.text!r}: dimension {sp.n} exceeds the maximum {MAX_DIMENSION} of hidden-state systems"
        )
    return sp


def unstable_groups(sp: Spectrum) -> list[EigenGroup]:
    """The eigenvalue groups with ``|lam| >= 1``."""
    return [g for g in sp.groups if g.unstable]


def _group_text(sp: Spectrum, g: EigenGroup) -> str:
    if g.is_pair:
        return f"{g.key[1]!r}@{g.key[-1]!r}"
    return repr(g.key[1])


def check_observation(observation: str) -> None:
    """``ValueError`` unless ``observation`` is one of :data:`OBSERVATIONS`."""
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation = {observation!r}: allowed {', '.join(map(repr, OBSERVATIONS))}")


def observation_matrix(spectrum: Spectrum | str, observation: str = "sum") -> FloatArray:
    """The observation row ``C`` (shape ``(n,)``): 1 at the first coordinate of every Jordan block."""
    sp = as_spectrum(spectrum)
    check_observation(observation)
    C = np.zeros(sp.n)
    for b in sp.blocks:
        C[b.start] = 1.0
    return C


def check_observable(spectrum: Spectrum | str, observation: str = "sum") -> None:
    """Raise :class:`ObservabilityError` (one-line message) unless ``observation`` sees every
    mode with ``|lam| >= 1``, i.e. every such eigenvalue (or pair) has a single Jordan block."""
    sp = as_spectrum(spectrum)
    check_observation(observation)
    for g in unstable_groups(sp):
        if len(g.sizes) > 1:
            raise ObservabilityError(
                f"spectrum {sp.text!r}: eigenvalue {_group_text(sp, g)} (|lam| = {g.modulus!r} >= 1) has "
                f'{len(g.sizes)} Jordan blocks {list(g.sizes)}, so observation = "{observation}" cannot observe '
                "all of its modes (Assumption 4.1 needs the modes with |lam| >= 1 observable)"
            )


def check_ratio(r: float) -> float:
    """The noise ratio as a float; ``ValueError`` unless finite and ``> 0``."""
    r = float(r)
    if not (math.isfinite(r) and r > 0.0):
        raise ValueError(f"noise_ratio = {r!r}: must be finite and > 0")
    return r


def check_block(
    noise_ratio: npt.ArrayLike, learner: str, k_in: npt.ArrayLike, T_in: npt.ArrayLike
) -> tuple[FloatArray, IntArray, IntArray]:
    """Validated ``(noise_ratio (R,), k (K,), T (N,))`` of a block; ``ValueError`` naming the bad input."""
    r = np.ascontiguousarray(noise_ratio, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"noise_ratio must be a 1-D array, got shape {r.shape}")
    check_learner(learner)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise ValueError("noise_ratio must be finite and > 0")
    k, T = check_taps_and_horizons(k_in, T_in)
    return r, k, T
