"""Least-squares learners fitted to simulated trajectories, evaluated exactly (MATH.md section 6).

One job per module: ``sampler`` (noise streams and the simulation in fixed time blocks),
``statistics`` (sufficient statistics with prefix sharing), ``leading`` (the ``leading``
family), ``problem`` (a learner and its nominal model in Jordan coordinates),
``least_squares`` (the exact fit),
``risk`` (exact risk of a fitted learner, and the bias), ``theory`` (MATH section 6.5), and
``cells`` (one simulation per (system, fit) serving every learner, ``d``, ``T`` and ``m``).
"""
