"""Typed rows of the sentence results, from run records alone: means over seeds, paired deltas, Holm.

Two blocks, each its own Holm family: quick-thought (debiased and hard against plain, every
method against the untrained encoder, paired by seed) and the MiniLM fine-tunes (each variant
against plain, every variant against the shipped model). The score a verdict is read on is the
mean accuracy over the row's tasks (MRPC by accuracy); per-task means are shown beside it.
Records are grouped by profile and task list: the six tasks, or a subset that a quick CPU run
evaluates on (its rows are compared only with rows of the same subset). Only records of the
current evaluator (:data:`sentence.senteval.EVALUATOR`) are compared; older ones are counted,
never mixed in.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from common.format import mean_sd, paired
from common.protocols import history, protocol_of
from common.records import NUMBER
from common.stats import UNTRAINED, Claim, CurveScore, PairedDelta, Score, config_label, judge
from sentence.config import TASKS
from sentence.identity import row_of

#: What a sentence record must hold to be resumed or tabulated (``common.records.read_records``).
RECORD_NEEDS = {"sentence": {"config.profile": str, "config.row": str, "seed": int, "wall_time_s": NUMBER}}

COLUMNS = ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC_acc", "MRPC_f1")
HEADERS = ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC acc", "MRPC F1")
AVERAGED = ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC_acc")  # the verdict score: mean accuracy over the tasks run
QUICK_THOUGHT = ("qt-plain", "qt-debiased", "qt-hard")
#: The fine-tunes in the order the table shows them first (any other objective's row follows, by name).
FINETUNES = ("minilm-plain", "minilm-hard-tau_plus=0", "minilm-debiased", "minilm-hardness", "minilm-hardness-alpha=5")
#: block -> (its rows in order, the reference row, the baseline of the variants)
BLOCKS = {
    "quick-thought": (("random", *QUICK_THOUGHT), "random", "qt-plain"),
    "fine-tune": (("minilm", *FINETUNES), "minilm", "minilm-plain"),
}


@dataclass
class Row:
    """One encoder of one profile: per-seed scores and what they are compared with."""

    block: str
    row: str
    profile: str
    seeds: list[int]
    scores: dict[str, list[float]]  # column -> one value per seed (nan where absent)
    average: dict[int, float]  # seed -> mean accuracy over the tasks
    name: str = ""  # what a reader sees (:func:`row_label`)
    tasks: tuple[str, ...] = TASKS
    finetune_steps: tuple[int, ...] = ()  # the fine-tune step counts of the seeds (one value unless mixed)
    vs_plain: PairedDelta | None = None
    vs_plain_holm: bool | None = None
    vs_reference: PairedDelta | None = None
    vs_reference_holm: bool | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    floor_fraction: float | None = None
    train_s: float | None = None
    eval_s: float | None = None

    @property
    def setting(self) -> str:
        """The profile, and the task list where it is not all six: ``quick``, ``quick, CR+MPQA+TREC``."""
        return setting_label(self.profile, self.tasks)


#: The rows that ran no objective, by name.
FIXED_NAMES = {"random": "random encoder (quick-thought, untrained)", "minilm": "all-MiniLM-L6-v2 as shipped"}
ENCODERS = {"qt": "quick-thought", "minilm": "MiniLM fine-tuned"}


def row_label(config: dict[str, Any]) -> str:
    """What a reader sees for a record's row, on the page and in log lines: the encoder and its objective's registry
    label (``quick-thought, hard beta=2``; ``MiniLM fine-tuned, hard tau_plus=0``); the row id for a record that
    names no objective."""
    from common.objectives import from_dict

    row = row_of(config)
    prefix = row.split("-")[0]
    if config.get("objective") and prefix in ENCODERS and row != prefix:
        return f"{ENCODERS[prefix]}, {from_dict(config['objective']).label()}"
    return FIXED_NAMES.get(row, row)


def average(metrics: dict[str, Any], tasks: tuple[str, ...] = TASKS) -> float:
    """The score a row's verdicts and the leaderboard read: the mean accuracy over ``tasks`` (MRPC by accuracy)."""
    return statistics.fmean(metrics[c] for c in _averaged(tasks))


