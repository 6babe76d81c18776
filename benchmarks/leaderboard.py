"""The leaderboard, tuned against tuned: which way of handling negatives helps, in which modality, by how much.

Computed once per ``make tables`` into one dict (``tables/leaderboard.json``) that the markdown page, the HTML page
and the plot are rendered from. Scores come from the pipelines' reports; pairing, Holm, power and the claims engine
from ``common.stats``; what runs and what is claimed from ``benchmarks.suites``. Nothing here is measured or typed in.
"""

from __future__ import annotations

import contextlib
import functools
import math
import statistics
import sys
from dataclasses import dataclass

from benchmarks.suites import (
    BASELINE,
    LEADERBOARD_CONFIRMATIONS,
    MODALITIES,
    STAGE1_SEEDS,
    TEMPERATURE_FAMILIES,
    TUNED_ROUNDS,
    Config,
    Round,
    Sweep,
    columns,
    config_key,
    configuration,
    profile_temperature,
    stage1_configs,
    sweeps,
)
from common.cli import UserError
from common.protocols import PROTOCOL
from common.stats import (
    Claim,
    PairedDelta,
    Score,
    ci95,
    config_label,
    holm_adjusted,
    judge,
    min_detectable_effect,
    paired_delta,
)

#: What a column scores, per modality.
METRICS = {
    "image": "linear-probe top-1 %, quick profile (compact ResNet-18, 10k CIFAR-10 images, 8 epochs)",
    "sentence": "mean accuracy % of the six transfer tasks, quick-thought quick profile",
    "graph": "SVM accuracy %, paper protocol (200 epochs), InfoNCE local-global estimator",
}
UNTRAINED = "untrained"
ONE_COLUMN = {"image": "CIFAR-10 (JPEG q75)", "sentence": "6 transfer tasks"}


def collect(records: list[dict]) -> list[Score]:
    """Every pipeline's leaderboard scores; a non-finite score (a diverged run) is left out with one warning."""
    from graph.report import scores as graph_scores
    from image.report import scores as image_scores
    from sentence.report import scores as sentence_scores

    found = [*image_scores(records), *sentence_scores(records), *graph_scores(records)]
    bad = [s for s in found if not math.isfinite(s.value)]
    if bad:
        print(f"warning: {len(bad)} run(s) recorded no finite score and are left out: "
              + ", ".join(f"{s.modality} {s.dataset} {s.label} seed {s.seed}" for s in bad[:5]), file=sys.stderr)
    return [s for s in found if math.isfinite(s.value)]


def label_of(modality: str, config: Config) -> str:
    from common.objectives import parse_objective

    return config_label(parse_objective(config.spec).label(), config.temperature, profile_temperature(modality))


Key = tuple[str, float | None]  # (full objective spec, temperature): a run's identity; labels are for display
UNTRAINED_KEY: Key = ("", None)


def key_of(config: Config) -> Key:
    return config.spec, config.temperature


def table(scores: list[Score], modality: str, dataset: str | None) -> dict[Key, dict[int, float]]:
    """(spec, temperature) -> seed -> score of one column, current protocol only (the last record of a seed wins).

    Keyed by the full spec, not the label: a record of a family's earlier version (retired parameters) may label
    like today's default, and must never pair as it.
    """
    column = ONE_COLUMN.get(modality, dataset)
    out: dict[Key, dict[int, float]] = {}
    for s in scores:
        if s.modality == modality and s.dataset == column and s.protocol == PROTOCOL[modality]:
            out.setdefault((s.spec, s.temperature), {})[s.seed] = s.value
    return out


def done(cells: list, records: list[dict]) -> list:
    """The cells whose every score (``SuiteCell.yields``) is in the records of the current protocol, however run."""
    scores = collect(records)
    have = {(s.modality, dataset, s.spec, s.temperature, s.seed) for s in scores
            if s.protocol == PROTOCOL.get(s.modality) for dataset in (s.dataset, None)}
    out = []
    for c in cells:
        y = c.yields
        if y is not None and all((y.modality, y.dataset, y.spec, y.temperature, seed) in have for seed in y.seeds):
            out.append(c)
    return out


@dataclass(frozen=True)
class Selection:
    """A family's configuration in one column, picked by :func:`select`; ``config`` is None while ``why`` waits."""

    family: str
    config: Config | None
    why: str
    step: Config | None = None  # the edge step that must run (or ran) before selecting


def _mean(values: dict[int, float], seeds: tuple[int, ...]) -> float | None:
    """Mean over exactly the stage-1 seeds; None until all of them have run."""
    return statistics.fmean(values[s] for s in seeds) if all(s in values for s in seeds) else None


