"""Paired comparisons over repeats that share seeds across methods."""

from __future__ import annotations

import math
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
        """The paired t-test at 5%, this comparison alone (see :func:`holm_adjusted` for a family of them)."""
        return self.p_value is not None and self.p_value < 0.05


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
    """``values - baseline`` over the seeds both have (a non-finite score pairs with nothing); None without one.

    A diverged run records no number; scores are filtered where they are read, and this guard keeps a NaN
    that slipped through from turning every statistic built on it into NaN.
    """
    diffs = [values[seed] - baseline[seed] for seed in values
             if seed in baseline and math.isfinite(values[seed]) and math.isfinite(baseline[seed])]
    if not diffs:
        return None
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None
    return PairedDelta(statistics.fmean(diffs), se, len(diffs))


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's adjusted p-values: test i is rejected at family-wise level alpha exactly when its value <= alpha.

    Step-down: the k-th smallest p times (m - k + 1), made monotone, capped at 1. Several objectives compared
    with one baseline are a family: at 5% each, one of eight would come out "significant" by chance almost a
    third of the time. An adjusted value, unlike a reject/keep list, is a number a reader can compare with any level.
    """
    m = len(p_values)
    order = sorted(range(m), key=p_values.__getitem__)
    adjusted, running = [1.0] * m, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def ci95(delta: PairedDelta) -> tuple[float, float] | None:
    """Two-sided 95% t interval of a paired Δ; None below two seeds."""
    if delta.se is None:
        return None
    half = t_threshold(delta.n) * delta.se
    return delta.mean - half, delta.mean + half


def min_detectable_effect(sd: float, n: int, family: int = 1, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest true |Δ| a two-sided paired t-test over ``n`` seeds detects with ``power``, at level alpha/family.

    alpha/family is Holm's first (strictest) step, so the bound holds for every test of the family. Exact
    power from the noncentral t; ``sd`` is the standard deviation of the paired differences. Where nothing
    is found, "no effect" can only mean "none larger than this".
    """
    if n < 2 or not sd > 0:
        return None
    from scipy.optimize import brentq
    from scipy.stats import nct, t

    df, level = n - 1, alpha / max(family, 1)
    critical = t.ppf(1 - level / 2, df)

    def shortfall(effect: float) -> float:
        shift = effect / (sd / math.sqrt(n))
        wrong_side = float(nct.cdf(-critical, df, shift))  # below 1e-12 wherever it matters; scipy may return NaN
        return float(nct.sf(critical, df, shift)) + (wrong_side if math.isfinite(wrong_side) else 0.0) - power

    high = sd
    while shortfall(high) < 0:
        high *= 2
    return float(brentq(shortfall, 0.0, high, xtol=1e-6))


@dataclass(frozen=True)
class Claim:
    """One declared comparison: ``values`` against ``baseline`` (seed -> score) on the declared ``seeds``."""

    key: str
    values: dict[int, float]
    baseline: dict[int, float]
    seeds: tuple[int, ...]

    @property
    def delta(self) -> PairedDelta | None:
        return paired_delta({s: v for s, v in self.values.items() if s in self.seeds},
                            {s: v for s, v in self.baseline.items() if s in self.seeds})

    @property
    def complete(self) -> bool:
        """Judged only once every declared seed has both arms: a verdict on the first seeds in is optional stopping."""
        delta = self.delta
        return delta is not None and delta.n == len(self.seeds)


@dataclass(frozen=True)
class Judgement:
    claim: Claim
    delta: PairedDelta | None
    p_adjusted: float | None  # Holm over the whole family; None until the family is complete
    verdict: str  # gain, loss, no effect, pending


def judge(claims: list[Claim], alpha: float = 0.05) -> list[Judgement]:
    """Holm over a whole declared family, two-sided: a loss is a finding like a gain.

    Nothing is judged until every claim has all its seeds: a family judged on part of its runs would
    change its correction (and its verdicts) as the rest come in.
    """
    deltas = [c.delta for c in claims]
    if not claims or not all(c.complete for c in claims):
        return [Judgement(c, d, None, "pending") for c, d in zip(claims, deltas, strict=True)]
    adjusted = holm_adjusted([d.p_value if d.p_value is not None else 1.0 for d in deltas])
    return [Judgement(c, d, p, "no effect" if p > alpha else "gain" if d.mean > 0 else "loss")
            for c, d, p in zip(claims, deltas, adjusted, strict=True)]


#: The label every pipeline's leaderboard scores (and graph's cells) give the untrained encoder.
UNTRAINED = "untrained"


@dataclass(frozen=True)
class Score:
    """One run's result in the one shape every pipeline reports for the cross-modal leaderboard."""

    modality: str  # image, graph, sentence
    dataset: str
    label: str  # the configuration's label (:func:`config_label`); :data:`UNTRAINED` for the untrained encoder
    seed: int
    value: float  # accuracy, %
    protocol: int = 0  # common.protocols: scores pair only within one version
    spec: str = ""  # the objective's full spec ("" for the untrained encoder)
    temperature: float | None = None


@dataclass(frozen=True)
class CurveScore:
    """One point of a robustness curve (issue 40): a run's score after ``at`` of its ``length`` (epochs for images
    and graphs, optimiser steps for sentences), with the batch it trained at. A run of 32 epochs scored at 8 is not
    the run of 8 epochs, so ``length`` is part of the point's identity."""

    modality: str
    dataset: str
    spec: str  # the objective's full spec ("" for the untrained encoder)
    temperature: float | None
    batch: int
    length: int
    at: int
    seed: int
    value: float  # the pipeline's leaderboard metric, %
    protocol: int = 0


def config_label(objective_label: str, temperature: float | None, profile_temperature: float | None) -> str:
    """A row's label: the objective's, plus ``t=...`` when it ran off its profile's temperature.

    The temperature is tuned like any parameter (Wang & Liu 2021: it alone sets the penalty on hard
    negatives), so two temperatures of one objective are two configurations, never one row.
    """
    if temperature is None or profile_temperature is None or math.isclose(temperature, profile_temperature):
        return objective_label
    return f"{objective_label} t={temperature:g}"
