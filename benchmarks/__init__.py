"""Experiment harness, microbenchmarks and the published reference numbers."""