def select(by_key: dict[Key, dict[int, float]], modality: str, sweep: Sweep) -> Selection:
    """The rule: the configuration with the highest mean over the stage-1 seeds (ties: the first declared); when that
    is the lowest or highest value of the grid and a step beyond that edge is declared, the step runs first and the
    best of all five is selected. Nothing is selected until every configuration it compares has all its seeds."""
    seeds = STAGE1_SEEDS[modality]
    grid = [configuration(modality, sweep, v) for v in sweep.values]
    means = [_mean(by_key.get(key_of(c), {}), seeds) for c in grid]
    if any(m is None for m in means):
        return Selection(sweep.family, None, f"{sum(m is not None for m in means)} of {len(grid)} configurations "
                         "have all their stage-1 seeds")
    best = max(range(len(grid)), key=lambda i: (means[i], -i))
    edge = sweep.below if best == 0 else sweep.above if best == len(grid) - 1 else None
    if edge is None:
        return Selection(sweep.family, grid[best], "best of its grid")
    step = configuration(modality, sweep, edge)
    step_mean = _mean(by_key.get(key_of(step), {}), seeds)
    if step_mean is None:
        return Selection(sweep.family, None, f"best at the edge of its grid: the step {sweep.param}={edge:g} runs first",
                         step)
    if step_mean > means[best]:
        return Selection(sweep.family, step, f"the step beyond the edge ({sweep.param}={edge:g}) beat the grid", step)
    return Selection(sweep.family, grid[best], f"best of its grid and the step beyond its edge ({sweep.param}={edge:g})",
                     step)


def selections(scores: list[Score], modality: str, dataset: str | None) -> list[Selection]:
    by_key = table(scores, modality, dataset)
    return [select(by_key, modality, sweep) for sweep in sweeps(modality)]


def controls(scores: list[Score], modality: str, dataset: str | None, chosen: list[Selection]) -> list[Config]:
    """Each selected configuration that beats the selected NT-Xent on stage 1, run again at NT-Xent's temperature:
    does hardness add anything beyond a temperature?"""
    by_key = table(scores, modality, dataset)
    seeds = STAGE1_SEEDS[modality]
    base = next(s for s in chosen if s.family == BASELINE).config
    if base is None:
        return []
    base_mean = _mean(by_key.get(key_of(base), {}), seeds)
    out = []
    for s in chosen:
        if s.config is None or s.family in TEMPERATURE_FAMILIES or s.config.temperature == base.temperature:
            continue
        mean = _mean(by_key.get(key_of(s.config), {}), seeds)
        if mean is not None and base_mean is not None and mean > base_mean:
            out.append(Config(s.family, s.config.spec, base.temperature))
    return out


@functools.cache
def _committed_scores() -> tuple[Score, ...]:
    from benchmarks.tables import NEEDS
    from common.paths import REPO_ROOT
    from common.records import read_records

    return tuple(collect(read_records(REPO_ROOT / "tables" / "records", NEEDS)))


def follow_ups(modality: str, dataset: str | None, scores: list[Score] | None = None) -> list[Config]:
    """The cells stage 1's results call for (the suite reads the committed records): edge steps, then controls."""
    scores = list(_committed_scores()) if scores is None else scores
    chosen = selections(scores, modality, dataset)
    return [*(s.step for s in chosen if s.step is not None), *controls(scores, modality, dataset, chosen)]


def cell_hours(todo: list, records: list[dict]) -> dict[str, float]:
    """Cell key -> CPU-hours: the median recorded time of a run of the same protocol (graphs: and data set) times the
    runs the cell makes; cells with nothing to go by are left out."""
    times: dict[tuple[str, str | None], list[float]] = {}
    for r in records:
        config = r.get("config", {})
        if r.get("pipeline") == "graph" and config.get("profile") == "paper" and config.get("epochs") == 200:
            key: tuple[str, str | None] = ("graph", config.get("dataset"))
        elif r.get("pipeline") == "image" and config.get("profile") == "quick" and config.get("method") != "random-init":
            key = ("image", None)
        elif r.get("pipeline") == "sentence" and config.get("profile") == "quick" and str(config.get("row")).startswith("qt-"):
            key = ("sentence", None)
        else:
            continue
        times.setdefault(key, []).append(float(r.get("wall_time_s") or 0.0))
    out = {}
    for c in todo:
        if c.yields is not None and (runs := times.get((c.yields.modality, c.yields.dataset
                                                       if c.yields.modality == "graph" else None))):
            out[c.key] = statistics.median(runs) * len(c.yields.seeds) / 3600
    return out


