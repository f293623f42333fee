"""Experiment ``hidden``: the noisily observed scalar system of MATH §2 (Theorem 4.1)."""
