"""Run records and checkpoints: atomic, complete, and safe to load."""

import json

import pytest
import torch

from common.checkpoint import load_checkpoint, save_checkpoint
from common.errors import UserError
from common.records import append_record, make_record, read_records


def test_record_carries_provenance_and_round_trips(tmp_path):
    record = make_record(pipeline="graph", config={"dataset": "MUTAG"}, metrics={"acc": 0.9}, seed=3, wall_time_s=1.23456)
    for key in ("command", "git_commit", "hardware", "versions", "finished_at"):
        assert record[key]
    assert record["hardware"]["cpu_count"] >= 1 and "torch" in record["versions"]
    path = tmp_path / "r.jsonl"
    append_record(path, record)
    append_record(path, {**record, "seed": 4})
    assert [r["seed"] for r in read_records(path)] == [3, 4]
    assert read_records(tmp_path)[0]["wall_time_s"] == 1.235


def test_run_record_names_every_field_a_record_is_written_with_and_requires_what_readers_check():
    from common.records import BASE_NEEDS, RunRecord

    record = make_record(pipeline="graph", config={}, metrics={}, seed=0, wall_time_s=0.0)
    assert set(record) == set(RunRecord.__annotations__)
    assert RunRecord.__required_keys__ == set(BASE_NEEDS)  # older records lack the rest and still read


_RECORD = {"pipeline": "graph", "config": {}, "metrics": {}}


def test_truncated_last_line_is_skipped_with_warning_and_kept_on_append(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({**_RECORD, "seed": 1}) + "\n" + '{"seed": 2, "metr')
    before = path.read_bytes()
    assert [r["seed"] for r in read_records(path)] == [1]
    assert capsys.readouterr().err == f"warning: {path}:2: skipping a record (truncated or corrupt JSON); the line is left as it is\n"
    append_record(path, {**_RECORD, "seed": 3})
    assert path.read_bytes().startswith(before + b"\n")  # the new record starts a line of its own
    assert [r["seed"] for r in read_records(path)] == [1, 3]


def test_a_lock_that_is_a_folder_or_a_bad_timeout_is_one_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    (tmp_path / "r.jsonl.lock").mkdir()
    with pytest.raises(UserError, match=f"lock {path}.lock is a folder"):
        append_record(path, _RECORD)
    monkeypatch.setenv("HARDNEG_LOCK_TIMEOUT", "soon")
    with pytest.raises(UserError, match="HARDNEG_LOCK_TIMEOUT must be a number of seconds >= 0, got 'soon'"):
        append_record(tmp_path / "other.jsonl", _RECORD)
    assert not path.exists()


def test_unusable_lines_are_skipped_named_and_kept_byte_for_byte(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps({**_RECORD, "seed": 1}).encode(), b"\xff\xfe binary", b"[1, 2]",
             json.dumps({"pipeline": "graph", "config": {}}).encode(),
             json.dumps({**_RECORD, "seed": 2, "metrics": {"accuracy": "high"}}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = path.read_bytes()
    needs = {"graph": {"metrics.accuracy": (int, float)}}
    assert read_records(path, needs) == []  # the first record lacks metrics.accuracy
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": skipping a record ")[1] for line in err] == [
        "(no metrics.accuracy); the line is left as it is", "(not UTF-8 text); the line is left as it is",
        "(not a JSON object but a list); the line is left as it is", "(no metrics); the line is left as it is",
        "(metrics.accuracy is text, not a number); the line is left as it is"]
    append_record(path, {**_RECORD, "seed": 3, "metrics": {"accuracy": 1.0}})
    assert path.read_bytes().startswith(before)
    assert [r["seed"] for r in read_records(path, needs)] == [3]


