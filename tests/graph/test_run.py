"""graph.run: the keys a command plans are the keys of the records it writes (one identity per run)."""

from __future__ import annotations

import json

import pytest

from common.errors import UserError
from tests.graph.test_cli import run_cli


def test_planned_keys_are_the_keys_of_the_records_the_command_writes(toy_root, tmp_path, monkeypatch, capsys):
    from graph.run import planned_keys, record_key

    records = tmp_path / "records.jsonl"
    argv = ["--dataset", "TOY", "--objective", "infograph", "--objective", "ntxent", "--repeats", "2", "--seed", "3",
            "--epochs", "1", "--records", str(records)]
    planned = planned_keys(argv)
    code, _, err = run_cli(*argv, root=toy_root, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    written = [record_key(json.loads(line)["config"]) for line in records.read_text().splitlines()]
    assert len(planned) == 6 and len(set(planned)) == 6  # (untrained, infograph, ntxent) x 2 repeats, all distinct
    assert len(written) == len(planned) and set(written) == set(planned)
    # A setting that changes the result is in the key: the same command at another width plans only new runs.
    assert not set(planned_keys([*argv, "--hidden", "16"])) & set(written)
    # One that only changes speed is not: the same runs, already recorded.
    assert planned_keys([*argv, "--threads", "2", "--no-distinct-nodes"]) == planned
    # The points scored along the way are a set: another order (or a repeat) is the same run; the trained runs are
    # new ones, the untrained encoder (scored once, at epoch 0) is not.
    scored = planned_keys([*argv, "--epochs", "3", "--eval-at", "1,2"])
    assert planned_keys([*argv, "--epochs", "3", "--eval-at", "2,1,2"]) == scored and len(set(scored) - set(planned)) == 4


def test_planned_keys_refuse_what_the_run_refuses():
    from graph.run import planned_keys

    with pytest.raises(UserError, match="--eval-at"):
        planned_keys(["--epochs", "2", "--eval-at", "3"])
    with pytest.raises(UserError, match="--seed"):
        planned_keys(["--seed", str(2**32 - 1), "--repeats", "2"])


def test_a_run_scored_along_the_way_is_its_own_run_and_gives_one_curve_point_per_scored_epoch(
        toy_root, tmp_path, monkeypatch, capsys):
    from common.records import read_records
    from graph.report import curve_scores
    from graph.run import planned_keys, record_key

    records = tmp_path / "records.jsonl"
    argv = ["--dataset", "TOY", "--objective", "ntxent", "--epochs", "2", "--repeats", "1", "--records", str(records)]
    plain = planned_keys(argv)
    scored = planned_keys([*argv, "--eval-at", "1"])
    assert plain[0] == scored[0]  # the untrained encoder is not trained, so nothing is scored along its way
    assert plain[1] != scored[1]  # a plain run never recorded epoch 1: it must not count as the scored one
    code, _, err = run_cli(*argv, "--eval-at", "1", "--profile", "paper", root=toy_root, monkeypatch=monkeypatch,
                           capsys=capsys)
    assert code == 0, err
    written = read_records(records)
    assert [record_key(r["config"]) for r in written] == planned_keys([*argv, "--eval-at", "1", "--profile", "paper"])
    points = curve_scores(written)
    trained = sorted((p.length, p.at) for p in points if p.spec)
    assert trained == [(2, 1), (2, 2)]
    final = next(r for r in written if r["config"]["epochs"] == 2)["metrics"]["accuracy"]
    assert next(p.value for p in points if p.spec and p.at == 2) == final


def test_a_run_scored_along_the_way_is_kept_apart_from_the_plain_run_of_the_same_settings():
    """Scoring along the way draws from the random streams, so its final score is not the plain run's: the
    leaderboard reads the plain run, the robustness curve the scored one, and neither mixes them."""
    from common.objectives import make_objective
    from graph.config import PROFILES, Cell
    from graph.report import curve_scores, scores, setting_of

    paper = PROFILES["paper"]
    cell = Cell("MUTAG", make_objective("ntxent"), 0, 0, "paper", paper.epochs, paper.batch_size, paper.hidden,
                paper.layers, paper.lr, paper.temperature)
    plain = {"pipeline": "graph", "seed": 0, "config": cell.to_config(), "metrics": {"accuracy": 80.0},
             "protocol": 1}
    along = {**plain, "config": {**cell.to_config(), "eval_at": [20, 50]},
             "metrics": {"accuracy": 90.0, "accuracy_at": {"20": 70.0, "50": 75.0, "200": 90.0}}}
    assert setting_of(plain["config"]) == "paper" and setting_of(along["config"]) == "paper, scored at 20/50"
    for records in ([plain, along], [along, plain]):
        assert [s.value for s in scores(records) if s.spec] == [80.0]
        assert sorted((p.at, p.value) for p in curve_scores(records) if p.spec) == [(20, 70.0), (50, 75.0), (200, 90.0)]
    assert [(p.at, p.value) for p in curve_scores([plain]) if p.spec] == [(200, 80.0)]
