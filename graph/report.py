"""Summaries of graph run records: mean ± std over repeats, paired against the baseline."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, replace

from common.format import number, paired, plus_minus
from common.objectives import parse_objective
from common.protocols import history, protocol_of
from common.records import NUMBER
from common.stats import UNTRAINED, Claim, CurveScore, PairedDelta, Score, judge, largest_gain, paired_delta
from graph.config import INFOGRAPH, PROFILES, cell_of

#: What a graph record must hold to be resumed or summarised (``common.records.read_records``).
RECORD_NEEDS = {"graph": {**{f"config.{k}": str for k in ("dataset", "profile")},
                          **{f"config.{k}": int for k in ("repeat", "seed", "epochs", "batch_size", "hidden", "layers")},
                          "config.lr": NUMBER, "seed": int, "wall_time_s": NUMBER, "metrics.accuracy": NUMBER,
                          "metrics.seconds_per_epoch": NUMBER}}


BASELINE = INFOGRAPH.label()  # the row every variant is paired with


def label_of(config: dict) -> str:
    return cell_of(config).label


def setting_of(config: dict, protocol: int | None = None) -> str:
    """The profile's name, with what the command line changed: "<profile>, N epochs", "<profile>, hidden=64",
    and, for a run of an older protocol version (``protocol``, from :func:`common.protocols.protocol_of`), that
    version: such runs pair only with each other (history), never with today's.

    A run scored along the way (``--eval-at``) is its own setting: the scoring draws from the random streams, so its
    final score is not the plain run's (and the leaderboard reads the plain runs). An untrained cell (0 epochs)
    belongs to its profile's default setting. The InfoNCE temperature is not a
    setting but part of the row's label (``t=...``, :attr:`graph.config.Cell.label`): it is tuned like any
    parameter of the objective, and the JSD baseline has none.
    """
    epochs, profile = config["epochs"], config["profile"]
    changes = [] if epochs in (0, PROFILES[profile].epochs) else [f"{epochs} epochs"]
    changes += [f"{k}={config[k]:g}" for k in ("batch_size", "hidden", "layers", "lr")
                if config[k] != getattr(PROFILES[profile], k)]
    if epochs and config.get("eval_at"):  # scoring along the way draws from the RNG: another run than the plain one
        changes.append("scored at " + "/".join(map(str, sorted(config["eval_at"]))))
    changes += [] if protocol is None else history("graph", protocol)
    return ", ".join([profile, *changes])


@dataclass(frozen=True)
class Confirmation:
    """A variant picked from a finished grid and run again against ``jsd`` (InfoGraph) on fresh seeds.

    Picking the most promising of many variants and quoting its p-value on the same repeats
    overstates the evidence; the picked variant's Δ on seeds the pick never saw does not.
    Records of those seeds stay out of the main table, which remains the grid as planned.
    """

    setting: str
    dataset: str
    variant: str  # the objective's registry spec, run at its profile's temperature
    seeds: range = range(10, 20)

    @property
    def label(self) -> str:
        """The variant's row label (:attr:`graph.config.Cell.label` of its runs)."""
        return parse_objective(self.variant).label()

    def covers(self, record: dict) -> bool:
        """Whether ``record`` is one of this confirmation's runs: its setting, data set and seeds, any method."""
        config = record["config"]
        return (setting_of(config, protocol_of(record)) == self.setting and config["dataset"] == self.dataset
                and record["seed"] in self.seeds)


