"""Fault injection for the tests that prove a crash at any point loses nothing and
writes nothing false. Off unless ``EMERGENCE_FAULT`` is set in a worker's environment.

``EMERGENCE_FAULT`` holds comma-separated ``point=KEY`` items (KEY a block key like
``0.1.0.0.0``, or ``*``). Points: ``crash-before-write`` and ``crash-before-mark`` end the
worker process abruptly; ``fail-kernel`` raises inside the kernel; ``nan-result`` puts a
NaN into the kernel's first result; ``delay=SECONDS`` slows every block.
"""

from __future__ import annotations

import os
import time

import numpy as np

from pipeline.plan.grid import BlockKey, as_key_string

FAULT_ENV = "EMERGENCE_FAULT"


def inject(point: str, key: BlockKey, arrays: dict[str, np.ndarray] | None = None) -> None:
    """Act on ``point`` for block ``key`` if the environment asks for it."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, arg = item.strip().partition("=")
        if name == "delay" and point == "crash-before-write":
            time.sleep(float(arg))
        elif name == point and arg in ("*", as_key_string(key)):
            if point == "fail-kernel":
                raise FloatingPointError(f"injected kernel fault in block {as_key_string(key)}")
            if point == "nan-result" and arrays:
                first = np.array(next(iter(arrays.values())), dtype=np.float64)
                first.flat[-1] = np.nan
                arrays[next(iter(arrays))] = first
                return
            os._exit(17)
