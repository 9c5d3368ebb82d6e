"""Helpers shared by tests and benchmarks: real Ray heads, free ports, process clean-up."""