def time_left(todo: list, records: list[dict]) -> str:
    """The coverage line's last sentence: :func:`cell_hours` of the cells still ``todo``, summed per modality."""
    hours = cell_hours(todo, records)
    left: dict[str, float] = {}
    for c in todo:
        if c.yields is not None:
            left[c.yields.modality] = left.get(c.yields.modality, 0.0) + hours.get(c.key, 0.0)
    if not left:
        return "Every declared cell has run."
    return ("The cells still to run would take about " + ", ".join(f"{m} {h:.0f} h" for m, h in sorted(left.items()))
            + " on one such core (median recorded time of the same protocol and data set, times the runs each cell "
            "makes).")


def _numbers(delta: PairedDelta | None) -> dict:
    """A comparison as JSON: Δ, s.e., 95% CI and uncorrected p (None where it does not exist)."""
    if delta is None:
        return {"delta": None, "se": None, "ci95": None, "p": None, "n": 0}
    interval = ci95(delta)
    return {"delta": delta.mean, "se": delta.se, "ci95": list(interval) if interval else None, "p": delta.p_value,
            "n": delta.n}


def _column_mde(deltas: list[PairedDelta | None], n: int, family: int) -> float | None:
    """The column's minimum detectable effect: the median paired s.d. of its comparisons, n seeds, Holm's first step."""
    sds = [d.se * math.sqrt(d.n) for d in deltas if d is not None and d.se is not None and d.se > 0]
    return min_detectable_effect(statistics.median(sds), n, family) if sds else None


def _command(modality: str, dataset: str | None, config: Config) -> str:
    from benchmarks.suites import run_cells

    cell = run_cells(modality, dataset, config, (STAGE1_SEEDS[modality][0],) if modality != "graph"
                     else STAGE1_SEEDS["graph"], config_key(modality, dataset, config))[0]
    return "python -m " + " ".join(a.replace("{records}", "tables/records/leaderboard.jsonl") for a in cell.argv)


def column_data(scores: list[Score], modality: str, dataset: str | None) -> tuple[dict, list[dict], list[Selection]]:
    """One stage-1 column: its header (baseline, MDE, untrained) and a row per declared configuration."""
    seeds = STAGE1_SEEDS[modality]
    by_key = table(scores, modality, dataset)
    chosen = selections(scores, modality, dataset)
    base_sel = next(s for s in chosen if s.family == BASELINE)
    base = base_sel.config or configuration(modality, sweeps(modality)[0], profile_temperature(modality))
    base_label = label_of(modality, base)
    baseline = {s: v for s, v in by_key.get(key_of(base), {}).items() if s in seeds}
    configs = list(dict.fromkeys([*stage1_configs(modality), *follow_ups(modality, dataset, scores)]))
    selected = {s.config for s in chosen if s.config is not None}
    rows = []
    for config in configs:
        label = label_of(modality, config)
        mine = {s: v for s, v in by_key.get(key_of(config), {}).items() if s in seeds}
        delta = paired_delta(mine, baseline) if config != base else None
        rows.append({"column": column_id(modality, dataset), "label": label, "family": config.family, "spec": config.spec,
                     "temperature": config.temperature, "stage": 1, "seeds": sorted(mine),
                     "scores": {str(s): v for s, v in sorted(mine.items())},
                     "baseline_scores": {str(s): v for s, v in sorted(baseline.items())},
                     "mean": statistics.fmean(mine.values()) if mine else None, **_numbers(delta),
                     "p_adjusted": None, "correction": None, "selected": config in selected, "marks": [],
                     "command": _command(modality, dataset, config)})
    family = [r for r in rows if r["p"] is not None and r["n"] == len(seeds)]
    for r, p in zip(family, holm_adjusted([r["p"] for r in family]), strict=True):
        r["p_adjusted"], r["correction"] = p, f"stage1:{column_id(modality, dataset)}"
        r["marks"] += ["H"] if p <= 0.05 else []
    for r in rows:
        r["marks"] += ["S"] if r["selected"] else []
    untrained = paired_delta({s: v for s, v in by_key.get(UNTRAINED_KEY, {}).items() if s in seeds}, baseline)
    deltas = [paired_delta({int(k): v for k, v in r["scores"].items()}, baseline) for r in rows]
    header = {"id": column_id(modality, dataset), "modality": modality, "dataset": ONE_COLUMN.get(modality, dataset),
              "metric": METRICS[modality], "baseline": base_label, "baseline_spec": base.spec,
              "baseline_temperature": base.temperature, "baseline_selected": base_sel.config is not None,
              "protocol": PROTOCOL[modality], "stage1_seeds": list(seeds),
              "mde": _column_mde(deltas, len(seeds), max(len(family), 1)),
              "baseline_mean": statistics.fmean(baseline.values()) if baseline else None,
              "untrained_delta": untrained.mean if untrained else None,
              "selections": [{"family": s.family, "label": label_of(modality, s.config) if s.config else None,
                              "why": s.why} for s in chosen]}
    return header, rows, chosen


