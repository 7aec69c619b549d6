"""sa-signals' benchmarks: what the library costs, side by side with what it replaces.

Run ``python -m benchmarks`` from the repository root (``--help`` for the options,
``--quick`` for a smoke run of seconds). Every table is a set of ratios between
variants measured in the same run, interleaved, so that a busy machine slows them
all alike; see ``benchmarks/README.md`` for what each table means and the latest
numbers.

This package imports neither ``sa_signals`` nor Django at import time: one of the
variants measured is SQLAlchemy without sa-signals, in a process that never
imported it, and Django is a benchmark-only dependency.
"""