# Each stage was committed before its runs. Stage 1 (seeds 10-19): every hard/debiased variant
# whose mean Δ on the 10-repeat grid (seeds 0-9, as of commit f7f1d11) was positive with an
# uncorrected paired p < 0.1; none of them survived Holm there. Stage 2 (seeds 20-39): the stage-1
# variants whose fresh Δ was again positive with p < 0.1 uncorrected (commit 15825b5). All of it ran
# under protocol version 0 (before commit 72c096d), so its settings say so. (Declared then by the
# reproduction's own labels, "hard b=10 [paper]" and "debiased [reference]"; the specs are the same runs.)
_V0 = ", " + history("graph", 0)[0]  # these confirmations ran under protocol version 0
CONFIRMATIONS = (
    Confirmation("paper" + _V0, "ENZYMES", "jsd:tau_plus=0.5,beta=10"),
    Confirmation("quick" + _V0, "DD", "jsd:tau_plus=0.5,beta=1"),
    Confirmation("quick" + _V0, "DD", "jsd:tau_plus=0.5"),
    Confirmation("quick" + _V0, "DD", "jsd:tau_plus=0.5,convention=reference"),
    Confirmation("paper" + _V0, "ENZYMES", "jsd:tau_plus=0.5,beta=10", range(20, 40)),
    Confirmation("quick" + _V0, "DD", "jsd:tau_plus=0.5,convention=reference", range(20, 40)),
)


def is_confirmation_run(record: dict) -> bool:
    return any(c.covers(record) for c in CONFIRMATIONS)


def confirmations(records: list[dict], declared: tuple[Confirmation, ...] = CONFIRMATIONS) -> list[dict]:
    """Per declared confirmation: Δ vs jsd on the grid's seeds (no stage's of that data set) and on its fresh ones.

    Each stage (the confirmations sharing fresh seeds) is one declared family of claims, judged by
    :func:`common.stats.judge`: Holm over the whole stage, and no verdict until every claim has all its seeds.
    """
    groups = _groups(records)
    rows = []
    for c in declared:
        stages = [d.seeds for d in declared if (d.setting, d.dataset) == (c.setting, c.dataset)]
        runs = {label: _accuracy(groups.get((c.setting, c.dataset, label), []))
                for label in (UNTRAINED, BASELINE, c.label)}
        grid = {label: {s: a for s, a in by_seed.items() if not any(s in seeds for seeds in stages)}
                for label, by_seed in runs.items()}
        new = {label: {s: a for s, a in by_seed.items() if s in c.seeds} for label, by_seed in runs.items()}
        rows.append({"confirmation": c, "picked": paired_delta(grid[c.label], grid[BASELINE]),
                     "claim": Claim(c.label, new[c.label], new[BASELINE], tuple(c.seeds)),
                     "fresh_means": {label: statistics.fmean(v.values()) if v else None for label, v in new.items()}})
    for seeds in dict.fromkeys(c.seeds for c in declared):
        stage = [r for r in rows if r["confirmation"].seeds == seeds]
        for row, judgement in zip(stage, judge([r.pop("claim") for r in stage]), strict=True):
            row["fresh"], row["verdict"] = judgement.delta, judgement.verdict
    return rows


