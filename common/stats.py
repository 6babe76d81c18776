"""Paired comparisons over repeats that share seeds across methods."""

from __future__ import annotations

import statistics


def paired_delta(values: dict[int, float], baseline: dict[int, float]) -> tuple[float | None, float | None]:
    """(mean, standard error) of ``values - baseline`` over the seeds both have.

    The mean is None without common seeds; the standard error is None with fewer than two.
    """
    diffs = [values[seed] - baseline[seed] for seed in values if seed in baseline]
    if not diffs:
        return None, None
    return statistics.fmean(diffs), statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None


def format_delta(mean: float | None, se: float | None) -> str:
    """``+1.23 ± 0.45``, starred when |mean| > 2 s.e.; empty without a comparison."""
    if mean is None:
        return ""
    if se is None:
        return f"{mean:+.2f}"
    return f"{mean:+.2f} ± {se:.2f}" + ("*" if abs(mean) > 2 * se else "")
