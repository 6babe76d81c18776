"""sentence.run: the keys a command plans are the keys of the records it writes; --eval-at scores the encoder of
each listed step; one identity recognises old records and checkpoints; robustness-curve points from records."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import pytest

from common.errors import UserError
from common.objectives import parse_objective
from common.records import upgrade
from common.resume import changed_settings
from sentence.config import PROFILES, get_config
from sentence.identity import FINETUNE_RUNTIME, QUICK_THOUGHT_RUNTIME, identity
from sentence.run import planned_keys, record_key, row_config
from sentence.senteval import EVALUATOR
from tests.sentence.conftest import use_books_and_trec

TINY = ["--tasks", "TREC", "--batch-size", "8", "--eval-every", "1", "--checkpoint-every", "1", "--val-batches", "1",
        "--threads", "1", "--jobs", "1", "--no-progress", "--no-minilm"]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_eval_at_scores_the_encoder_of_each_step_and_planned_keys_are_the_recorded_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import torch

    from common.checkpoint import load_checkpoint
    from sentence.__main__ import main

    use_books_and_trec(tmp_path, monkeypatch)
    records = tmp_path / "records.jsonl"
    argv = ["run", "--objective", "plain", "--steps", "3", "--eval-at", "3,1", *TINY, "--records", str(records),
            "--out-dir", str(tmp_path / "runs")]
    assert main(argv) == 0
    qt, random = _records(records)
    assert planned_keys(argv) == [record_key(qt["config"]), record_key(random["config"])]
    assert qt["config"]["eval_at"] == [1, 3] and "eval_at" not in random["config"]
    assert set(qt["metrics"]["avg_at"]) == {"1", "3"} and qt["metrics"]["avg_at"]["3"] == qt["metrics"]["TREC"]
    (step1,) = (tmp_path / "runs").glob("qt-plain-seed0-*-step1.pt")

    # the step-1 point is the encoder a 1-step run ends with (same batches), scored the same way
    one_step = tmp_path / "one-step.jsonl"
    assert main(["run", "--objective", "plain", "--steps", "1", *TINY, "--no-random", "--records", str(one_step),
                 "--out-dir", str(tmp_path / "runs-1")]) == 0
    snapshot, alone = (load_checkpoint(p)["model"] for p in (step1, *(tmp_path / "runs-1").glob("qt-plain-seed0-*.pt")))
    assert all(torch.equal(snapshot[name], alone[name]) for name in alone)
    assert qt["metrics"]["avg_at"]["1"] == _records(one_step)[0]["metrics"]["TREC"] != qt["metrics"]["avg_at"]["3"]

    capsys.readouterr()
    assert main(argv) == 0 and len(_records(records)) == 2  # the same command again records nothing new
    assert "quick-thought, ntxent, seed 0: already recorded" in capsys.readouterr().out
    without = [a for a in argv if a not in ("--eval-at", "3,1")]
    assert record_key(qt["config"]) not in planned_keys(without)  # eval_at is part of the identity when given
    assert planned_keys(["table"]) is None


def test_runs_of_a_sweep_in_one_folder_each_keep_their_own_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The leaderboard's temperature sweep and the robustness cells share one run folder: a run at another temperature,
    or scored along the way, must start its own checkpoint, not be refused (or resumed) on another run's."""
    from sentence.__main__ import main

    use_books_and_trec(tmp_path, monkeypatch)
    records, runs = tmp_path / "records.jsonl", tmp_path / "runs"
    for extra in (["--temperature", "0.1"], ["--temperature", "0.05"], ["--temperature", "0.05", "--eval-at", "1"]):
        assert main(["run", "--objective", "plain", "--steps", "2", *extra, *TINY, "--no-random", "--records",
                     str(records), "--out-dir", str(runs)]) == 0
    assert len(_records(records)) == 3 and len(list(runs.glob("qt-plain-seed0-*-step1.pt"))) == 1
    assert len([p for p in runs.glob("qt-plain-seed0-*.pt") if "-step" not in p.name]) == 3


def test_eval_at_outside_the_run_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.sentence.test_cli import run_cli

    data = use_books_and_trec(tmp_path, monkeypatch)
    for value, message in (("4", "--eval-at steps must lie in [1, 3]"), ("0", "must be >= 1"), ("a", "is not optimiser")):
        result = run_cli("run", "--steps", "3", "--eval-at", value, "--tasks", "TREC", data=data, cache=tmp_path / "c")
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    with pytest.raises(UserError, match="must lie in"):
        planned_keys(["run", "--steps", "3", "--eval-at", "4"])


def test_a_record_from_before_the_registry_has_the_identity_of_todays_row() -> None:
    config = get_config("quick")
    settings = json.loads(json.dumps(config.to_dict()))
    old = upgrade({"pipeline": "sentence", "config": {"row": "qt-hard", "method": "hard", "tau_plus": 0.1, "beta": 2.0,
                                                       "profile": "quick", "settings": settings, "tasks": ["TREC"],
                                                       "evaluator": EVALUATOR}})
    hard = parse_objective("hard:beta=2")
    assert record_key(old["config"]) == record_key(row_config("qt-hard-beta=2", config, ["TREC"], hard))
    assert record_key(old["config"]) != record_key(row_config("qt-hard", config, ["TREC"], parse_objective("hard")))
    assert record_key(old["config"]) != record_key(row_config("qt-hard-beta=2", config, ["TREC"], hard, eval_at=[5]))


