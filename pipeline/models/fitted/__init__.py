"""Least-squares learners fitted to simulated trajectories, evaluated exactly (MATH.md section 6).

The training data (noise streams, the simulation in fixed time blocks) come from
:mod:`pipeline.models.simulation.fitted_states`. One job per module: ``statistics``
(sufficient statistics with prefix sharing), ``leading`` (the ``leading`` family),
``problem`` (a learner and its nominal model in Jordan coordinates), ``least_squares``
(the exact fit), ``risk`` (exact risk of a fitted learner, and the bias), ``theory`` (MATH section 6.5), and
``cells`` (one simulation per (system, fit) serving every learner, ``d``, ``T`` and ``m``).
"""
