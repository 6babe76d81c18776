"""Paired comparisons over repeats that share seeds across methods."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class PairedDelta:
    """Mean difference to a baseline over ``n`` shared seeds, its standard error (None when n < 2)."""

    mean: float
    se: float | None
    n: int

    @property
    def significant(self) -> bool:
        """Two-sided paired t-test at 5%: |mean| / se beyond the t quantile with n - 1 degrees of freedom."""
        if self.se is None:
            return False
        from scipy.stats import t

        return abs(self.mean) > t.ppf(0.975, self.n - 1) * self.se

    def __str__(self) -> str:
        """``+1.23 ± 0.45``, starred when significant."""
        if self.se is None:
            return f"{self.mean:+.2f}"
        return f"{self.mean:+.2f} ± {self.se:.2f}" + ("*" if self.significant else "")


def paired_delta(values: dict[int, float], baseline: dict[int, float]) -> PairedDelta | None:
    """``values - baseline`` over the seeds both have; None without a common seed."""
    diffs = [values[seed] - baseline[seed] for seed in values if seed in baseline]
    if not diffs:
        return None
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None
    return PairedDelta(statistics.fmean(diffs), se, len(diffs))


def format_delta(delta: PairedDelta | None) -> str:
    """The table cell of a comparison; empty without one."""
    return "" if delta is None else str(delta)
