"""Benchmarks: each prints its figures; none is part of the test suite."""
