"""The leaderboard, tuned against tuned: which way of handling negatives helps, in which modality, by how much.

Computed once per ``make tables`` into one dict (``tables/leaderboard.json``) that the markdown page, the HTML page
and the plot are rendered from. Scores come from the pipelines' reports; pairing, Holm, power and the claims engine
from ``common.stats``; what runs and what is claimed from ``benchmarks.suites``. Nothing here is measured or typed in.
"""

from __future__ import annotations

import contextlib
import math
import statistics

from benchmarks.stage1 import (
    ONE_COLUMN,
    UNTRAINED_KEY,
    Selection,
    controls,
    follow_ups,
    key_of,
    label_of,
    selections,
    table,
)
from benchmarks.suites import (
    BASELINE,
    FRESH_SEEDS,
    LEADERBOARD_CONFIRMATIONS,
    MODALITIES,
    STAGE1_SEEDS,
    TUNED_ROUNDS,
    Config,
    Round,
    columns,
    config_key,
    configuration,
    profile_temperature,
    stage1_configs,
    sweeps,
)
from benchmarks.suites import Claim as SuiteClaim
from common.errors import UserError
from common.protocols import PROTOCOL
from common.stats import Claim, PairedDelta, Score, ci95, holm_adjusted, judge, min_detectable_effect, paired_delta

#: What a column scores, per modality.
METRICS = {
    "image": "linear-probe top-1 %, quick profile (compact ResNet-18, 10k CIFAR-10 images, 8 epochs)",
    "sentence": "mean accuracy % of the six transfer tasks, quick-thought quick profile",
    "graph": "SVM accuracy %, paper protocol (200 epochs), InfoNCE local-global estimator",
}


def _numbers(delta: PairedDelta | None) -> dict:
    """A comparison as JSON: Δ, s.e., 95% CI and uncorrected p (None where it does not exist)."""
    if delta is None:
        return {"delta": None, "se": None, "ci95": None, "p": None, "n": 0}
    interval = ci95(delta)
    return {"delta": delta.mean, "se": delta.se, "ci95": list(interval) if interval else None, "p": delta.p_value,
            "n": delta.n}


def _paired_sd(deltas: list[PairedDelta | None], n: int) -> float | None:
    """The column's spread: the median paired s.d. of its comparisons over all ``n`` seeds (a comparison on fewer
    seeds says too little about the spread yet)."""
    sds = [d.se * math.sqrt(d.n) for d in deltas if d is not None and d.n == n and d.se is not None and d.se > 0]
    return statistics.median(sds) if sds else None


def planned_power(modality: str, columns_: list[dict]) -> dict | None:
    """What the modality's round can detect before its fresh seeds run: its claims (declared, or those its
    proposal will hold) on its fresh seeds, at the median stage-1 spread of its columns, Holm's first step. Stated
    in advance, so a null of the round reads "none larger than this" by design, not after the fact."""
    sds = [c["paired_sd"] for c in columns_ if c["modality"] == modality and c["paired_sd"] is not None]
    declared = next((r for r in TUNED_ROUNDS if r.modality == modality), None)
    families = len(sweeps(modality)) - 1  # every family but the baseline
    claims = len(declared.claims) if declared else families * (len(columns(modality)) + (modality == "graph"))
    seeds = len(declared.seeds if declared else FRESH_SEEDS[modality])
    if not sds:
        return None
    sd = statistics.median(sds)
    return {"claims": claims, "seeds": seeds, "paired_sd": sd, "mde": min_detectable_effect(sd, seeds, claims)}


def _command(modality: str, dataset: str | None, config: Config) -> str:
    from benchmarks.leaderboard_cells import run_cells

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
              "paired_sd": (sd := _paired_sd(deltas, len(seeds))),
              "mde": min_detectable_effect(sd, len(seeds), max(len(family), 1)) if sd else None,
              "baseline_mean": statistics.fmean(baseline.values()) if baseline else None,
              "untrained_delta": untrained.mean if untrained else None,
              "selections": [{"family": s.family, "label": label_of(modality, s.config) if s.config else None,
                              "why": s.why} for s in chosen],
              "controls": [_control(by_key, modality, chosen, c, baseline) for c in controls(chosen)]}
    return header, rows, chosen


