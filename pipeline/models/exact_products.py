"""The exact error of a float64 product, for compiled (numba) kernels.

``product_error(a, b, p)`` with ``p = fl(a b)`` returns ``a b - p`` exactly: one fused
multiply-add ``fma(a, b, -p)`` (LLVM's ``llvm.fma.f64``: one instruction where the CPU has
FMA, a correctly rounded library call where it does not, so the bits are the same on every
CPU). It is the value Dekker's splitting algorithm forms in seven operations whenever that
algorithm is exact (no overflow of the splitter, no underflow of the partial products).
A plain ``a * b + c`` in a numba kernel is never contracted into an FMA (numba compiles
without fast-math), so only this function fuses.
"""

from __future__ import annotations

from typing import Any

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["product_error"]


@intrinsic
def _fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:  # pragma: no cover - compiled
    """``a b + c`` rounded once (float64)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64"
        )
        return builder.call(fn, args)

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def product_error(a: float, b: float, p: float) -> float:  # pragma: no cover - compiled
    """``a b - p`` exactly, for ``p = fl(a b)`` (float64)."""
    return _fma(a, b, -p)  # type: ignore[call-arg]  # the typing context is numba's
