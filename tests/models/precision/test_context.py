"""The working-precision context: one lock for all flint work, so threads cannot change each other's precision."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from flint import arb, ctx

from pipeline.models import hidden_spectrum as hs
from pipeline.models import observed as om
from pipeline.models import parametrisation as pm
from pipeline.models.hidden_spectrum.kalman import exact_inputs
from pipeline.models.observed.weight import block_weight
from pipeline.models.precision import context, pivots
from pipeline.models.precision.context import DEFAULT_BITS, working_precision

# Kernels whose working precisions differ widely (64 .. several thousand bits) and that
# keep setting it: hidden-state cells choose their own, the observed weights double theirs.
KERNELS = {
    "hidden_spectrum best_fir 1.0^3": lambda: hs.risk_block("1.0^3", [1.0, 4.0], "best_fir", [2, 3], [10**3, 10**6]),
    "hidden_spectrum 1.05, 1.02": lambda: hs.risk_block("1.05, 1.02", [1.0], "best_fir", [1, 2], [300, 3000]),
    "hidden_spectrum truncated": lambda: hs.risk_block("1.0@60, 0.5", [4.0], "truncated_kalman", [1, 70], [10, 10**7]),
    "hidden_spectrum theta": lambda: hs.best_fir_theta("1.0^2", 1.0, 2, 10**5),
    "hidden_spectrum kalman_fir": lambda: hs.kalman_fir("1.0^4", 0.01, 12),
    "observed 1.0^3 full": lambda: om.exact_log2_risk(om.problem_from_seed("1.0^3", "full", 1, 2), [10, 10**4, 10**8]),
    "observed 1.05@30 similarity": lambda: om.exact_log2_risk(
        om.problem_from_seed("1.05@30, 0.3^2", "similarity", 2, 2), [50, 3000]
    ),
    "parametrisation diagonal": lambda: pm.cross_log2_risk(
        pm.cross_problem(
            "1.0^2, 0.5",
            "block",
            "diagonal",
            pm.learner_matrices("1.0^2, 0.5", "diagonal", 3),
            om.perturbations("1.0^2, 0.5", "block", 3, 2),
            np.eye(3),
        ),
        10**6,
    ),
}


def _clear_caches() -> None:
    exact_inputs.cache_clear()
    block_weight.cache_clear()
    pivots._pivot_split_cached.cache_clear()


def _bits(value: object) -> list[bytes]:
    if isinstance(value, dict):
        return [b for key in sorted(value) for b in _bits(value[key])]
    return [np.ascontiguousarray(value).tobytes()]


def test_concurrent_kernels_give_the_sequential_bits():
    _clear_caches()
    expected = {name: _bits(kernel()) for name, kernel in KERNELS.items()}
    _clear_caches()  # so the threads compute, not read each other's results
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [(name, pool.submit(kernel)) for _ in range(3) for name, kernel in KERNELS.items()]
            got = [(name, _bits(future.result())) for name, future in futures]
    finally:
        sys.setswitchinterval(switch)
    for name, bits in got:
        assert bits == expected[name], name
    assert ctx.prec == DEFAULT_BITS


def test_precision_is_set_and_restored_nested():
    assert ctx.prec == DEFAULT_BITS
    with working_precision(200):
        assert ctx.prec == 200
        with working_precision(1000):
            assert ctx.prec == 1000
        assert ctx.prec == 200
    assert ctx.prec == DEFAULT_BITS


def test_precision_is_restored_when_the_body_raises():
    try:
        with working_precision(300):
            raise ZeroDivisionError
    except ZeroDivisionError:
        pass
    assert ctx.prec == DEFAULT_BITS


def test_another_thread_waits_while_a_precision_is_set():
    inside, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def body() -> None:
        with working_precision(300):
            inside.set()
            release.wait()
            seen.append(ctx.prec)

    holder = threading.Thread(target=body)
    holder.start()
    assert inside.wait(timeout=60)
    assert not context._LOCK.acquire(blocking=False)  # held by the other thread's body
    release.set()
    holder.join(timeout=60)
    assert not holder.is_alive()
    assert seen == [300]
    assert ctx.prec == DEFAULT_BITS


def test_a_ball_computed_under_the_context_has_its_precision():
    with working_precision(500):
        third = arb(1) / 3
    assert third.rel_accuracy_bits() >= 490
