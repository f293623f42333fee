"""What several test modules feed in or compare against, in one place: a good workflow and
the bad ones that each break one rule, and the reference values of MATH §2.5.

The MATH values are kept as printed there (strings), so that a test holds a result to the
precision the table gives and no closer: ``assert_as_printed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

# --------------------------------------------------------------------------- workflows

GOOD = """
experiment = "hidden"
name = "t"
[grid]
lam = [1.0]
noise_ratio = { geom = [0.1, 10.0], num = 3 }
learner = ["truncated_kalman", "best_fir"]
k = { range = [1, 8, ], step = 1 }
T = { geom = [10, 1e6], num = 6 }
"""
"""A valid hidden workflow: 288 cells (1 lam x 3 noise ratios x 2 learners x 8 k x 6 T)."""

BAD: dict[str, tuple[str, str]] = {
    "unknown top-level key": ("foo = 1\n" + GOOD, "foo"),
    "seed wrong type": ('seed = "x"\n' + GOOD, "seed"),
    "seed bool": ("seed = true\n" + GOOD, "seed"),
    "unknown method": ('method = "fast"\n' + GOOD, "method"),
    "unknown experiment": (GOOD.replace('"hidden"', '"other"'), "experiment"),
    "missing experiment": (GOOD.replace('experiment = "hidden"', ""), "experiment"),
    "bad name": (GOOD.replace('name = "t"', 'name = "a/b"'), "name"),
    "NaN value": (GOOD.replace("lam = [1.0]", "lam = [nan]"), "grid.lam[0]"),
    "infinite value": (GOOD.replace("lam = [1.0]", "lam = [inf]"), "grid.lam[0]"),
    "duplicate values": (GOOD.replace("lam = [1.0]", "lam = [1.0, 1.0]"), "grid.lam"),
    "empty axis": (GOOD.replace("lam = [1.0]", "lam = []"), "grid.lam"),
    "k below 1": (GOOD.replace("k = { range = [1, 8, ], step = 1 }", "k = [0, 1]"), "grid.k"),
    "T below 1": (GOOD.replace("T = { geom = [10, 1e6], num = 6 }", "T = [0]"), "grid.T"),
    "non-integer T": (GOOD.replace("T = { geom = [10, 1e6], num = 6 }", "T = [2.5]"), "grid.T[0]"),
    "noise ratio zero": (
        GOOD.replace("noise_ratio = { geom = [0.1, 10.0], num = 3 }", "noise_ratio = [0.0]"),
        "grid.noise_ratio",
    ),
    "noise ratio negative": (
        GOOD.replace("noise_ratio = { geom = [0.1, 10.0], num = 3 }", "noise_ratio = [-1.0]"),
        "grid.noise_ratio",
    ),
    "geom through zero": (GOOD.replace("geom = [0.1, 10.0]", "geom = [0.0, 10.0]"), "grid.noise_ratio.geom"),
    "unknown learner": (GOOD.replace('"best_fir"]', '"lstm"]'), "grid.learner"),
    "unknown axis": (GOOD + "foo = [1]\n", "grid.foo"),
    "missing axis": (GOOD.replace("lam = [1.0]\n", ""), "grid.lam"),
    "reversed range": (GOOD.replace("range = [1, 8, ]", "range = [8, 1]"), "grid.k.range"),
    "range step zero": (GOOD.replace("step = 1", "step = 0"), "grid.k.step"),
    "geom without num": (GOOD.replace(", num = 3", ""), "grid.noise_ratio.num"),
    "two forms": (GOOD.replace("num = 3", "num = 3, linspace = [1, 2]"), "grid.noise_ratio"),
    "string for float axis": (GOOD.replace("lam = [1.0]", 'lam = ["one"]'), "grid.lam[0]"),
    "bare scalar axis": (GOOD.replace("lam = [1.0]", "lam = 1.0"), "grid.lam"),
    "chunks unknown axis": (GOOD + "[chunks]\nfoo = 2\n", "chunks.foo"),
    "chunks zero": (GOOD + "[chunks]\nk = 0\n", "chunks.k"),
    "task seconds zero": (GOOD + "[chunks]\ntask_seconds = 0\n", "chunks.task_seconds"),
    "task seconds nan": (GOOD + "[chunks]\ntask_seconds = nan\n", "chunks.task_seconds"),
    "task seconds text": (GOOD + '[chunks]\ntask_seconds = "2 s"\n', "chunks.task_seconds"),
    "task seconds a day": (GOOD + "[chunks]\ntask_seconds = 86400\n", "chunks.task_seconds"),
    "mc_samples too small": ("mc_samples = 1\n" + GOOD, "mc_samples"),
    "grid not a table": ('experiment = "hidden"\nname = "t"\ngrid = 3\n', "grid"),
}
"""Each case: a workflow that breaks one rule, and the key its error must name."""

# --------------------------------------------------------------------------- MATH §2.5 (q = 1)

KALMAN: dict[tuple[float, float], tuple[str, str, str]] = {
    (1.0, 4.0): ("2.56155281281", "0.390388203202", "0.609611796798"),
    (1.0, 1.0): ("1.61803398875", "0.61803398875", "0.38196601125"),
    (0.9, 4.0): ("2.12359676582", "0.312110212727", "0.587889787273"),
}
"""(lam, noise_ratio) -> the stationary Kalman filter's (P, K, a)."""

