"""Run records and checkpoints: atomic, complete, and safe to load."""

import json

import pytest
import torch

from common.checkpoint import load_checkpoint, save_checkpoint
from common.cli import UserError
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


def test_truncated_last_line_is_skipped_with_warning_and_repaired_on_append(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"seed": 1}) + "\n" + '{"seed": 2, "metr')
    with pytest.warns(UserWarning, match="truncated"):
        assert [r["seed"] for r in read_records(path)] == [1]
    append_record(path, {"seed": 3})
    assert [r["seed"] for r in read_records(path)] == [1, 3]


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