def setting_label(profile: str, tasks: tuple[str, ...]) -> str:
    return profile if tasks == TASKS else f"{profile}, {'+'.join(tasks)}"


def _averaged(tasks: tuple[str, ...]) -> list[str]:
    return [c for c in AVERAGED if c.removesuffix("_acc") in tasks]


Group = tuple[str, tuple[str, ...], str]  # profile, tasks, row


def _latest_per_seed(records: list[dict[str, Any]], evaluator: str) -> dict[Group, dict[int, dict[str, Any]]]:
    """Each (setting, tasks, row)'s latest record per seed. The untrained quick-thought encoder (one run per seed,
    whatever training its command would have done) joins every quick-thought setting that differs from its own only
    in what training alone reads: it is that block's reference."""
    latest: dict[Group, dict[int, dict[str, Any]]] = defaultdict(dict)
    untrained_view: dict[tuple[str, tuple[str, ...]], str] = {}  # a trained setting -> its untrained rows' setting
    for r in records:
        config = r.get("config", {})
        tasks = tuple(config.get("tasks") or ())
        if (r.get("pipeline") == "sentence" and config.get("evaluator") == evaluator and tasks
                and set(tasks) <= set(TASKS)):
            tasks, setting, row = tuple(t for t in TASKS if t in tasks), setting_of(config, protocol_of(r)), row_of(config)
            latest[(setting, tasks, row)][r["seed"]] = r
            if row.startswith("qt-"):
                untrained_view[(setting, tasks)] = setting_of(config, protocol_of(r), untrained=True)
    reference = BLOCKS["quick-thought"][1]
    views = {(view, tasks) for (setting, tasks), view in untrained_view.items() if view != setting}
    for (setting, tasks), view in untrained_view.items():
        if view != setting and (view, tasks, reference) in latest:
            latest[(setting, tasks, reference)] = latest[(view, tasks, reference)]
    for view, tasks in views:  # shown with the runs it is the reference of, not again alone
        if not any(key[:2] == (view, tasks) and key[2] not in FIXED_NAMES for key in latest):
            latest.pop((view, tasks, reference), None)
    return latest


def setting_of(config: dict[str, Any], protocol: int, *, untrained: bool = False) -> str:
    """The profile's name, with the training settings the command changed (a temperature sweep's
    ``temperature=0.05``, a batch curve's ``batch_size=100``) and an older protocol version: runs of two settings
    never share a row or pair. The untrained rows (or, with ``untrained``, the view of a trained run they share)
    change only with what they read, not the temperature or the steps; a fine-tune's step count has its own column."""
    from sentence.config import PROFILES
    from sentence.identity import TRAINING_ONLY

    settings, changes = config.get("settings"), []
    if isinstance(settings, dict) and config["profile"] in PROFILES:
        row, base = row_of(config), PROFILES[config["profile"]].to_dict()
        section, skip = (("finetune", ("steps", "curve_every")) if row.startswith("minilm-") else
                         ("train", ("eval_every", "checkpoint_every", *(TRAINING_ONLY if untrained or "-" not in row else ()))))
        changes = [f"{k}={v:g}" for k, v in settings.get(section, {}).items()
                   if k not in skip and k in base[section] and v != base[section][k]]
    changes += history("sentence", protocol)
    return ", ".join([config["profile"], *changes])


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(values) if values else None


