"""Command line, run for real in a subprocess: errors exit 2 in one line; a tiny ``run`` writes records, scores
along the way with ``--eval-at``, and records under the keys ``image.run.planned_keys`` predicts, whichever
``--augment`` path made its views."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from common.paths import REPO_ROOT
from image.__main__ import main
from image.config import ImageConfig
from image.run import planned_keys, record_key


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "image", *args], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_missing_data_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _cli("knn", "--random-init", env={"DATA_DIR": str(tmp_path), "HARDNEG_CACHE": str(tmp_path / "c")})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert str(tmp_path / "images" / "cifar10_jpeg" / "cifar10_jpeg.zip") in result.stderr


def test_bad_hyperparameters_are_user_errors_and_exit_2() -> None:
    for args, message in ((("--temperature", "0"), "temperature"), (("--batch-size", "1"), "--batch-size must be >= 2"), (("--weight-decay", "nan"), "finite"),
                          (("--width", "0"), "width"), (("--objective", "ntxent", "--anneal-beta"), "no beta"),
                          (("--augment", "gpu"), "--augment: invalid choice: 'gpu'")):
        with pytest.raises(UserError, match=message):
            main(["pretrain", *args])
    for spec, message in (("hard:beta=-1", "hard: beta must be in [0, 10000], got -1"),
                          ("hard:tau_plus=1", "hard: tau_plus must be in [0, 1), got 1"),
                          ("magic", "unknown objective 'magic'; choose from ntxent,")):
        result = _cli("pretrain", "--objective", spec)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert message in result.stderr.splitlines()[-1]


def test_help_explains_every_setting() -> None:
    result = _cli("run", "--help")
    assert result.returncode == 0
    for field in dataclasses.fields(ImageConfig):
        assert "--" + field.name.replace("_", "-") in result.stdout, field.name


def test_tiny_run_writes_one_record_per_method_and_a_table(jpeg_data: Path, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    settings = ["--width", "4", "--epochs", "1", "--batch-size", "8", "--train-per-class", "0", "--knn-k", "5",
                "--linear-epochs", "2", "--threads", "1"]
    env = {"DATA_DIR": str(jpeg_data), "HARDNEG_CACHE": os.environ["HARDNEG_CACHE"]}
    result = _cli("run", "--objective", "simclr", "--objective", "hard:beta=0.5", "--records", str(records),
                  "--out-dir", str(tmp_path / "runs"), *settings, env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["config"]["method"] for r in lines] == ["random-init", "simclr", "hard-beta=0.5"]
    assert lines[2]["config"]["objective"] == {"name": "hard", "params": {"beta": 0.5, "tau_plus": 0.1}}
    assert lines[1]["config"]["objective"] == {"name": "ntxent", "params": {}} and lines[2]["config"]["dataset_label"] == "CIFAR-10 (JPEG q75)"
    for record in lines:
        assert 0 <= record["metrics"]["knn_top1"] <= 100 and 0 <= record["metrics"]["linear_top1"] <= 100
    assert "| hard beta=0.5 | hard:beta=0.5,tau_plus=0.1 |" in result.stdout  # the registry's label, then the spec
    assert "epoch 1: loss" in result.stdout and result.stdout.count(", hard beta=0.5\n") == 1
    checkpoints = sorted(p.parent.name for p in (tmp_path / "runs").rglob("checkpoint.pt"))
    assert checkpoints == ["hard-beta=0.5", "simclr"]
    # The same command again finds the recorded runs: no training, no evaluation, no duplicate records.
    again = _cli("run", "--objective", "plain", "--records", str(records), "--out-dir", str(tmp_path / "runs"),
                 *settings, env=env)
    assert again.returncode == 0, again.stderr
    assert "epoch 1:" not in again.stdout and "| ntxent |" in again.stdout
    assert len(records.read_text().splitlines()) == 3


def test_eval_at_scores_along_the_way_without_changing_the_run(jpeg_data: Path, tmp_path: Path) -> None:
    """``--eval-at`` adds the scores after the listed epochs (and the last) and is a run of its own; the final
    scores equal those of the same run without it, and planned_keys names exactly the keys each command records."""
    records, runs = tmp_path / "records.jsonl", tmp_path / "runs"
    settings = ["--objective", "simclr", "--records", str(records), "--out-dir", str(runs), "--width", "4",
                "--epochs", "2", "--batch-size", "8", "--train-per-class", "0", "--knn-k", "5", "--linear-epochs", "2",
                "--threads", "1"]
    env = {"DATA_DIR": str(jpeg_data), "HARDNEG_CACHE": os.environ["HARDNEG_CACHE"]}
    plain = _cli("run", *settings, env=env)
    assert plain.returncode == 0, plain.stderr
    scored = _cli("run", *settings, "--eval-at", "1", env=env)
    assert scored.returncode == 0, scored.stderr
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    # the random-init encoder does not train: the plain command's record serves both
    assert [(r["config"]["method"], r["config"].get("eval_at")) for r in lines] == [
        ("random-init", None), ("simclr", None), ("simclr", [1])]
    untrained, final, along = (r["metrics"] for r in lines)
    assert "linear_top1_at" not in final and "linear_top1_at" not in untrained
    assert set(along["linear_top1_at"]) == set(along["knn_top1_at"]) == {"1", "2"}
    assert along["linear_top1_at"]["2"] == along["linear_top1"] and along["knn_top1_at"]["2"] == along["knn_top1"]
    assert (along["linear_top1"], along["knn_top1"]) == (final["linear_top1"], final["knn_top1"])
    assert all(0 <= v <= 100 for v in [*along["linear_top1_at"].values(), *along["knn_top1_at"].values()])
    keys = [record_key(r["config"]) for r in lines]
    assert planned_keys(["run", *settings]) == keys[:2]
    assert planned_keys(["run", *settings, "--eval-at", "1"]) == [keys[0], keys[2]]
    assert planned_keys(["knn", "--random-init"]) is None
    # nothing left to do: the same command again trains nothing and records nothing
    again = _cli("run", *settings, "--eval-at", "1", env=env)
    assert again.returncode == 0 and "epoch 1:" not in again.stdout and len(records.read_text().splitlines()) == 3


def test_augment_device_runs_on_cpu_and_records_under_the_same_key_as_the_loader(jpeg_data: Path, tmp_path: Path) -> None:
    """``--augment device --device cpu`` trains and records which path ran, with images/s; ``--augment`` is a runtime
    setting like ``--device``: the same command with the loader path finds its runs recorded and trains nothing."""
    records = tmp_path / "records.jsonl"
    settings = ["--objective", "simclr", "--records", str(records), "--out-dir", str(tmp_path / "runs"), "--width", "4",
                "--epochs", "1", "--batch-size", "8", "--train-per-class", "0", "--knn-k", "5", "--linear-epochs", "2",
                "--threads", "1", "--device", "cpu"]
    env = {"DATA_DIR": str(jpeg_data), "HARDNEG_CACHE": os.environ["HARDNEG_CACHE"]}
    result = _cli("run", *settings, "--augment", "device", env=env)
    assert result.returncode == 0, result.stderr
    assert "(device augmentation)" in result.stdout
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(r["config"]["method"], r["config"]["augment"]) for r in lines] == [("random-init", "device"), ("simclr", "device")]
    trained = lines[1]["metrics"]
    assert math.isfinite(trained["pretrain_loss"]) and trained["images_per_s"] > 0 and len(trained["epoch_s"]) == 1
    keys = [record_key(r["config"]) for r in lines]
    for augment in ("auto", "loader", "device"):
        assert planned_keys(["run", *settings, "--augment", augment]) == keys
    again = _cli("run", *settings, "--augment", "loader", env=env)
    assert again.returncode == 0, again.stderr
    assert "epoch 1:" not in again.stdout and len(records.read_text().splitlines()) == 2


def test_eval_at_outside_the_run_is_a_user_error() -> None:
    for epochs, message in (("3", r"--eval-at epochs must lie in \[1, 2\]"), ("0", "must be >= 1")):
        with pytest.raises(UserError, match=message):
            main(["run", "--epochs", "2", "--eval-at", epochs])


@pytest.mark.parametrize("augment", ["loader", "device"])
def test_torchrun_two_ranks_write_each_record_once(jpeg_data: Path, tmp_path: Path, augment: str) -> None:
    """Both gloo ranks pretrain (DDP), each augmenting its own shard where ``--augment`` says; rank 0 alone evaluates
    (after epoch 1 too, while rank 1 waits) and appends, with the rank count in the record."""
    records = tmp_path / "records.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DATA_DIR": str(jpeg_data), "HARDNEG_CACHE": os.environ["HARDNEG_CACHE"]}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "image", "run",
         "--objective", "simclr", "--records", str(records), "--out-dir", str(tmp_path / "runs"), "--device", "cpu",
         "--width", "4", "--epochs", "2", "--batch-size", "8", "--train-per-class", "0", "--knn-k", "5",
         "--linear-epochs", "1", "--threads", "1", "--eval-at", "1", "--augment", augment],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["config"]["method"] for r in lines] == ["random-init", "simclr"]
    assert lines[1]["metrics"]["ranks"] == 2 and len(lines[1]["metrics"]["epoch_s"]) == 2
    assert lines[1]["config"]["augment"] == augment
    assert set(lines[1]["metrics"]["linear_top1_at"]) == {"1", "2"}
    assert lines[1]["command"].startswith("torchrun --nnodes 1 --nproc_per_node 2 -m image run --objective simclr")
    assert result.stdout.count("| ntxent |") == 1