def format_confirmations(rows: list[dict]) -> str:
    lines = ["| profile | dataset | variant | Δ on the grid's seeds (where it was picked) | fresh seeds "
             f"| mean on fresh seeds: {UNTRAINED} / {BASELINE} / variant | Δ on fresh seeds | p (fresh) "
             f"| beats {BASELINE} on fresh seeds (Holm) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, fresh, judged = r["confirmation"], r["fresh"], r["verdict"] != "pending"
        verdict = ("yes" if r["verdict"] == "gain" else "no") if judged else "pending: the stage's seeds are not all in"
        p = "" if not judged else "< 0.001" if fresh.p_value < 0.001 else f"{fresh.p_value:.3f}"
        means = " / ".join("" if m is None else f"{m:.2f}" for m in r["fresh_means"].values())
        lines.append(f"| {c.setting} | {c.dataset} | {c.label} | {paired(r['picked'])} "
                     f"| {c.seeds.start}-{c.seeds.stop - 1} | {means} | {paired(fresh)} | {p} | {verdict} |")
    confirmed = [r for r in rows if r["verdict"] == "gain"]
    if confirmed:
        lines += ["", "Confirmed beyond noise: " + "; ".join(_confirmed_line(r) for r in confirmed) + "."]
    return "\n".join(lines)


def _confirmed_line(row: dict) -> str:
    c, means = row["confirmation"], row["fresh_means"]
    line = f"{c.label} on {c.dataset} ({c.setting}), {paired(row['fresh'])} over {row['fresh'].n} fresh seeds"
    if means[UNTRAINED] is not None and means[UNTRAINED] > means[c.label]:
        line += (f", though the untrained encoder scores higher still ({means[UNTRAINED]:.2f} against "
                 f"{means[c.label]:.2f})")
    return line


def _groups(records: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """The graph records by (setting, data set, label), in table order: rows of one setting together, and within
    it those of one data set, each in first-seen order, even when runs of several settings or data sets ran side
    by side and interleaved their records."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for record in records:
        if record.get("pipeline") == "graph":
            config = record["config"]
            groups[(setting_of(config, protocol_of(record)), config["dataset"], label_of(config))].append(record)
    settings: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    for i, key in enumerate(groups):
        settings.setdefault(key[0], i)
        pairs.setdefault(key[:2], i)
    return dict(sorted(groups.items(), key=lambda item: (settings[item[0][0]], pairs[item[0][:2]])))


def _accuracy(group: list[dict]) -> dict[int, float]:
    """Seed -> accuracy of one row's runs."""
    return {r["seed"]: r["metrics"]["accuracy"] for r in group}


def summarize(records: list[dict]) -> list[dict]:
    """One row per (setting, data set, label) in table order (:func:`_groups`); see :func:`setting_of`."""
    groups = _groups(records)
    rows = []
    for (profile, dataset, label), group in groups.items():
        by_seed = _accuracy(group)
        delta = paired_delta(by_seed, _accuracy(groups.get((profile, dataset, BASELINE), []))) if label != BASELINE else None
        accs = list(by_seed.values())
        rows.append(
            {
                "profile": profile,
                "dataset": dataset,
                "method": label,
                "spec": str(cell_of(group[0]["config"]).objective or ""),  # what --objective runs it ("": untrained)
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
        if r["method"] != UNTRAINED:
            key = (r["profile"], r["dataset"])
            best[key] = max(best.get(key, float("-inf")), r["mean"])
    header = (f"| profile | dataset | method | accuracy % (mean ± std) | n | Δ vs {BASELINE} (paired ± s.e.) | s/epoch "
              "| wall s/run |")
    lines = [header + (" published InfoGraph (Sun et al. 2020) |" if published is not None else ""),
             "|---" * (header.count("|") - 1 + (published is not None)) + "|"]
    for r in rows:
        delta = paired(PairedDelta(r["delta_vs_infograph"], r["delta_se"], r["delta_n"]) if r["delta_n"] else None)
        accuracy = plus_minus(r["mean"], r["std"])
        if r["method"] != UNTRAINED and r["mean"] == best[(r["profile"], r["dataset"])]:
            accuracy = f"**{accuracy}**"
        lines.append(
            f"| {r['profile']} | {r['dataset']} | {r['method']} | {accuracy} | {r['repeats']} "
            f"| {delta} | {r['seconds_per_epoch']:.3f} | {r['wall_time_s']:.1f} |"
            + ("" if published is None else f" {_published_cell(published.get(r['dataset']))} |")
        )
    return "\n".join(lines)


def _published_cell(value: tuple[float, float] | None) -> str:
    return "" if value is None else plus_minus(*value)


def answers(records: list[dict]) -> list[dict]:
    """Per (setting, data set): which variants beat or trail InfoGraph (``jsd``) beyond noise.

    Each variant is a claim against ``jsd`` on the seeds both have, and the (setting, data set)'s variants one
    family, judged by :func:`common.stats.judge` (Holm, two-sided), so the family-wise false-positive rate stays
    at 5%. The grid is judged as its runs stand, not as declared ahead (that is what the confirmations are for):
    every claim covers exactly the seeds it has, and no family waits.
    """
    groups = _groups(records)
    families: dict[tuple[str, str], list[Claim]] = defaultdict(list)
    for (setting, dataset, label), group in groups.items():
        values, baseline = _accuracy(group), _accuracy(groups.get((setting, dataset, BASELINE), []))
        paired = tuple(sorted(values.keys() & baseline.keys()))
        if label not in (BASELINE, UNTRAINED) and len(paired) > 1:
            families[(setting, dataset)].append(Claim(label, values, baseline, paired))
    out = []
    for (setting, dataset), claims in families.items():
        judged = judge(claims)
        top = max(judged, key=lambda j: j.delta.mean)
        out.append({
            "profile": setting, "dataset": dataset, "variants": len(judged),
            "repeats": min(j.delta.n for j in judged),
            "better": [j.claim.key for j in judged if j.verdict == "gain"],
            "worse": [j.claim.key for j in judged if j.verdict == "loss"],
            "top": (top.claim.key, top.delta),
            "largest_gain": largest_gain([j.delta for j in judged]),
        })
    return out


def format_answers(rows: list[dict]) -> str:
    lines = [
        f"| profile | dataset | paired repeats | variants | better than {BASELINE} (Holm) | worse (Holm) | largest mean Δ "
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
        cells = [plus_minus(*r["at"][e]) if e in r["at"] else "" for e in epochs]
        lines.append(f"| {r['profile']} | {r['dataset']} | {r['method']} | {r['repeats']} | " + " | ".join(cells)
                     + f" | {number(r['best_fixed'])} | {plus_minus(*r['best_per_run'])} |")
    return "\n".join(lines)


def scores(records: list[dict], setting: str = "paper") -> list[Score]:
    """The leaderboard's graph scores of ``setting``: SVM accuracy by the row's label, grid seeds only.

    Contrastive objectives (InfoNCE estimator) go in modality ``graph``, the JSD objectives in ``graph-jsd``
    (the untrained encoder in both); every label is the registry's (:attr:`graph.config.Cell.label`).
    """
    out = []
    for r in records:
        if r.get("pipeline") != "graph" or is_confirmation_run(r) or setting_of(r["config"]) != setting:
            continue
        cell = cell_of(r["config"])
        jsd = cell.objective is None or cell.objective.name == "jsd"
        for modality in ("graph-jsd", "graph") if cell.objective is None else ("graph-jsd" if jsd else "graph",):
            out.append(Score(modality, cell.dataset, cell.label, r["seed"], r["metrics"]["accuracy"], protocol_of(r),
                             "" if cell.objective is None else str(cell.objective), cell.temperature))
    return out


def curve_scores(records: list[dict]) -> list[CurveScore]:
    """The robustness curves' graph points (issue 40): SVM accuracy of every paper-protocol InfoNCE run (and the
    untrained encoder) at that protocol but for batch, learning rate and epochs; one point per epoch it was scored
    after (``accuracy_at``, written by ``--eval-at``), or its final score at its length when it has none. JSD runs
    belong to the reproduction, not to the curves. A run scored along the way is another run than the plain one
    (:func:`setting_of`): where both exist, the curve takes the one scored along the way, so that the length axis
    and its final point come from one run."""
    paper = PROFILES["paper"]
    runs = []
    for r in records:
        config = r["config"]
        if (r.get("pipeline") != "graph" or config.get("profile") != "paper" or is_confirmation_run(r)
                or (config["hidden"], config["layers"]) != (paper.hidden, paper.layers)):
            continue
        cell = cell_of(config)
        if cell.objective is None or cell.objective.name != "jsd":
            runs.append((r, cell))
    scored = {(replace(cell, eval_at=()).key, protocol_of(r)) for r, cell in runs if cell.eval_at}
    out = []
    for r, cell in runs:
        if not cell.eval_at and (cell.key, protocol_of(r)) in scored:
            continue
        points = r["metrics"].get("accuracy_at") or {str(cell.epochs): r["metrics"]["accuracy"]}
        out.extend(CurveScore("graph", cell.dataset, "" if cell.objective is None else str(cell.objective),
                              cell.temperature, cell.batch_size, cell.epochs, int(at), r["seed"], value, protocol_of(r))
                   for at, value in points.items())
    return out
