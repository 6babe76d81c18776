"""Summaries of graph run records: mean ± std over repeats, paired against the baseline."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from common.protocols import PROTOCOL, protocol_of
from common.records import NUMBER
from common.stats import PairedDelta, Score, config_label, format_delta, holm, largest_gain, paired_delta
from graph.config import PROFILES, cell_of, objective_label

#: What a graph record must hold to be resumed or summarised (``common.records.read_records``).
RECORD_NEEDS = {"graph": {**{f"config.{k}": str for k in ("dataset", "profile")},
                          **{f"config.{k}": int for k in ("repeat", "seed", "epochs", "batch_size", "hidden", "layers")},
                          "config.lr": NUMBER, "seed": int, "wall_time_s": NUMBER, "metrics.accuracy": NUMBER,
                          "metrics.seconds_per_epoch": NUMBER}}


def label_of(config: dict) -> str:
    return cell_of(config).label


def setting_of(config: dict, protocol: int | None = None) -> str:
    """The profile's name, with what the command line changed: "<profile>, N epochs", "<profile>, hidden=64",
    and, for a run of an older protocol version (``protocol``, from :func:`common.protocols.protocol_of`), that
    version: such runs pair only with each other (history), never with today's.

    An untrained cell (0 epochs) belongs to its profile's default setting.
    """
    epochs, profile = config["epochs"], config["profile"]
    changes = [] if epochs in (0, PROFILES[profile].epochs) else [f"{epochs} epochs"]
    changes += [f"{k}={config[k]:g}" for k in ("batch_size", "hidden", "layers", "lr")
                if config[k] != getattr(PROFILES[profile], k)]
    if config.get("temperature") not in (None, PROFILES[profile].temperature):  # InfoNCE cells only
        changes.append(f"temperature={config['temperature']:g}")
    if protocol is not None and protocol != PROTOCOL["graph"]:
        changes.append(f"protocol v{protocol} (history)")
    return ", ".join([profile, *changes])


@dataclass(frozen=True)
class Confirmation:
    """A variant picked from a finished grid and run again against ``infograph`` on fresh seeds.

    Picking the most promising of many variants and quoting its p-value on the same repeats
    overstates the evidence; the picked variant's Δ on seeds the pick never saw does not.
    Records of those seeds stay out of the main table, which remains the grid as planned.
    """

    setting: str
    dataset: str
    variant: str
    seeds: range = range(10, 20)

    def covers(self, record: dict) -> bool:
        """Whether ``record`` is one of this confirmation's runs: its setting, data set and seeds, any method."""
        config = record["config"]
        return (setting_of(config, protocol_of(record)) == self.setting and config["dataset"] == self.dataset
                and record["seed"] in self.seeds)


# Each stage was committed before its runs. Stage 1 (seeds 10-19): every hard/debiased variant
# whose mean Δ on the 10-repeat grid (seeds 0-9, as of commit f7f1d11) was positive with an
# uncorrected paired p < 0.1; none of them survived Holm there. Stage 2 (seeds 20-39): the stage-1
# variants whose fresh Δ was again positive with p < 0.1 uncorrected (commit 15825b5). All of it ran
# under protocol version 0 (before commit 72c096d), so its settings say so.
_V0 = ", protocol v0 (history)"
CONFIRMATIONS = (
    Confirmation("paper" + _V0, "ENZYMES", "hard b=10 [paper]"),
    Confirmation("quick" + _V0, "DD", "hard b=1 [paper]"),
    Confirmation("quick" + _V0, "DD", "debiased [paper]"),
    Confirmation("quick" + _V0, "DD", "debiased [reference]"),
    Confirmation("paper" + _V0, "ENZYMES", "hard b=10 [paper]", range(20, 40)),
    Confirmation("quick" + _V0, "DD", "debiased [reference]", range(20, 40)),
)


def is_confirmation_run(record: dict) -> bool:
    return any(c.covers(record) for c in CONFIRMATIONS)


