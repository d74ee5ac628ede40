"""Benchmark harness for issue 4: corpus generator, pandas baseline, timing runner.

Run with `make bench` or `python -m tests.benchmarks.bench`; never collected by `make test`.
"""
