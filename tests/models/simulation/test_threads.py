"""The compiled samplers and sums release the GIL and share no mutable state: training sets
computed in several threads at once have the bits of the same sets computed one by one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.models.fitted.cells import training_set
from pipeline.models.fitted_fir import fitted_system, training_statistics

OBSERVED = ("1.1^2, 0.4", "0.9@30^2, 1.0", "1.0^3")
HIDDEN = ("1.0^2, 1.0@60", "0.9@30, 0.5")


def _observed(spectrum: str) -> list[np.ndarray]:
    mo = training_set(spectrum, 3, (spectrum, 0), [7, 50], [5, 70])
    return [mo.S_hi, mo.S_lo, mo.W_hi, mo.W_lo, mo.e]


def _hidden(text: str) -> list[np.ndarray]:
    st = training_statistics(fitted_system(text, 2.0), seed=3, fit=1, T=[10, 300], trajectories=[1, 40], k_max=4)
    return [st.hi, st.lo]


def test_threads_give_the_serial_bits():
    jobs = [(_observed, s) for s in OBSERVED] + [(_hidden, t) for t in HIDDEN]
    serial = [f(x) for f, x in jobs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):
            threaded = list(pool.map(lambda job: job[0](job[1]), jobs * 2))
            for got, want in zip(threaded, serial * 2, strict=True):
                assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