def confirmations(records: list[dict], declared: tuple[Confirmation, ...] = CONFIRMATIONS) -> list[dict]:
    """Per declared confirmation: Δ vs infograph on the grid's seeds (no stage's of that data set) and on its fresh ones.

    The fresh p-values are Holm-corrected over the confirmations that share those seeds, one
    family per stage (one not run yet counts with p = 1, so the correction never loosens as
    runs come in).
    """
    accuracy: dict[tuple, dict[int, float]] = defaultdict(dict)  # (setting, data set, label) -> seed -> accuracy
    for r in records:
        if r.get("pipeline") == "graph":
            config = r["config"]
            accuracy[(setting_of(config, protocol_of(r)), config["dataset"], label_of(config))][r["seed"]] = \
                r["metrics"]["accuracy"]
    rows = []
    for c in declared:
        stages = [d.seeds for d in declared if (d.setting, d.dataset) == (c.setting, c.dataset)]
        runs = {label: accuracy.get((c.setting, c.dataset, label), {}) for label in ("untrained", "infograph", c.variant)}
        grid = {label: {s: a for s, a in by_seed.items() if not any(s in seeds for seeds in stages)}
                for label, by_seed in runs.items()}
        new = {label: {s: a for s, a in by_seed.items() if s in c.seeds} for label, by_seed in runs.items()}
        rows.append({"confirmation": c, "picked": paired_delta(grid[c.variant], grid["infograph"]),
                     "fresh": paired_delta(new[c.variant], new["infograph"]),
                     "fresh_means": {label: statistics.fmean(v.values()) if v else None for label, v in new.items()}})
    for seeds in dict.fromkeys(c.seeds for c in declared):  # one Holm family per stage (its fresh seeds)
        stage = [r for r in rows if r["confirmation"].seeds == seeds]
        tested = [r["fresh"] is not None and r["fresh"].n > 1 for r in stage]
        reject = holm([r["fresh"].p_value if ok else 1.0 for r, ok in zip(stage, tested, strict=True)])  # unrun: p = 1
        for r, ok, significant in zip(stage, tested, reject, strict=True):
            if ok:
                r["confirmed"] = significant and r["fresh"].mean > 0
    return rows


