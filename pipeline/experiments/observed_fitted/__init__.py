"""Experiment ``observed_fitted``: least-squares learners of fully observed systems (MATH.md section 6.1)."""
