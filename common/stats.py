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
    def p_value(self) -> float | None:
        """Two-sided paired t-test: P(|T| >= |mean| / se) with n - 1 degrees of freedom; None when n < 2."""
        if self.se is None:
            return None
        if self.se == 0.0:
            return 1.0 if self.mean == 0.0 else 0.0
        from scipy.stats import t

        return float(2 * t.sf(abs(self.mean) / self.se, self.n - 1))

    @property
    def significant(self) -> bool:
        """The paired t-test at 5%, this comparison alone (see :func:`holm` for a family of them)."""
        return self.p_value is not None and self.p_value < 0.05

    def __str__(self) -> str:
        """``+1.23 ± 0.45``, starred when significant."""
        if self.se is None:
            return f"{self.mean:+.2f}"
        return f"{self.mean:+.2f} ± {self.se:.2f}" + ("*" if self.significant else "")


def t_threshold(n: int, alpha: float = 0.05) -> float:
    """|mean| / se above which a paired t-test over ``n`` seeds is significant at ``alpha`` (two-sided)."""
    from scipy.stats import t

    return float(t.ppf(1 - alpha / 2, n - 1))


def largest_gain(deltas: list[PairedDelta], alpha: float = 0.05) -> float:
    """Upper end of Bonferroni-simultaneous (1 - ``alpha``) intervals: no variant gains more, at that confidence.

    Where no variant is significant this sizes what the repeats rule out, e.g. "no hard variant
    adds more than 1.2 points", rather than leaving "not significant" open to any effect size.
    """
    return max(d.mean + t_threshold(d.n, alpha / len(deltas)) * d.se for d in deltas)


def paired_delta(values: dict[int, float], baseline: dict[int, float]) -> PairedDelta | None:
    """``values - baseline`` over the seeds both have; None without a common seed."""
    diffs = [values[seed] - baseline[seed] for seed in values if seed in baseline]
    if not diffs:
        return None
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None
    return PairedDelta(statistics.fmean(diffs), se, len(diffs))


def holm(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm-Bonferroni: which of a family of tests to reject, keeping the family-wise error at ``alpha``.

    Several objectives compared with one baseline on one data set are a family: at 5% each,
    one of eight would come out "significant" by chance almost a third of the time.
    """
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    reject = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        reject[index] = True
    return reject


def format_delta(delta: PairedDelta | None) -> str:
    """The table cell of a comparison; empty without one."""
    return "" if delta is None else str(delta)


@dataclass(frozen=True)
class Score:
    """One run's result in the one shape every pipeline reports for the cross-modal leaderboard."""

    modality: str  # image, graph, sentence
    dataset: str
    label: str  # the objective's label; "untrained" for the untrained encoder
    seed: int
    value: float  # accuracy, %


@dataclass(frozen=True)
class Verdict:
    """A label against the column's baseline, paired by seed; ``holm`` when it survives the column's correction."""

    modality: str
    dataset: str
    label: str
    mean: float
    n: int  # seeds this label ran
    delta: PairedDelta | None
    holm: bool


def verdicts(scores: list[Score], baseline: str, untrained: str = "untrained") -> list[Verdict]:
    """Per (modality, data set) column: every label's paired Δ to ``baseline``, Holm over the column's variants.

    The untrained encoder gets its Δ too, but is no variant: it does not enlarge the family. Columns
    without the baseline are left out.
    """
    columns: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for s in scores:
        columns.setdefault((s.modality, s.dataset), {}).setdefault(s.label, {})[s.seed] = s.value
    out = []
    for (modality, dataset), by_label in columns.items():
        base = by_label.get(baseline)
        if base is None:  # a column without its baseline compares nothing
            continue
        deltas = {label: paired_delta(v, base) if label != baseline else None for label, v in by_label.items()}
        family = [label for label, d in deltas.items() if label != untrained and d is not None and d.n > 1]
        reject = dict(zip(family, holm([deltas[label].p_value for label in family]), strict=True)) if family else {}
        out += [Verdict(modality, dataset, label, statistics.fmean(by_label[label].values()), len(by_label[label]),
                        deltas[label], reject.get(label, False)) for label in by_label]
    return out


def mean_ranks(rows: list[Verdict], untrained: str = "untrained") -> dict[str, dict[str, float]]:
    """label -> modality (and "all") -> mean rank by mean score over the columns it ran in (1 = best; untrained left out)."""
    columns: dict[tuple[str, str], list[Verdict]] = {}
    for v in rows:
        if v.label != untrained:
            columns.setdefault((v.modality, v.dataset), []).append(v)
    ranks: dict[str, dict[str, list[int]]] = {}
    for (modality, _), column in columns.items():
        for rank, v in enumerate(sorted(column, key=lambda v: -v.mean), 1):
            for key in (modality, "all"):
                ranks.setdefault(v.label, {}).setdefault(key, []).append(rank)
    return {label: {k: statistics.fmean(r) for k, r in by.items()} for label, by in ranks.items()}