def _control(by_key: dict, modality: str, chosen: list[Selection], control: Config, baseline: dict[int, float]) -> dict:
    """A temperature control: the family's selected configuration at its own temperature and at the tuned NT-Xent's,
    each paired with the baseline, and the control paired with the selection (what the temperature alone changes)."""
    seeds = STAGE1_SEEDS[modality]
    own = next(s.config for s in chosen if s.family == control.family)
    scores = {c: {s: v for s, v in by_key.get(key_of(c), {}).items() if s in seeds} for c in (own, control)}
    return {"family": control.family, "selected": label_of(modality, own), "control": label_of(modality, control),
            "temperature": own.temperature, "control_temperature": control.temperature,
            "selected_vs_baseline": _numbers(paired_delta(scores[own], baseline)),
            "control_vs_baseline": _numbers(paired_delta(scores[control], baseline)),
            "control_vs_selected": _numbers(paired_delta(scores[control], scores[own])),
            "complete": all(len(v) == len(seeds) for v in scores.values())}


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
            arms.append({s: statistics.fmean(v) for s, v in per_seed.items()  # stage-1 seeds stay out
                         if s in declared.seeds and len(v) == len(configs)})
        key = f"{declared.modality}:{claim.column}:{claim.family}"
        out.append((Claim(key, arms[0], arms[1], declared.seeds), _claim_meta(declared, claim)))
    return out


def _claim_meta(declared: Round, claim: SuiteClaim) -> dict:
    """What the pages show of a claim: its column id (as cells have), both arms' labels and specs, and the harness
    command that runs its fresh seeds (the graph mean's arms are each data set's selection, so it has none)."""
    modality = declared.modality
    if len(claim.configs) > 1:
        return {"column": f"{modality}:{claim.column}", "family": claim.family,
                "label": f"{claim.family} (each data set's selection)", "baseline": f"{BASELINE} (each data set's selection)",
                "spec": "; ".join(f"{c}: {spec} t={t:g}" for c, spec, t in claim.configs), "temperature": None,
                "command": ""}
    (column, spec, t), (_, base_spec, base_t) = claim.configs[0], claim.baselines[0]
    dataset = column if modality == "graph" else None
    arm, base = Config(claim.family, spec, t), Config(BASELINE, base_spec, base_t)
    fresh = [config_key(modality, dataset, c, fresh=True) for c in (arm, base)]
    return {"column": column_id(modality, dataset), "family": claim.family, "label": label_of(modality, arm),
            "baseline": label_of(modality, base), "spec": spec, "temperature": t,
            "command": "python -m benchmarks run leaderboard " + " ".join(f"--only '{k}/*'" for k in fresh)}


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
    from benchmarks.stage1 import collect

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
    out["planned"] = {m: planned_power(m, out["columns"]) for m in MODALITIES}
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
                "families selected; the tuned round is declared once every selection is made." + _planned(data_, modality))
    if any(c["verdict"] == "pending" for c in claims):
        ran = sum(len(set(c["scores"]) & set(c["baseline_scores"])) for c in claims)
        return (f"No verdict yet: the declared round has {ran} of {sum(len(c['seeds']) for c in claims)} paired fresh "
                "runs in; nothing is judged before all of them." + _planned(data_, modality))
    def named(c: dict) -> str:  # graph claims say their data set (or the mean of the six)
        return c["label"] + (f" on {c['column'].split(':', 1)[1]}" if modality == "graph" else "")

    gains = [f"{named(c)} {c['delta']:+.2f}" for c in claims if c["verdict"] == "gain"]
    losses = [f"{named(c)} {c['delta']:+.2f}" for c in claims if c["verdict"] == "loss"]
    nulls = [named(c) for c in claims if c["verdict"] == "no effect"]
    mde = max((c["mde"] for c in claims if c["mde"] is not None), default=None)
    bound = f"no effect larger than {mde:.1f} points" if mde else "no effect"
    said = [f"better than the temperature-tuned NT-Xent: {', '.join(gains)}" if gains else
            "no family beats the temperature-tuned NT-Xent" + (f" by more than {mde:.1f} points" if mde else "")]
    if losses:
        said.append(f"worse: {', '.join(losses)}")
    if nulls:
        said.append(f"{bound}: {', '.join(nulls)}" if len(nulls) <= 8 else f"{bound} in the other {len(nulls)} claims")
    if not any(c["family"] == "hard" and c["verdict"] == "gain" for c in claims):
        said.append("hard negatives (HCL) do not beat a temperature-tuned NT-Xent here")
    return "; ".join(said) + f" (Holm over {len(claims)} claims, fresh seeds)."


def _planned(data_: dict, modality: str) -> str:
    plan = data_["planned"].get(modality)
    if not plan or plan["mde"] is None:
        return ""
    return (f" Planned power: its {plan['claims']} claims on {plan['seeds']} fresh seeds detect a true |Δ| of "
            f"{plan['mde']:.1f} points or more (80% power after Holm, at stage 1's median paired s.d. of {plan['paired_sd']:.2f}).")


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


