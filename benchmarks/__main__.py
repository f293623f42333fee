"""``python -m benchmarks [--quick] [--json PATH]``.

Kept import-light: nothing heavy is imported at module level, because Dask's
spawned worker processes may re-import the main module.
"""

import sys

if __name__ == "__main__":
    from benchmarks.cli import main

    sys.exit(main())