def rows(records: list[dict[str, Any]]) -> list[Row]:
    """Every block's rows per profile, with deltas and Holm verdicts (one family per block and profile)."""
    from sentence.senteval import EVALUATOR

    latest = _latest_per_seed(records, EVALUATOR)
    out: list[Row] = []
    # the six tasks first, then the subsets
    for profile, tasks in sorted({key[:2] for key in latest}, key=lambda k: (k[0], k[1] != TASKS, k[1])):
        present = {key[2] for key in latest if key[:2] == (profile, tasks)}
        for block, (names, reference, plain) in BLOCKS.items():
            if block == "fine-tune":  # every objective fine-tuned, the usual ones first
                names = (*names, *sorted(r for r in present if r.startswith("minilm-") and r not in names))
            block_rows = []
            for name in names:
                by_seed = latest.get((profile, tasks, name))
                if not by_seed:
                    continue
                seeds = sorted(by_seed)
                metrics = [by_seed[s]["metrics"] for s in seeds]
                steps = sorted({by_seed[s]["config"]["settings"]["finetune"]["steps"] for s in seeds
                                if "settings" in by_seed[s]["config"]}) if name.startswith("minilm-") else []
                row = Row(block, name, profile, seeds,
                          {c: [m.get(c, math.nan) for m in metrics] for c in COLUMNS},
                          {s: average(by_seed[s]["metrics"], tasks) for s in seeds},
                          name=row_label(by_seed[seeds[-1]]["config"]), tasks=tasks, finetune_steps=tuple(steps),
                          loss_first=_mean([m.get("loss_first") for m in metrics]),
                          loss_last=_mean([m.get("loss_last") for m in metrics]),
                          floor_fraction=_mean([m.get("floor_fraction") for m in metrics]),
                          train_s=_mean([m.get("train_time_s") for m in metrics]),
                          eval_s=_mean([m.get("eval_time_s") for m in metrics]))
                block_rows.append(row)
            _compare(block_rows, reference, plain)
            out += block_rows
    return out


def _compare(block_rows: list[Row], reference: str, plain: str) -> None:
    """Deltas against plain (variants) and against the reference row (every trained row); Holm over all of them.

    The shipped model is one fixed encoder: a fine-tune's seeds are compared with its single
    score (a one-sample test); the untrained encoder has one initialisation per seed (paired).
    """
    by_name = {r.row: r for r in block_rows}
    claims: list[tuple[Row, str, Claim]] = []
    for row in block_rows:
        if row.row == reference:
            continue
        arms = {}
        if reference in by_name:
            ref = by_name[reference].average
            arms["reference"] = ref if len(ref) > 1 else {s: next(iter(ref.values())) for s in row.average}
        if row.row != plain and plain in by_name:
            arms["plain"] = by_name[plain].average
        for kind, baseline in arms.items():
            claim = Claim(f"{row.row} vs {kind}", row.average, baseline, tuple(sorted(set(row.average) & set(baseline))))
            setattr(row, f"vs_{kind}", claim.delta)
            if claim.delta is not None and claim.delta.p_value is not None:  # one seed: shown, never tested
                claims.append((row, kind, claim))
    for (row, kind, _), judged in zip(claims, judge([c for _, _, c in claims]), strict=True):
        setattr(row, f"vs_{kind}_holm", judged.verdict in ("gain", "loss"))


def _verdict(delta: PairedDelta | None, reject: bool | None) -> str:
    if delta is None or reject is None:
        return paired(delta)
    return f"{paired(delta)} ({'beyond' if reject else 'not beyond'} Holm)"


