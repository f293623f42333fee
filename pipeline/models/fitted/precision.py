"""python-flint's working precision (``flint.ctx.prec``) under one process-wide lock.

The precision is process-global and a worker runs several threads, so every piece of
ball arithmetic in this package runs inside :func:`working_precision`. Same semantics as
``pipeline.models.hidden_spectrum._bits``; meant to be replaced by the shared context
once one exists (a one-line change of import in the modules that use it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flint import ctx

_LOCK = threading.RLock()


@contextmanager
def working_precision(bits: int) -> Iterator[None]:
    """Hold the lock and set ``flint.ctx.prec = bits`` (restored on exit); re-entrant."""
    with _LOCK:
        old = ctx.prec
        ctx.prec = int(bits)
        try:
            yield
        finally:
            ctx.prec = old


def ctx_bits() -> int:
    """The current working precision (to hold the lock without changing it)."""
    return int(ctx.prec)
