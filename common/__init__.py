"""Shared core of hardneg: losses, evaluators, data paths, run records, checkpoints."""
