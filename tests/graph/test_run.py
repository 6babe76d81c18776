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


def test_planned_keys_refuse_what_the_run_refuses():
    from graph.run import planned_keys

    with pytest.raises(UserError, match="--eval-at"):
        planned_keys(["--epochs", "2", "--eval-at", "3"])
    with pytest.raises(UserError, match="--seed"):
        planned_keys(["--seed", str(2**32 - 1), "--repeats", "2"])
