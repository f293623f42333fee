"""What runs on a Dask worker: the task body (kernel, check, write, done-mark) and the worker process settings."""