def markdown_table(table_rows: list[Row]) -> str:
    """The sentence table: mean ± std over seeds per task, the average over the tasks and its verdicts."""
    lines = ["| setting | encoder | seeds | " + " | ".join(HEADERS) + " | avg | Δ avg vs plain | Δ avg vs untrained/shipped "
             "| loss first → last | anchors on floor | train s | eval s |",
             "|---" * (len(HEADERS) + 10) + "|"]
    for r in table_rows:
        loss = f"{r.loss_first:.3f} → {r.loss_last:.3f}" if r.loss_first is not None else "–"
        floor = f"{r.floor_fraction:.1%}" if r.floor_fraction is not None and r.row in ("minilm-debiased",) else "–"
        name = r.name + (f", {'/'.join(map(str, r.finetune_steps))} steps" if r.finetune_steps else "")
        cells = [r.setting, name, ",".join(map(str, r.seeds)), *(mean_sd(r.scores[c], 1) for c in COLUMNS),
                 mean_sd(r.average.values()), _verdict(r.vs_plain, r.vs_plain_holm),
                 _verdict(r.vs_reference, r.vs_reference_holm), loss, floor,
                 "–" if r.train_s is None else f"{r.train_s:.0f}", "–" if r.eval_s is None else f"{r.eval_s:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DATASET = "6 transfer tasks"  # what the leaderboard calls the six-task average


def _comparable(record: dict[str, Any], profile: str) -> bool:
    """A sentence record of ``profile`` and the current evaluator that holds all six tasks' accuracies."""
    from sentence.senteval import EVALUATOR

    config = record.get("config", {})
    return (record.get("pipeline") == "sentence" and config.get("profile") == profile
            and config.get("evaluator") == EVALUATOR and all(c in record["metrics"] for c in AVERAGED))


def scores(records: list[dict[str, Any]], profile: str = "quick") -> list[Score]:
    """The leaderboard's sentence scores: quick-thought rows of ``profile`` by objective, the random encoder as
    untrained; each the mean accuracy of the six transfer tasks (records with fewer tasks, or of an older
    evaluator, are left out: they are not comparable)."""
    import dataclasses

    from common.objectives import from_dict, parse_objective
    from sentence.config import PROFILES

    profile_train = dataclasses.asdict(PROFILES[profile].train)
    default_t = profile_train.pop("temperature")
    protocol = {k: profile_train[k] for k in ("batch_size", "max_tokens", "steps", "lr", "grad_clip", "train_books")}
    out = []
    for r in records:
        config = r.get("config", {})
        if not _comparable(r, profile):
            continue
        if config.get("row") == "random":
            label, spec, temperature = UNTRAINED, "", None
        elif str(config.get("row", "")).startswith("qt-"):
            train = config.get("settings", {}).get("train", {})
            # The temperature is a tuned configuration of the row (its label says so); any other change of the
            # profile's training (a shorter smoke run) is another protocol.
            if any(train.get(k, v) != v for k, v in protocol.items()):
                continue
            objective = from_dict(config["objective"]) if "objective" in config else parse_objective(config["method"])
            spec, temperature = str(objective), train.get("temperature", default_t)
            label = config_label(objective.label(), temperature, default_t)
        else:
            continue
        out.append(Score("sentence", DATASET, label, r["seed"], average(r["metrics"]), protocol_of(r), spec, temperature))
    return out


#: Training settings a robustness curve varies (issue 40), and those that only schedule validation and checkpoints.
CURVE_VARIED = ("batch_size", "lr", "steps", "temperature")
SCHEDULE = ("eval_every", "checkpoint_every", "val_batches")


def curve_scores(records: list[dict[str, Any]], profile: str = "quick") -> list[CurveScore]:
    """Robustness-curve points of the quick-thought rows of ``profile``: one per entry of ``metrics["avg_at"]`` (a
    run with ``--eval-at``), else one at its last step; each the six-task average the leaderboard reads.

    Only runs whose settings are the profile's but for :data:`CURVE_VARIED` count (corpus, model, evaluation and the
    rest of training equal; seed and the validation/checkpoint schedule are free): anything else changed is
    another protocol.
    """
    from common.objectives import from_dict
    from sentence.config import PROFILES

    def fixed(settings: dict[str, Any]) -> dict[str, Any]:
        train = {k: v for k, v in settings.get("train", {}).items() if k not in CURVE_VARIED + SCHEDULE}
        return {"corpus": settings.get("corpus"), "model": settings.get("model"), "eval": settings.get("eval"),
                "train": train}

    expected = fixed(json.loads(json.dumps(PROFILES[profile].to_dict())))  # tuples as a record stores them
    out = []
    for r in records:
        config = r.get("config", {})
        settings = config.get("settings")
        if (not _comparable(r, profile) or not str(config.get("row", "")).startswith("qt-") or "objective" not in config
                or not isinstance(settings, dict) or fixed(settings) != expected):
            continue
        train = settings["train"]
        at = r["metrics"].get("avg_at") or {str(train["steps"]): average(r["metrics"])}
        for step, value in sorted(at.items(), key=lambda item: int(item[0])):
            out.append(CurveScore("sentence", DATASET, str(from_dict(config["objective"])), train["temperature"],
                                  train["batch_size"], train["steps"], int(step), r["seed"], value, protocol_of(r)))
    return out


def loss_curves(records: list[dict[str, Any]]) -> list[str]:
    """One line per fine-tune record: variant, seed, the loss every ``curve_every`` steps."""
    from sentence.senteval import EVALUATOR

    lines = []
    for (profile, tasks, _), by_seed in _latest_per_seed(records, EVALUATOR).items():
        for seed, r in sorted(by_seed.items()):
            curve = r["metrics"].get("loss_curve")
            if curve:
                points = ", ".join(f"{c['step']}: {c['loss']:.3f}" for c in curve)
                lines.append(f"- {setting_label(profile, tasks)}, {row_label(r['config'])}, seed {seed}: {points}")
    return sorted(lines)


def speed_table(records: list[dict[str, Any]]) -> list[str]:
    """Before/after seconds per encoder from the latest ``python -m benchmarks.senteval_speed`` record."""
    speed = [r for r in records if r.get("pipeline") == "senteval-speed"]
    if not speed:
        return []
    latest = speed[-1]
    lines = ["| encoder | encode s (once) | classifier s before | classifier s after (parallel folds) | after, 1 job "
             "| before: encode + classifier | after, cache cold | after, cache warm | largest |Δ accuracy| "
             "| convergence warnings after |", "|---" * 10 + "|"]
    for row in latest["metrics"]["rows"]:
        diff = max(t["max_abs_diff"] for t in row["tasks"])
        warnings = sum(t["convergence_warnings"] for t in row["tasks"])
        lines.append(f"| {row['encoder']} | {row['encode_s']:.0f} | {row['legacy_classify_s']:.0f} | {row['classify_s']:.0f} "
                     f"| {row['classify_1job_s']:.0f} | {row['before_s']:.0f} | {row['after_cold_s']:.0f} "
                     f"| {row['after_cached_s']:.0f} | {diff:.3f} | {warnings} |")
    hw = latest["hardware"]
    lines += ["", f"Per task ({hw['cpu']}, {hw['cpu_count']} cores, {latest['config']['jobs']} parallel folds, "
              f"{hw['torch_threads']} torch thread(s), commit {latest['git_commit'][:12]}, {latest['finished_at']}):", "",
              "| encoder | task | encode s | classifier s before → after | accuracy before → after |", "|---|---|---|---|---|"]
    for row in latest["metrics"]["rows"]:
        for t in row["tasks"]:
            scores = "; ".join(f"{k} {t['before'][k]:.2f} → {t['after'][k]:.2f}" for k in t["before"])
            lines.append(f"| {row['encoder']} | {t['task']} | {t['encode_s']:.1f} | {t['legacy_classify_s']:.1f} → "
                         f"{t['classify_s']:.1f} | {scores} |")
    lines += floor_lines(records)
    for ref in (r for r in records if r.get("pipeline") == "senteval-reference"):
        max_iter = ref["config"]["legacy_max_iter"]
        lines += ["", f"The old classifier given max_iter {max_iter} (so that lbfgs converges) against the new one, same "
                  f"embeddings (commit {ref['git_commit'][:12]}):", "",
                  "| encoder | task | accuracy old (converged) → new | largest |Δ| |", "|---|---|---|---|"]
        for row in ref["metrics"]["rows"]:
            for t in row["tasks"]:
                scores = "; ".join(f"{k} {t['legacy'][k]:.2f} → {t['after'][k]:.2f}" for k in t["legacy"])
                lines.append(f"| {row['encoder']} | {t['task']} | {scores} | {t['max_abs_diff']:.3f} |")
    return lines


def floor_lines(records: list[dict[str, Any]], target_s: float = 120.0) -> list[str]:
    """What a cold MiniLM evaluation cannot beat: the fp32 GEMM floor of its encoding (``--floor`` records, the
    latest per machine and thread count), set against the ``target_s`` of issue 21."""
    latest = {(r["hardware"]["cpu"], r["metrics"]["threads"]): r for r in records if r.get("pipeline") == "senteval-floor"}
    if not latest:
        return []
    lines = ["", "The floor of a cold MiniLM encoding (`python -m benchmarks.senteval_speed --floor --threads T`): the "
             "six tasks' distinct sentences batched as the evaluator batches them, their linear layers' fp32 GEMMs "
             "replayed back to back (attention left out, so a lower bound):", "",
             "| CPU | threads | sentences | tokens (padded) | batches | GEMM GFLOP | floor s | GFLOP/s | "
             f"floor vs the {target_s:.0f} s target | commit |", "|---" * 10 + "|"]
    for (cpu, threads), r in sorted(latest.items()):
        m = r["metrics"]
        verdict = "above: not reachable at fp32" if m["floor_s"] > target_s else "below"
        lines.append(f"| {cpu} | {threads} | {m['sentences']} | {m['tokens']} ({m['padded_tokens']}) | {m['batches']} | "
                     f"{m['gemm_gflop']:.0f} | {m['floor_s']:.0f} | {m['gemm_gflop'] / m['floor_s']:.0f} | {verdict} | "
                     f"{r['git_commit'][:12]} |")
    return lines


def agreement_table(records: list[dict[str, Any]]) -> list[str]:
    """Old vs new classifier on the train-test tasks from the latest ``--agreement`` record: the C each chose, the
    test accuracies, how many test predictions differ, and a fit of each chosen C run to a tight tolerance."""
    found = [r for r in records if r.get("pipeline") == "senteval-agreement"]
    if not found:
        return []
    latest = found[-1]
    tol = latest["config"]["tight_tol"]
    lines = ["| encoder | task (test size) | new: C, acc | old max_iter 200: C, acc, predictions ≠ new | old max_iter "
             f"10000: C, acc, predictions ≠ new | tight fit (tol {tol:g}): C, acc, predictions ≠ new / ≠ old 10000 "
             "| new − tight, same C | old 10000 − tight, same C |", "|---" * 8 + "|"]
    for row in latest["metrics"]["rows"]:
        for t in row["tasks"]:
            old = {legacy["max_iter"]: legacy for legacy in t["legacy"]}
            cells = [f"C {o['c']:g}, {o['acc']:.2f}, {o['predictions_differ_from_new']}" for o in (old[200], old[10000])]
            tight = "; ".join(f"C {x['c']:g}, {x['acc']:.2f}, {x['predictions_differ_from_new']} / "
                              f"{x['predictions_differ_from_legacy']['10000']}" for x in t["tight"])
            at = {x["c"]: x["acc"] for x in t["tight"]}
            gaps = (t["new_acc"] - at[t["c_new"]], old[10000]["acc"] - at[old[10000]["c"]])
            lines.append(f"| {row['encoder']} | {t['task']} ({t['test_size']}) | C {t['c_new']:g}, {t['new_acc']:.2f} | "
                         f"{' | '.join(cells)} | {tight} | {gaps[0]:+.2f} | {gaps[1]:+.2f} |")
    lines += ["", f"(commit {latest['git_commit'][:12]}, {latest['finished_at']})"]
    return lines
