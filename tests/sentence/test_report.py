"""The sentence report: rows from records, paired deltas against plain and against the reference rows, Holm."""

from __future__ import annotations

from common.objectives import parse_objective
from common.protocols import PROTOCOL
from sentence.report import markdown_table, rows
from sentence.senteval import EVALUATOR

TASKS = ["MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC"]
OBJECTIVES = {"minilm-plain": "ntxent", "minilm-hard": "hard", "minilm-debiased": "debiased"}


def objective(row: str) -> dict:
    """The objective a fine-tune row's record names (none for the shipped model)."""
    return {"objective": parse_objective(OBJECTIVES[row]).to_dict()} if row in OBJECTIVES else {}


def record(row: str, seed: int, score: float, **extra: float) -> dict:
    metrics = {k: score for k in ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC_acc", "MRPC_f1")}
    return {"pipeline": "sentence", "seed": seed, "metrics": {**metrics, **extra}, "protocol": PROTOCOL["sentence"],
            "config": {"row": row, "profile": "quick", "tasks": TASKS, "evaluator": EVALUATOR, **objective(row)}}


def test_deltas_are_paired_by_seed_and_holm_is_per_block() -> None:
    records = [record("minilm", 0, 80.0)]
    for seed, noise in enumerate((0.0, 0.3, -0.2)):
        records += [record("minilm-plain", seed, 79.0 + noise, loss_first=2.5, loss_last=2.0),
                    record("minilm-hard", seed, 79.5 + noise + 0.01 * seed),  # +0.5 on every seed: significant
                    record("minilm-debiased", seed, 79.0 + noise + (0.4, -0.4, 0.0)[seed])]  # noise around 0
    records.append({**record("minilm-plain", 0, 10.0), "config": {**record("minilm-plain", 0, 1)["config"],
                                                                    "evaluator": "old"}})  # another evaluator: ignored
    by_row = {r.row: r for r in rows(records)}
    assert by_row["minilm-plain"].seeds == [0, 1, 2] and by_row["minilm-plain"].loss_first == 2.5
    hard, debiased = by_row["minilm-hard"], by_row["minilm-debiased"]
    assert abs(hard.vs_plain.mean - 0.51) < 1e-9 and hard.vs_plain.n == 3 and hard.vs_plain_holm is True
    assert abs(debiased.vs_plain.mean) < 1e-9 and debiased.vs_plain_holm is False
    assert by_row["minilm-plain"].vs_plain is None and by_row["minilm-plain"].vs_reference.mean < -0.9
    table = markdown_table(list(by_row.values()))
    assert "+0.51" in table and "beyond Holm" in table and "2.500 → 2.000" in table


def test_a_task_subset_is_its_own_setting_averaged_over_its_tasks() -> None:
    def subset(row: str, seed: int, scores: dict[str, float], steps: int = 30) -> dict:
        return {"pipeline": "sentence", "seed": seed, "metrics": scores, "protocol": PROTOCOL["sentence"],
                "config": {"row": row, "profile": "quick", "tasks": ["TREC", "CR"], "evaluator": EVALUATOR,
                           "settings": {"finetune": {"steps": steps}}, **objective(row)}}

    records = [record("minilm-plain", 0, 50.0)]  # six tasks: another setting, never paired with the subset
    records += [subset("minilm", 0, {"CR": 80.0, "TREC": 90.0})]
    for seed in range(3):
        records += [subset("minilm-plain", seed, {"CR": 81.0 + seed, "TREC": 91.0}),
                    subset("minilm-hard", seed, {"CR": 82.0 + seed, "TREC": 91.0 + 0.1 * seed})]
    table_rows = rows(records)
    assert [(r.setting, r.row) for r in table_rows] == [
        ("quick", "minilm-plain"), ("quick, CR+TREC", "minilm"), ("quick, CR+TREC", "minilm-plain"),
        ("quick, CR+TREC", "minilm-hard")]
    plain, hard = table_rows[2], table_rows[3]
    assert plain.average == {0: 86.0, 1: 86.5, 2: 87.0} and plain.finetune_steps == (30,)
    assert abs(hard.vs_plain.mean - 0.55) < 1e-9 and hard.vs_plain.n == 3
    assert abs(plain.vs_reference.mean - 1.5) < 1e-9  # against the shipped model on the same two tasks
    assert table_rows[0].vs_plain is None and table_rows[0].vs_reference is None
    table = markdown_table(table_rows)
    assert "| quick, CR+TREC | MiniLM fine-tuned, hard, 30 steps | 0,1,2 | – | 83.0 ± 1.0 |" in table


def test_agreement_table_puts_both_classifiers_against_the_tight_fit() -> None:
    from sentence.report import agreement_table

    task = {"task": "TREC", "test_size": 500, "c_new": 0.1, "new_acc": 58.8,
            "legacy": [{"max_iter": 200, "c": 0.01, "acc": 59.4, "predictions_differ_from_new": 62},
                       {"max_iter": 10000, "c": 0.1, "acc": 58.6, "predictions_differ_from_new": 1}],
            "tight": [{"c": 0.01, "acc": 59.4, "predictions_differ_from_new": 62, "predictions_differ_from_legacy": {"10000": 61}},
                      {"c": 0.1, "acc": 58.8, "predictions_differ_from_new": 2, "predictions_differ_from_legacy": {"10000": 1}}]}
    record = {"pipeline": "senteval-agreement", "config": {"tight_tol": 1e-10}, "git_commit": "abc", "finished_at": "now",
              "metrics": {"rows": [{"encoder": "random", "tasks": [task]}]}}
    line = agreement_table([record])[2]
    assert line.startswith("| random | TREC (500) | C 0.1, 58.80 | C 0.01, 59.40, 62 | C 0.1, 58.60, 1 |")
    assert line.endswith("| +0.00 | -0.20 |")


def test_a_temperature_sweep_and_older_protocols_are_settings_of_their_own() -> None:
    """A sweep's run at t=0.05 is another configuration, and a protocol-v0 run another code version: neither may
    replace (or pose as) a seed of the profile's run. The untrained encoder reads no temperature: it is the
    reference of both temperatures."""
    from sentence.config import PROFILES

    def qt(row: str, seed: int, score: float, protocol: int = PROTOCOL["sentence"], **train: float) -> dict:
        settings = PROFILES["quick"].to_dict()
        settings["train"] |= train
        r = record(row, seed, score)
        return {**r, "protocol": protocol, "config": {**r["config"], "settings": settings,
                                                      **({"objective": parse_objective(row[3:]).to_dict()} if row != "random" else {})}}

    records = [qt("qt-plain", s, 70.0 + s) for s in (0, 1)] + [qt("qt-plain", 0, 60.0, temperature=0.05)]
    records += [qt("random", 0, 50.0, temperature=0.05), qt("qt-plain", 1, 10.0, protocol=0)]
    got = {(r.setting, r.row): r.average for r in rows(records)}
    assert got == {("quick", "qt-plain"): {0: 70.0, 1: 71.0}, ("quick", "random"): {0: 50.0},
                   ("quick, temperature=0.05", "qt-plain"): {0: 60.0}, ("quick, temperature=0.05", "random"): {0: 50.0},
                   ("quick, protocol v0 (history)", "qt-plain"): {1: 10.0}}
