"""Extended-precision linear algebra shared by the models: one job per module.

* :mod:`.context` — python-flint's working precision, set and restored under one
  process-wide lock (``working_precision``), and ``PrecisionError``.
* :mod:`.balls` — ball (``arb``) matrices to and from numpy, their upper Cholesky factor
  and its row-scaled float64 form.
* :mod:`.doubling` — sums of matrix powers by doubling (``Sigmabar_T``, the innovation
  ramp sums) and the Riccati equation by structure-preserving doubling.
* :mod:`.pivots` — columns split into pivots and exact combinations of earlier pivots.
* :mod:`.householder` — Householder QR of a matrix whose rows carry their own
  power-of-two exponents.

Nothing here knows an experiment; the models compose these pieces.
"""
