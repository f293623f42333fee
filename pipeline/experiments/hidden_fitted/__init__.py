"""Experiments ``hidden_fitted`` and ``hidden_spectrum_fitted``: least-squares FIR filters
learned from data (MATH §6.2-§6.5)."""