def column_id(modality: str, dataset: str | None) -> str:
    return f"{modality}:{ONE_COLUMN.get(modality, dataset)}"


def check_rounds(records: list[dict], rounds: tuple[Round, ...] = TUNED_ROUNDS) -> None:
    """A round must not change after a fresh seed of it has run: the harness stores each fresh cell's round digest."""
    declared = {r.digest: r for r in rounds}
    for r in records:
        digest = r.get("config", {}).get("round") if r.get("pipeline") == "harness" else None
        if digest is not None and digest not in declared:
            raise UserError(f"a stage-2 round changed after its fresh seeds ran (cell {r['config'].get('cell')} ran "
                            f"under round {digest}, which benchmarks/suites.py no longer declares); restore it")


def round_claims(scores: list[Score], declared: Round) -> list[tuple[Claim, dict]]:
    """Each declared claim with its fresh-seed scores; the graph MEAN claim averages the six data sets per seed."""
    out = []
    for claim in declared.claims:
        arms = []
        for configs in (claim.configs, claim.baselines):
            per_seed: dict[int, list[float]] = {}
            for column, spec, temperature in configs:
                dataset = column if declared.modality == "graph" else None
                values = table(scores, declared.modality, dataset).get((spec, temperature), {})
                for seed, v in values.items():
                    per_seed.setdefault(seed, []).append(v)
            arms.append({s: statistics.fmean(v) for s, v in per_seed.items() if len(v) == len(configs)})
        key = f"{declared.modality}:{claim.column}:{claim.family}"
        out.append((Claim(key, arms[0], arms[1], declared.seeds), {"column": claim.column, "family": claim.family}))
    return out


def history(scores: list[Score]) -> dict:
    """The six untuned rounds re-judged post hoc as ONE Holm family (NT-Xent at the profile temperature)."""
    from common.objectives import parse_objective

    claims = []
    for modality, dataset, spec, seeds in LEADERBOARD_CONFIRMATIONS:
        by_key = table(scores, modality, None if modality != "graph" else dataset)
        with contextlib.suppress(ValueError):  # a family whose parameters changed since keeps its stored spec
            spec = str(parse_objective(spec))
        t = profile_temperature(modality)
        claims.append(Claim(f"{modality}:{dataset}:{spec}", by_key.get((spec, t), {}), by_key.get((BASELINE, t), {}),
                            tuple(seeds)))
    judged = judge(claims)
    return {"claims": [{"id": j.claim.key, **_numbers(j.delta), "p_adjusted": j.p_adjusted, "verdict": j.verdict}
                       for j in judged],
            "survivors": [j.claim.key for j in judged if j.verdict == "gain"]}


def data(records: list[dict]) -> dict:
    """Everything the pages show, machine-readable and enough to recompute them (schema 1)."""
    check_rounds(records)
    scores = collect(records)
    out: dict = {"schema": 1, "columns": [], "cells": [], "claims": [], "proposed": {}}
    stale = sum(s.protocol != PROTOCOL.get(s.modality if s.modality != "graph-jsd" else "graph") for s in scores)
    runs = [r for r in records if r.get("pipeline") in MODALITIES]
    out["provenance"] = (f"{len(runs)} run records of {len({r.get('git_commit') for r in runs})} commits; "
                         f"{stale} scores of older protocol versions are history and pair with nothing")
    chosen_by_column = {}
    for modality in MODALITIES:
        for dataset in columns(modality):
            header, rows, chosen = column_data(scores, modality, dataset)
            out["columns"].append(header)
            out["cells"] += rows
            chosen_by_column[(modality, dataset)] = chosen
    for declared in TUNED_ROUNDS:
        pairs = round_claims(scores, declared)
        judged = judge([c for c, _ in pairs])
        sds = [j.delta.se * math.sqrt(j.delta.n) for j in judged if j.delta is not None and j.delta.se]
        mde = min_detectable_effect(statistics.median(sds), len(declared.seeds), len(pairs)) if sds else None
        for (claim, meta), j in zip(pairs, judged, strict=True):
            out["claims"].append({"id": claim.key, "round": f"{declared.modality} ({declared.digest})", **meta,
                                  "seeds": list(declared.seeds),
                                  "scores": {str(s): v for s, v in sorted(claim.values.items())},
                                  "baseline_scores": {str(s): v for s, v in sorted(claim.baseline.items())},
                                  **_numbers(j.delta), "p_adjusted": j.p_adjusted, "verdict": j.verdict,
                                  "correction": f"holm:{declared.modality}", "mde": mde})
    declared_modalities = {r.modality for r in TUNED_ROUNDS}
    for modality in MODALITIES:
        if modality not in declared_modalities:
            out["proposed"][modality] = proposal(modality, {d: chosen_by_column[(modality, d)] for d in columns(modality)})
    out["history_claims"] = history(scores)
    survivors = out["history_claims"]["survivors"]
    out["history"] = (f"The six rounds of the untuned board, re-judged post hoc as one Holm family over all "
                      f"{len(out['history_claims']['claims'])} claims (their per-round marks are superseded): "
                      f"{len(survivors)} survive ({', '.join(survivors) or 'none'}).")
    out["verdicts"] = {m: verdict(m, out) for m in MODALITIES}
    return out


