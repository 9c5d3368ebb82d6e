"""Benchmarks: measured speed and memory, printed as ratios against a baseline run side by side."""
