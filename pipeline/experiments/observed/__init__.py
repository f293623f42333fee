"""Experiment ``observed``: best-in-class risk of fully observed linear systems (MATH §1, Theorem 3.1)."""
