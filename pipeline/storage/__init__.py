"""Stores on disk or object storage: the Zarr cube layout, done-marks, provenance, what may be replaced."""
