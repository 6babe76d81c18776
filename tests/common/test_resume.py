"""The shared "already recorded?" and "resume?" helpers."""

from __future__ import annotations

import pytest

from common.checkpoint import save_checkpoint
from common.errors import UserError
from common.records import append_record
from common.resume import changed_settings, recorded, resume_checkpoint


def test_recorded_keeps_the_latest_record_of_each_key_of_its_pipeline(tmp_path):
    from common.protocols import PROTOCOL

    path = tmp_path / "records.jsonl"
    for pipeline, cell, value in (("graph", "a", 1), ("graph", "a", 2), ("image", "a", 3), ("graph", "b", 4)):
        append_record(path, {"pipeline": pipeline, "config": {"cell": cell}, "metrics": {"v": value},
                             "protocol": PROTOCOL[pipeline]})
    # a run of an older protocol version is history: the same cell today is another run
    append_record(path, {"pipeline": "graph", "config": {"cell": "c"}, "metrics": {"v": 5}, "protocol": 0})
    done = recorded(path, "graph", lambda config: config["cell"])
    assert {k: r["metrics"]["v"] for k, r in done.items()} == {"a": 2, "b": 4}
    assert recorded(None, "graph", str) == {} and recorded(tmp_path / "none.jsonl", "graph", str) == {}


def test_changed_settings_are_named_with_dots_and_runtime_ones_ignored():
    saved = {"seed": 0, "train": {"steps": 10, "lr": 0.1}, "eval": {"kfold": 10}, "threads": 2}
    config = {"seed": 1, "train": {"steps": 20, "lr": 0.2}, "eval": {"kfold": 5}, "threads": 1}
    assert changed_settings(saved, config, ("train.steps", "eval", "threads")) == ["seed", "train.lr"]
    assert changed_settings(saved, saved) == []


def test_resume_refuses_a_checkpoint_of_another_seed_or_objective(tmp_path):
    path = tmp_path / "checkpoint.pt"
    assert resume_checkpoint(path, {"seed": 0}) is None
    config = {"seed": 0, "objective": {"name": "hard", "params": {"beta": 1.0, "tau_plus": 0.1}}, "device": "cpu"}
    save_checkpoint(path, {"config": config, "step": 3})
    assert resume_checkpoint(path, {**config, "device": "cuda"}, runtime=("device",))["step"] == 3
    with pytest.raises(UserError, match=r"other settings \(seed\)"):
        resume_checkpoint(path, {**config, "seed": 1})
    with pytest.raises(UserError, match=r"other settings \(objective\)"):
        resume_checkpoint(path, {**config, "objective": {"name": "ntxent", "params": {}}})
    with pytest.raises(UserError, match="lacks step2"):
        resume_checkpoint(path, config, required=("step2",))


def test_a_checkpoint_of_an_older_format_resumes_through_the_upgrade(tmp_path):
    """The pipelines' upgrades (``sentence.identity.identity``, ``image.identity.run_settings``) turn an older
    config into today's shape before the comparison; the checkpoint itself is returned as it was saved."""
    from common.records import legacy_objective

    def upgrade_checkpoint(saved: dict) -> dict:  # the fine-tunes' variant of before the registry, as an objective
        rest = {k: v for k, v in saved.items() if k not in ("variant", "loss")}
        return {**rest, "objective": legacy_objective("sentence", saved)} if "variant" in saved else saved

    path = tmp_path / "ft.pt"
    old = {"seed": 0, "variant": "hard", "loss": {"loss": "hcl", "tau_plus": 0.0, "beta": 1.0}, "finetune": {"steps": 1}}
    save_checkpoint(path, {"config": old})
    today = {"seed": 0, "objective": {"name": "hard", "params": {"beta": 1.0, "tau_plus": 0.0}}, "finetune": {"steps": 1}}
    assert resume_checkpoint(path, today, upgrade=upgrade_checkpoint)["config"] == old
    with pytest.raises(UserError, match=r"\(objective\)"):
        resume_checkpoint(path, {**today, "objective": {"name": "hard", "params": {"beta": 1.0, "tau_plus": 0.1}}},
                          upgrade=upgrade_checkpoint)
