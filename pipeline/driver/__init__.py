"""The client side of a run: where work runs, Dask clients and clusters, create/resume/extend, one writer a store."""