def test_checkpoints_of_the_older_formats_continue(tiny_data: Path, tmp_path: Path) -> None:
    import torch

    from common.checkpoint import load_checkpoint, save_checkpoint
    from sentence.corpus import load_corpus
    from sentence.finetune import checkpoint_identity as finetune_identity
    from sentence.train import train

    config = get_config("quick", corpus={"vocab_size": 100, "val_books": 1}, model={"embed_dim": 8, "hidden_dim": 16},
                        train={"batch_size": 12, "steps": 2, "eval_every": 2, "checkpoint_every": 2, "val_batches": 1})
    corpus, hard, path = load_corpus(config.corpus, verbose=False), parse_objective("hard"), tmp_path / "qt.pt"
    train(config, hard, corpus, path, progress=False)
    state = load_checkpoint(path)
    save_checkpoint(path, {**state, "config": {**config.to_dict(), "objective": hard.to_dict()}})  # as written before
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=3))
    assert train(longer, hard, corpus, path, progress=False)["step"] == 3
    save_checkpoint(path, {**state, "config": {**config.to_dict(), "objective": hard.to_dict()}})
    other = dataclasses.replace(longer, train=dataclasses.replace(longer.train, lr=1e-4))
    with pytest.raises(UserError, match=r"other settings \(settings\.train\.lr\)"):
        train(other, hard, corpus, path, progress=False)
    assert torch.equal(load_checkpoint(path)["model"]["f.embedding.weight"], state["model"]["f.embedding.weight"])

    # a fine-tune from before --objective named a variant; hard was HCL at tau_plus 0
    settings = config.to_dict()
    old = {"seed": 0, "variant": "hard", "loss": {"loss": "hcl"}, "corpus": settings["corpus"],
           "finetune": settings["finetune"]}
    today = finetune_identity(config, parse_objective("hard:tau_plus=0"))
    assert changed_settings(identity(old), today, FINETUNE_RUNTIME) == []
    assert changed_settings(identity(old), finetune_identity(config, parse_objective("hard")), FINETUNE_RUNTIME) == [
        "objective"]
    assert "settings.train.steps" in QUICK_THOUGHT_RUNTIME and "settings.train.steps" not in FINETUNE_RUNTIME


def _six(value: float) -> dict[str, float]:
    return {"MR": value - 3, "CR": value - 1, "SUBJ": value + 4, "MPQA": value, "TREC": value + 2, "MRPC_acc": value - 2,
            "MRPC_f1": 99.0}


def _qt(seed: int = 0, *, train: dict | None = None, model: dict | None = None, metrics: dict | None = None,
        profile: str = "quick", evaluator: str = EVALUATOR, row: str = "qt-hard") -> dict:
    settings = json.loads(json.dumps(PROFILES[profile].to_dict()))
    settings["train"].update(train or {})
    settings["model"].update(model or {})
    return {"pipeline": "sentence", "seed": seed, "protocol": 2, "metrics": metrics or _six(70.0),
            "config": {"row": row, "profile": profile, "tasks": ["MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC"],
                       "evaluator": evaluator, "settings": settings,
                       **({"objective": parse_objective("hard").to_dict()} if row.startswith("qt-") else {})}}


def test_curve_points_are_every_avg_at_entry_of_the_quick_profile_runs_that_vary_only_the_curve_settings() -> None:
    from common.stats import CurveScore
    from sentence.report import curve_scores

    varied = {"batch_size": 100, "lr": 1e-3, "steps": 400, "temperature": 0.2, "eval_every": 50}
    records = [
        _qt(1, train=varied, metrics={**_six(70.0), "avg_at": {"400": 71.5, "100": 60.25}}),
        _qt(2),  # no --eval-at: one point at its last step, the six-task average
        _qt(3, model={"hidden_dim": 64}),  # another model: another protocol
        _qt(4, train={"max_tokens": 10}),
        _qt(5, profile="paper"),
        _qt(6, evaluator="old"),
        _qt(7, metrics={k: v for k, v in _six(70.0).items() if k != "MRPC_acc"}),  # not all six tasks
        _qt(8, row="random"),
    ]
    spec = str(parse_objective("hard"))
    assert curve_scores(records) == [
        CurveScore("sentence", "6 transfer tasks", spec, 0.2, 100, 400, 100, 1, 60.25, 2),
        CurveScore("sentence", "6 transfer tasks", spec, 0.2, 100, 400, 400, 1, 71.5, 2),
        CurveScore("sentence", "6 transfer tasks", spec, 0.1, 400, 800, 800, 2,
                   statistics.fmean([67.0, 69.0, 74.0, 70.0, 72.0, 68.0]), 2),
    ]


def test_the_untrained_rows_are_scored_once_per_seed_not_at_every_temperature_of_a_sweep():
    from sentence.run import planned_keys

    base = ["run", "--profile", "quick", "--seed", "0", "--objective", "ntxent"]
    cold, warm = planned_keys([*base, "--temperature", "0.05"]), planned_keys([*base, "--temperature", "0.3"])
    assert cold[0] != warm[0]  # the trained quick-thought rows differ
    assert cold[1:] == warm[1:]  # random encoder and shipped MiniLM: one run each
    # the random encoder's neighbour accuracy reads the batches: another batch size is another run
    assert planned_keys([*base, "--batch-size", "200", "--steps", "1600"])[1] != cold[1]
    assert planned_keys([*base, "--seed", "1"])[1] != cold[1]