TRUNCATED_KALMAN_K = (1, 3)
TRUNCATED_KALMAN_T = (1, 2, 10, 1000)
TRUNCATED_KALMAN_RISK: tuple[tuple[str, ...], ...] = (
    ("0", "0.185813271398", "1.67231944258", "185.627458126"),
    ("0", "0", "0.143707093855", "25.5338251123"),
)
"""The risk of ``truncated_kalman`` at lam = 1, noise_ratio = 4, for k in TRUNCATED_KALMAN_K
(rows) and T in TRUNCATED_KALMAN_T (columns); a printed "0" is an exact zero (T <= k)."""


def truncated_kalman_risk(k: int, T: int) -> str:
    """The printed risk of ``truncated_kalman`` at lam = 1, noise_ratio = 4, ``k``, ``T``."""
    return TRUNCATED_KALMAN_RISK[TRUNCATED_KALMAN_K.index(k)][TRUNCATED_KALMAN_T.index(T)]


BEST_FIR = {"lam": 1.0, "noise_ratio": 4.0, "k": 2, "T": 50}
BEST_FIR_THETA = ("0.5259634624", "0.411993023")
BEST_FIR_RISK = "0.542301036622"
"""``best_fir`` at the cell BEST_FIR: its filter theta and its risk R_T."""

ACROSS_MACHINES = 1e-12
"""The README's promise ("Same cell, same bits"): across CPUs and BLAS builds, cubes of one
workflow agree to 1e-12 relative in ``log10_risk``; bits are promised on one machine only."""

FLOAT_SLACK = ACROSS_MACHINES
"""Relative: what a float64 result may differ from the exact value and still be right on any
CPU (kernels are closer than that on one machine)."""

ULPS = 4 * float(np.finfo(np.float64).eps)
"""A few units in the last place, relative: the rounding of one or two float64 operations."""


def assert_agree_across_machines(
    got: np.ndarray, stored: np.ndarray, what: str, log10: np.ndarray | None = None
) -> None:
    """``got`` (computed here) agrees with ``stored`` (computed on another machine) as the README
    promises: same NaN and infinities, and finite ``log10_risk`` within ACROSS_MACHINES relative.

    Where log10_risk nears 0 its relative error stops meaning anything (the risk nears 1), so
    there the promise is read as 1e-12 relative in the risk, i.e. ACROSS_MACHINES / ln 10 in
    log10_risk: the tolerance is ACROSS_MACHINES * max(|log10_risk|, 1 / ln 10), plus ULPS / ln 10
    for the rounding of the logarithm itself.

    With ``log10`` (the stored ``log10_risk`` of the same cells), ``got`` is a risk (or a fixed
    multiple of one, like ``kl_rate``) and the promise carries over: a risk is 10^log10_risk, so
    an error e in log10_risk is a relative error ln(10) e in the risk (plus ULPS for the power);
    a risk of 0 (log10_risk -inf) must stay 0.
    """
    got, stored = np.asarray(got, dtype=np.float64), np.asarray(stored, dtype=np.float64)
    assert got.shape == stored.shape, (what, got.shape, stored.shape)
    finite = np.isfinite(stored)
    np.testing.assert_array_equal(got[~finite], stored[~finite], err_msg=f"{what}: NaN or infinite cells")
    ln10 = np.log(10.0)
    logs = np.abs(stored if log10 is None else np.asarray(log10, dtype=np.float64))
    with np.errstate(invalid="ignore"):  # log10_risk -inf where a risk is 0
        log10_tolerance = ACROSS_MACHINES * np.maximum(logs, 1 / ln10) + ULPS / ln10
        tolerance = log10_tolerance if log10 is None else (ln10 * log10_tolerance + ULPS) * np.abs(stored)
    tolerance = np.where(np.isfinite(tolerance), tolerance, 0.0)
    error = np.abs(np.where(finite, got, 0.0) - np.where(finite, stored, 0.0))
    bad = error > tolerance
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {bad.size} cells differ beyond the cross-machine promise, e.g. at "
        f"{np.argwhere(bad)[0].tolist()}: {float(got[bad][0])!r} vs stored {float(stored[bad][0])!r}"
    )


def printed_tolerance(printed: str) -> float:
    """How far a correct float64 result may lie from a value printed as ``printed`` (in MATH or a
    test, rounded from an exact computation): half a unit of its last printed digit plus
    FLOAT_SLACK of it; 0 for an exact integer."""
    value = Decimal(printed)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if "." not in printed:
        return 0.0
    return float(Decimal(5).scaleb(exponent - 1)) + FLOAT_SLACK * abs(float(value))


def assert_as_printed(got: float | Sequence[float] | np.ndarray, printed: str | Sequence[str], what: str = "") -> None:
    """``got`` rounds to the ``printed`` value(s) (see ``printed_tolerance``)."""
    texts = [printed] if isinstance(printed, str) else list(printed)
    values = np.atleast_1d(np.asarray(got, dtype=np.float64))
    assert values.shape == (len(texts),), (what, values, texts)
    for value, text in zip(values, texts, strict=True):
        error = abs(float(value) - float(text))
        assert error <= printed_tolerance(text), f"{what}: {float(value)!r} is not {text} (off by {error:.3g})"