def verdict(modality: str, data_: dict) -> str:
    """One plain sentence per modality, no stronger than its evidence: the declared round's corrected verdicts, or
    how far stage 1 has come."""
    claims = [c for c in data_["claims"] if c["id"].startswith(modality + ":")]
    header = [c for c in data_["columns"] if c["modality"] == modality]
    if not claims:
        rows = [c for c in data_["cells"] if c["column"] in {h["id"] for h in header}]
        complete = sum(len(r["seeds"]) == len(STAGE1_SEEDS[modality]) for r in rows)
        picked = sum(s["label"] is not None for h in header for s in h["selections"])
        total = sum(len(h["selections"]) for h in header)
        return (f"No verdict yet: stage 1 has {complete} of {len(rows)} configurations complete and {picked} of {total} "
                "families selected; the tuned round is declared once every selection is made.")
    if any(c["verdict"] == "pending" for c in claims):
        ran = sum(len(set(c["scores"]) & set(c["baseline_scores"])) for c in claims)
        return (f"No verdict yet: the declared round has {ran} of {sum(len(c['seeds']) for c in claims)} paired fresh "
                "runs in; nothing is judged before all of them.")
    gains = [f"{c['family']} ({c['column']}) {c['delta']:+.2f}" for c in claims if c["verdict"] == "gain"]
    losses = [f"{c['family']} ({c['column']}) {c['delta']:+.2f}" for c in claims if c["verdict"] == "loss"]
    mde = max((c["mde"] for c in claims if c["mde"] is not None), default=None)
    said = [f"better than the temperature-tuned NT-Xent: {', '.join(gains)}" if gains else
            "no family beats the temperature-tuned NT-Xent" + (f" by more than {mde:.1f} points" if mde else "")]
    if losses:
        said.append(f"worse: {', '.join(losses)}")
    if not any(c["family"] == "hard" and c["verdict"] == "gain" for c in claims):
        said.append("hard negatives (HCL) do not beat a temperature-tuned NT-Xent here")
    return "; ".join(said) + f" (Holm over {len(claims)} claims, fresh seeds)."


def proposal(modality: str, chosen: dict[str | None, list[Selection]]) -> str | None:
    """The round to declare, as code for benchmarks/suites.py, once every selection of the modality is made."""
    if any(s.config is None for sel in chosen.values() for s in sel):
        return None
    families = [s.family for s in next(iter(chosen.values())) if s.family != BASELINE]
    claims = []
    for family in families:
        per = {d: next(s.config for s in sel if s.family == family) for d, sel in chosen.items()}
        base = {d: next(s.config for s in sel if s.family == BASELINE) for d, sel in chosen.items()}
        name = {d: d or ONE_COLUMN[modality] for d in chosen}
        for d in chosen:
            claims.append(f"Claim({name[d]!r}, {family!r}, (({name[d]!r}, {per[d].spec!r}, {per[d].temperature!r}),), "
                          f"(({name[d]!r}, {base[d].spec!r}, {base[d].temperature!r}),))")
        if modality == "graph":
            claims.append(f"Claim(MEAN, {family!r}, ({', '.join(repr((name[d], per[d].spec, per[d].temperature)) for d in chosen)},), "
                          f"({', '.join(repr((name[d], base[d].spec, base[d].temperature)) for d in chosen)},))")
    body = ",\n        ".join(claims)
    return f"Round({modality!r}, (\n        {body},\n    ), FRESH_SEEDS[{modality!r}])"


