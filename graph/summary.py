"""Summaries of graph run records: mean ± std over repeats, paired against the baseline."""

from __future__ import annotations

import statistics
from collections import defaultdict

from benchmarks.published import INFOGRAPH
from common.stats import PairedDelta, format_delta, paired_delta
from graph.config import PROFILES, Cell


def label_of(config: dict) -> str:
    fields = Cell.__dataclass_fields__
    return Cell(**{k: config[k] for k in fields}).label


def setting_of(config: dict) -> str:
    """The profile's name, or "<profile>, N epochs" for a run whose ``--epochs`` overrode it.

    An untrained cell (0 epochs) belongs to its profile's default setting.
    """
    epochs, profile = config["epochs"], config["profile"]
    return profile if epochs in (0, PROFILES[profile].epochs) else f"{profile}, {epochs} epochs"


def summarize(records: list[dict]) -> list[dict]:
    """One row per (setting, data set, method label); see :func:`setting_of`.

    Rows of one (setting, data set) stay together, both in first-seen order, even when
    two data sets ran side by side and interleaved their records.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("pipeline") != "graph":
            continue
        config = record["config"]
        groups[(setting_of(config), config["dataset"], label_of(config))].append(record)
    first_seen = {key[:2]: None for key in groups}
    order = {pair: i for i, pair in enumerate(first_seen)}
    rows = []
    for (profile, dataset, label), group in sorted(groups.items(), key=lambda item: order[item[0][:2]]):
        by_seed = {r["seed"]: r["metrics"]["accuracy"] for r in group}
        baseline = {
            r["seed"]: r["metrics"]["accuracy"] for r in groups.get((profile, dataset, "infograph"), [])
        }
        delta = paired_delta(by_seed, baseline) if label != "infograph" else None
        accs = list(by_seed.values())
        rows.append(
            {
                "profile": profile,
                "dataset": dataset,
                "method": label,
                "repeats": len(accs),
                "mean": statistics.fmean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "delta_vs_infograph": delta.mean if delta else None,
                "delta_se": delta.se if delta else None,
                "delta_n": delta.n if delta else None,
                "delta_significant": delta.significant if delta else None,
                "seconds_per_epoch": statistics.fmean(r["metrics"]["seconds_per_epoch"] for r in group),
                "wall_time_s": statistics.fmean(r["wall_time_s"] for r in group),
                "published_infograph": INFOGRAPH.get(dataset),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table; the best trained method per (profile, data set) in bold; published numbers apart."""
    best: dict[tuple, float] = {}
    for r in rows:
        if r["method"] != "untrained":
            key = (r["profile"], r["dataset"])
            best[key] = max(best.get(key, float("-inf")), r["mean"])
    lines = [
        "| profile | dataset | method | accuracy % (mean ± std) | n | Δ vs infograph (paired ± s.e.) | s/epoch | wall s/run | published InfoGraph (Sun et al. 2020) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = format_delta(PairedDelta(r["delta_vs_infograph"], r["delta_se"], r["delta_n"]) if r["delta_n"] else None)
        published = "" if r["published_infograph"] is None else "{:.2f} ± {:.2f}".format(*r["published_infograph"])
        accuracy = f"{r['mean']:.2f} ± {r['std']:.2f}"
        if r["method"] != "untrained" and r["mean"] == best[(r["profile"], r["dataset"])]:
            accuracy = f"**{accuracy}**"
        lines.append(
            f"| {r['profile']} | {r['dataset']} | {r['method']} | {accuracy} | {r['repeats']} "
            f"| {delta} | {r['seconds_per_epoch']:.3f} | {r['wall_time_s']:.1f} | {published} |"
        )
    return "\n".join(lines)
