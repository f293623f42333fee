"""python-flint's working precision, set and restored under one process-wide lock.

``flint.ctx.prec`` is global to the process, and a ``dask worker`` runs several tasks at
once in threads of one process. Every piece of ball arithmetic therefore runs inside
:func:`working_precision`, which holds one re-entrant lock for as long as the precision is
set: no other thread can change the precision under a computation, and a computation's bits
depend only on its own inputs. python-flint holds the GIL while it computes, so the lock
costs no parallelism that the threads had.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flint import ctx

__all__ = ["DEFAULT_BITS", "PrecisionError", "working_precision"]

DEFAULT_BITS = 53
"""python-flint's precision at import (bits); what arithmetic outside a set precision used."""

_LOCK = threading.RLock()


class PrecisionError(ArithmeticError):
    """A result could not be verified within the allowed working precision."""


@contextmanager
def working_precision(bits: int) -> Iterator[None]:
    """Run the body with ``flint.ctx.prec = bits`` under the process-wide lock.

    Re-entrant (a body may nest another precision); the previous precision is restored
    on exit, also when the body raises.
    """
    with _LOCK:
        old = ctx.prec
        ctx.prec = int(bits)
        try:
            yield
        finally:
            ctx.prec = old
