"""The system a fitted FIR filter is learned on: a spectrum (or a scalar ``lam``), a noise ratio.

A system is named by text: a spectrum of the MATH §1.1 grammar, or for the scalar experiment
``hidden`` with a ``lam`` axis the one-term spectrum ``repr(float(lam))`` — MATH §5.2: a
one-term real spectrum is the §2 system, so both variants share the Kalman solution, the risk
kernel and (for equal text) the random streams. The float64 Jordan matrix ``A`` of that text
is the system that generates the data and whose Kalman predictor is the Bayes predictor.

Supported (:func:`check_supported`): every eigenvalue with modulus ``<= 1`` (stable and
marginal, real or complex, Jordan blocks of any size allowed by Assumption 4.1), and real
eigenvalues with modulus ``rho > 1`` up to ``rho^T <= 2^26``
(:func:`pipeline.models.fitted_fir.statistics.check_horizon`: beyond it the float64 outputs
lose the process noise below their last bit, so they are no longer a sample of the model);
complex pairs with modulus ``> 1`` raise :class:`UnsupportedSystem` (their reference filter,
MATH §6.4, is not exact in floating point). Noise ratios must be finite and ``> 0`` (at ``r = 0`` the Kalman closed loop
is nilpotent and the ball kernel cannot certify exact zeros).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.models.hidden_spectrum.kalman import KalmanFilter, kalman_filter
from pipeline.models.hidden_spectrum.system import as_spectrum, check_observable, check_observation, check_ratio
from pipeline.models.spectra import Spectrum

__all__ = ["FittedSystem", "UnsupportedSystem", "check_supported", "fitted_system", "system_text"]

FloatArray = npt.NDArray[np.float64]


class UnsupportedSystem(ValueError):
    """A system whose least-squares FIR fit this package cannot make exact; one-line message."""


def system_text(system: str | float) -> str:
    """The spectrum text of a system: a spectrum text as given, or ``repr(float(lam))`` for a
    scalar ``lam`` (``1`` and ``1.0`` both give ``"1.0"``)."""
    if isinstance(system, str):
        return system
    lam = float(system)
    if not math.isfinite(lam):
        raise ValueError(f"lam = {lam!r}: must be finite")
    return repr(lam)


def check_supported(sp: Spectrum) -> None:
    """:class:`UnsupportedSystem` for a complex pair of modulus ``> 1`` (see the module docstring)."""
    for b in sp.blocks:
        if b.imag != 0.0 and sp.groups[b.group].modulus > 1.0:
            raise UnsupportedSystem(
                f"spectrum {sp.text!r}: fitted FIR filters support complex pairs of modulus <= 1 only "
                f"(got modulus {sp.groups[b.group].modulus!r})"
            )


@dataclass(frozen=True)
class FittedSystem:
    """One (system, noise ratio) of a fitted-filter cell.

    ``text`` the spectrum text (the stream key); ``spectrum`` the parsed spectrum; ``filt`` the
    stationary Kalman predictor (``A`` (n, n) real Jordan matrix, ``C`` (n,), ``P`` (n, n),
    float64 roundings of the 320-bit solution); ``chol_P`` (n, n) the lower Cholesky factor of
    ``P`` (the stationary start ``x_0 = chol_P z``); ``noise_ratio`` ``r > 0``.
    """

    text: str
    spectrum: Spectrum
    noise_ratio: float
    observation: str
    filt: KalmanFilter
    chol_P: FloatArray

    @property
    def n(self) -> int:
        return int(self.spectrum.n)


def fitted_system(system: str | float, noise_ratio: float, observation: str = "sum") -> FittedSystem:
    """The :class:`FittedSystem` of a spectrum text or scalar ``lam`` and a noise ratio.

    ``ValueError`` (one line) for a bad spectrum, noise ratio or observation,
    :class:`~pipeline.models.hidden_spectrum.system.ObservabilityError` for a spectrum that
    violates Assumption 4.1, :class:`UnsupportedSystem` outside the supported range.
    """
    sp = as_spectrum(system_text(system))
    check_observation(observation)
    check_observable(sp, observation)
    check_supported(sp)
    r = check_ratio(noise_ratio)
    filt = kalman_filter(sp, r, observation)
    chol: FloatArray = np.asarray(np.linalg.cholesky(filt.P), dtype=np.float64)
    chol.setflags(write=False)
    return FittedSystem(sp.text, sp, r, observation, filt, chol)
