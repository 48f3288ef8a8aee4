"""Benchmarks and footprint measurements (make bench, make asset)."""