def test_command_is_pasteable_in_the_repo_root():
    from common.paths import REPO_ROOT
    from common.records import runnable_command

    argv = [str(REPO_ROOT / "graph" / "__main__.py"), "--out", str(REPO_ROOT / "tables" / "x.jsonl"), "--data-dir=/elsewhere"]
    assert runnable_command(argv) == "python -m graph --out tables/x.jsonl --data-dir=/elsewhere"
    assert runnable_command([str(REPO_ROOT / "benchmarks" / "loss_speed.py")]) == "python -m benchmarks.loss_speed"
    assert runnable_command(["-m", "image", "run", "--records", str(REPO_ROOT / "r.jsonl")]) == "python -m image run --records r.jsonl"


def test_no_committed_record_holds_an_absolute_path_in_its_command():
    import shlex

    from common.paths import REPO_ROOT

    for path in sorted((REPO_ROOT / "tables" / "records").glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            command = json.loads(line)["command"]
            assert command.startswith(("python -m ", "torchrun ")), f"{path.name}:{number}: {command}"
            for token in shlex.split(command):
                assert not token.split("=")[-1].startswith("/"), f"{path.name}:{number}: {command}"


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "ck.pt"
    state = {"model": {"w": torch.arange(3.0)}, "epoch": 2, "rng": torch.get_rng_state()}
    save_checkpoint(path, state)
    loaded = load_checkpoint(path, required=("model", "epoch"))
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["epoch"] == 2
    with pytest.raises(UserError, match="lacks optimizer"):
        load_checkpoint(path, required=("optimizer",))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_checkpoint_refuses_pickled_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(UserError, match="corrupt or not a hardneg checkpoint"):
        load_checkpoint(path)


def test_hardneg_commit_names_the_commit_of_a_copied_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    from common.records import git_commit

    git_commit.cache_clear()
    monkeypatch.setenv("HARDNEG_COMMIT", "0123abc")
    try:
        assert git_commit() == "0123abc"
    finally:
        git_commit.cache_clear()


def test_records_of_every_older_format_read_back_with_the_objective_they_ran(tmp_path):
    from common.records import read_records

    old = [
        {"pipeline": "graph", "config": {"method": "hard", "tau_plus": 0.5, "beta": 2.0, "convention": "reference"}},
        {"pipeline": "graph", "config": {"method": "infograph", "tau_plus": 0.5, "beta": 0.0, "convention": "x"}},
        {"pipeline": "graph", "config": {"method": "untrained"}},
        {"pipeline": "image", "config": {"method": "simclr", "tau_plus": 0.1, "beta": 1.0}},
        {"pipeline": "image", "config": {"method": "hard-beta0.5", "tau_plus": 0.1, "beta": 0.5}},
        {"pipeline": "image", "config": {"method": "random-init"}},
        {"pipeline": "sentence", "config": {"row": "qt-hard", "method": "hard"}},
        {"pipeline": "sentence", "config": {"row": "minilm-hard", "variant": "hard", "loss": "hcl"}},
        {"pipeline": "sentence", "config": {"row": "minilm-st-hardness-5", "variant": "st-hardness-5"}},
        {"pipeline": "sentence", "config": {"row": "random"}},
    ]
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps({**r, "metrics": {}}) + "\n" for r in old))
    read = [r["config"].get("objective", "absent") for r in read_records(path)]
    assert read == [
        {"name": "jsd", "params": {"beta": 2.0, "convention": "reference", "tau_plus": 0.5}},
        {"name": "jsd", "params": {"beta": 0.0, "convention": "paper", "tau_plus": 0.0}},
        None,
        {"name": "ntxent", "params": {}},
        {"name": "hard", "params": {"beta": 0.5, "tau_plus": 0.1}},
        None,
        {"name": "hard", "params": {"beta": 1.0, "tau_plus": 0.1}},
        {"name": "hard", "params": {"beta": 1.0, "tau_plus": 0.0}},  # the old fine-tune hard: tau_plus 0, not 0.1
        {"name": "hardness", "params": {"alpha": 5.0}},
        "absent",
    ]
    assert "objective" not in path.read_text()  # the file stays as written
