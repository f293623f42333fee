"""Small helpers for messages a person reads."""

from __future__ import annotations

import math
from collections.abc import Sequence


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 block``, ``2 blocks``, ``1,024 cells``."""
    word = noun if n == 1 else (plural or f"{noun}s")
    return f"{n:,} {word}"


def fmt(value: float | None, spec: str = ".3g") -> str:
    """A number for a table: ``-`` for NaN or missing, ``inf``/``-inf`` spelled out."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, spec)


def ranges(values: Sequence[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` -> ``1..3,7,9..10``."""
    parts: list[str] = []
    run: list[int] = []
    for v in sorted(values):
        if run and v == run[-1] + 1:
            run.append(v)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}..{run[-1]}")
        run = [v]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}..{run[-1]}")
    return ",".join(parts)
