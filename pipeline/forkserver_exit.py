"""Imported only by the forkserver local workers are forked from (see
``clients.start_worker_forkserver``): when the run's driver exits, the forkserver
ends at once instead of tearing down distributed, xarray and zarr (~0.5 s during
which it still holds the driver's stdout and stderr, so ``emergence run ... | tee``
would wait for it). Forked workers end through ``os._exit`` and never run this.
"""

import atexit
import os

atexit.register(os._exit, 0)
