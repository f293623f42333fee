"""Benchmarks of the emergence pipeline against the alternatives (issue 6).

Run from the repository root::

    python -m benchmarks [--quick] [--json PATH]

Every comparison runs both sides in the same process run, alternating, and
reports medians over repeats. Figures and their targets are listed in
:data:`benchmarks.figures.TARGETS`; ``docs/benchmarks.md`` holds the latest table.
Never part of ``make test``.
"""
