"""Experiment ``hidden_spectrum``: the hidden-state experiment over any spectrum (MATH §5)."""