def format_confirmations(rows: list[dict]) -> str:
    lines = ["| profile | dataset | variant | Δ on the grid's seeds (where it was picked) | fresh seeds "
             "| mean on fresh seeds: untrained / infograph / variant | Δ on fresh seeds | p (fresh) "
             "| beats infograph on fresh seeds (Holm) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, fresh, tested = r["confirmation"], r["fresh"], "confirmed" in r
        verdict = ("yes" if r["confirmed"] else "no") if tested else "fewer than 2 fresh seeds so far"
        p = "" if not tested else "< 0.001" if fresh.p_value < 0.001 else f"{fresh.p_value:.3f}"
        means = " / ".join("" if m is None else f"{m:.2f}" for m in r["fresh_means"].values())
        lines.append(f"| {c.setting} | {c.dataset} | {c.variant} | {format_delta(r['picked'])} "
                     f"| {c.seeds.start}-{c.seeds.stop - 1} | {means} | {format_delta(fresh)} | {p} | {verdict} |")
    confirmed = [r for r in rows if r.get("confirmed")]
    if confirmed:
        lines += ["", "Confirmed beyond noise: " + "; ".join(_confirmed_line(r) for r in confirmed) + "."]
    return "\n".join(lines)


def _confirmed_line(row: dict) -> str:
    c, means = row["confirmation"], row["fresh_means"]
    line = f"{c.variant} on {c.dataset} ({c.setting}), {row['fresh']} over {row['fresh'].n} fresh seeds"
    if means["untrained"] is not None and means["untrained"] > means[c.variant]:
        line += f", though the untrained encoder scores higher still ({means['untrained']:.2f} against {means[c.variant]:.2f})"
    return line


def summarize(records: list[dict]) -> list[dict]:
    """One row per (setting, data set, method label); see :func:`setting_of`.

    Rows of one setting stay together, and within it those of one data set, each in
    first-seen order, even when runs of several settings or data sets ran side by side
    and interleaved their records.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("pipeline") != "graph":
            continue
        config = record["config"]
        groups[(setting_of(config, protocol_of(record)), config["dataset"], label_of(config))].append(record)
    settings: dict[str, int] = {}
    pairs: dict[tuple, int] = {}
    for i, key in enumerate(groups):
        settings.setdefault(key[0], i)
        pairs.setdefault(key[:2], i)
    rows = []
    for (profile, dataset, label), group in sorted(groups.items(), key=lambda item: (settings[item[0][0]], pairs[item[0][:2]])):
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
                "std": _std(accs),
                "delta_vs_infograph": delta.mean if delta else None,
                "delta_se": delta.se if delta else None,
                "delta_n": delta.n if delta else None,
                "delta_significant": delta.significant if delta else None,
                "seconds_per_epoch": statistics.fmean(r["metrics"]["seconds_per_epoch"] for r in group),
                "wall_time_s": statistics.fmean(r["wall_time_s"] for r in group),
            }
        )
    return rows


def format_table(rows: list[dict], published: dict[str, tuple[float, float]] | None = None) -> str:
    """Markdown table; the best trained method per (profile, data set) in bold.

    ``published`` (data set -> InfoGraph's published mean and std) adds that column, apart from ours.
    """
    best: dict[tuple, float] = {}
    for r in rows:
        if r["method"] != "untrained":
            key = (r["profile"], r["dataset"])
            best[key] = max(best.get(key, float("-inf")), r["mean"])
    header = "| profile | dataset | method | accuracy % (mean ± std) | n | Δ vs infograph (paired ± s.e.) | s/epoch | wall s/run |"
    lines = [header + (" published InfoGraph (Sun et al. 2020) |" if published is not None else ""),
             "|---" * (header.count("|") - 1 + (published is not None)) + "|"]
    for r in rows:
        delta = format_delta(PairedDelta(r["delta_vs_infograph"], r["delta_se"], r["delta_n"]) if r["delta_n"] else None)
        accuracy = f"{r['mean']:.2f} ± {r['std']:.2f}"
        if r["method"] != "untrained" and r["mean"] == best[(r["profile"], r["dataset"])]:
            accuracy = f"**{accuracy}**"
        lines.append(
            f"| {r['profile']} | {r['dataset']} | {r['method']} | {accuracy} | {r['repeats']} "
            f"| {delta} | {r['seconds_per_epoch']:.3f} | {r['wall_time_s']:.1f} |"
            + ("" if published is None else f" {_published_cell(published.get(r['dataset']))} |")
        )
    return "\n".join(lines)


def _published_cell(value: tuple[float, float] | None) -> str:
    return "" if value is None else "{:.2f} ± {:.2f}".format(*value)


def answers(rows: list[dict]) -> list[dict]:
    """Per (setting, data set): which hard/debiased variants beat or trail InfoGraph beyond noise.

    Each variant's paired t-test p-value, corrected with Holm-Bonferroni over all the variants
    of that (setting, data set), so the family-wise false-positive rate stays at 5%.
    """
    families: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["method"] not in ("infograph", "untrained") and r["delta_n"] and r["delta_n"] > 1:
            families[(r["profile"], r["dataset"])].append(r)
    out = []
    for (setting, dataset), variants in families.items():
        deltas = [PairedDelta(r["delta_vs_infograph"], r["delta_se"], r["delta_n"]) for r in variants]
        reject = holm([d.p_value for d in deltas])
        top = max(range(len(variants)), key=lambda i: deltas[i].mean)
        out.append({
            "profile": setting, "dataset": dataset, "variants": len(variants),
            "repeats": min(d.n for d in deltas),
            "better": [r["method"] for r, d, x in zip(variants, deltas, reject, strict=True) if x and d.mean > 0],
            "worse": [r["method"] for r, d, x in zip(variants, deltas, reject, strict=True) if x and d.mean < 0],
            "top": (variants[top]["method"], deltas[top]),
            "largest_gain": largest_gain(deltas),
        })
    return out


def format_answers(rows: list[dict]) -> str:
    lines = [
        "| profile | dataset | paired repeats | variants | better than infograph (Holm) | worse (Holm) | largest mean Δ "
        "| no variant gains more than (95%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        label, delta = r["top"]
        lines.append(f"| {r['profile']} | {r['dataset']} | {r['repeats']} | {r['variants']} | "
                     f"{', '.join(r['better']) or 'none'} | {', '.join(r['worse']) or 'none'} | "
                     f"{label} {delta.mean:+.2f} ± {delta.se:.2f} (p = {delta.p_value:.2f}) | {r['largest_gain']:+.2f} |")
    return "\n".join(lines)


def epoch_selection(records: list[dict]) -> list[dict]:
    """Accuracy after each scored epoch (runs with ``--eval-at``), and what choosing among them yields.

    Both choices look at the test folds' accuracy, so they are optimistic: ``best_fixed`` picks
    one epoch count for the (data set, method) by its mean, ``best_per_run`` the best epoch of
    every run separately.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("pipeline") == "graph" and "accuracy_at" in record["metrics"]:
            config = record["config"]
            groups[(setting_of(config, protocol_of(record)), config["dataset"], label_of(config))].append(
                record["metrics"]["accuracy_at"])
    rows = []
    for (setting, dataset, label), runs in groups.items():
        epochs = sorted(set.intersection(*(set(map(int, run)) for run in runs)))
        at = {e: [run[str(e)] for run in runs] for e in epochs}
        best_runs = [max(run[str(e)] for e in epochs) for run in runs]
        rows.append({
            "profile": setting, "dataset": dataset, "method": label, "repeats": len(runs),
            "at": {e: (statistics.fmean(v), _std(v)) for e, v in at.items()},
            "best_fixed": max(statistics.fmean(v) for v in at.values()),
            "best_per_run": (statistics.fmean(best_runs), _std(best_runs)),
        })
    return rows


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def format_epoch_selection(rows: list[dict]) -> str:
    epochs = sorted({e for r in rows for e in r["at"]})
    lines = [
        "| profile | dataset | method | n | " + " | ".join(f"epoch {e}" for e in epochs)
        + " | best fixed epoch count (test-selected) | best epoch per run (test-selected) |",
        "|---|---|---|---|" + "---|" * (len(epochs) + 2),
    ]
    for r in rows:
        cells = ["{:.2f} ± {:.2f}".format(*r["at"][e]) if e in r["at"] else "" for e in epochs]
        lines.append(f"| {r['profile']} | {r['dataset']} | {r['method']} | {r['repeats']} | " + " | ".join(cells)
                     + " | {:.2f} | {:.2f} ± {:.2f} |".format(r["best_fixed"], *r["best_per_run"]))
    return "\n".join(lines)


def scores(records: list[dict], setting: str = "paper") -> list[Score]:
    """The leaderboard's graph scores of ``setting``: SVM accuracy by objective label, grid seeds only.

    Contrastive objectives (InfoNCE estimator) go in modality ``graph`` with their registry label; the JSD
    objectives in ``graph-jsd`` with the reproduction's labels (``infograph``, ``hard b=2 [paper]``).
    """
    out = []
    for r in records:
        # The InfoNCE temperature is a tuned configuration of the row (its label says so), not the setting.
        if (r.get("pipeline") != "graph" or is_confirmation_run(r)
                or setting_of({**r["config"], "temperature": None}) != setting):
            continue
        objective = cell_of(r["config"]).objective
        jsd = objective is None or objective.name == "jsd"
        temperature = None if jsd else r["config"].get("temperature")
        label = objective_label(objective) if jsd else config_label(
            objective.label(), temperature, PROFILES[r["config"]["profile"]].temperature)
        for modality in ("graph-jsd", "graph") if objective is None else ("graph-jsd" if jsd else "graph",):
            out.append(Score(modality, r["config"]["dataset"], label, r["seed"], r["metrics"]["accuracy"], protocol_of(r),
                             "" if objective is None else str(objective), temperature))
    return out
