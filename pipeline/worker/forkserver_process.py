"""Imported only by the forkserver that local workers are forked from (see
``clients.start_worker_forkserver``); forked workers inherit both settings.

* Its own process group: Ctrl-C in a terminal signals the driver's process group, and
  the driver alone should hear it (it cancels the run and stops its cluster). Before,
  every worker printed its own ``KeyboardInterrupt`` traceback (~66 lines for two).
* When the run's driver exits, the forkserver ends at once instead of tearing down
  distributed, xarray and zarr (~0.5 s during which it still holds the driver's stdout
  and stderr, so ``emergence run ... | tee`` would wait for it). Forked workers end
  through ``os._exit`` and never run this.
"""

import atexit
import os

os.setpgrp()
atexit.register(os._exit, 0)
