"""Command line: bad input and missing data exit with code 2 and one line; --help is instant."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from common.paths import REPO_ROOT


def run_cli(*args: str, data: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATA_DIR": str(data), "HARDNEG_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sentence", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_missing_books_exit_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("prepare", data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no books found") and result.stderr.count("\n") == 1
    assert str(tmp_path / "books" / "gutenberg") in result.stderr


def test_missing_senteval_and_bad_encoder_exit_2(tmp_path: Path) -> None:
    result = run_cli("eval", "--encoder", str(tmp_path / "nope.pt"), data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 2 and "nope.pt does not exist" in result.stderr
    result = run_cli("eval", "--encoder", "minilm", "--tasks", "TREC", data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 2 and "train_5500.label" in result.stderr


def test_help_is_fast_and_lists_subcommands(tmp_path: Path) -> None:
    start = time.perf_counter()
    result = run_cli("--help", data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 0 and time.perf_counter() - start < 5
    for command in ("train", "eval", "st-finetune", "run", "table"):
        assert command in result.stdout
    result = run_cli("run", "--tasks", "XYZ", data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 2 and "tasks must be" in result.stderr


def test_run_trains_evaluates_records_and_prints_its_table(tmp_path: Path, monkeypatch, capsys) -> None:
    """`sentence run` end to end on tiny books and a tiny TREC-format task: a record per row, then the table of them."""
    import json

    from sentence.__main__ import main
    from tests.sentence.conftest import use_books_and_trec

    use_books_and_trec(tmp_path, monkeypatch)
    records = tmp_path / "records.jsonl"
    args = ["run", "--objective", "plain", "--tasks", "TREC", "--steps", "2", "--batch-size", "8", "--eval-every", "1",
            "--checkpoint-every", "1", "--val-batches", "1", "--no-minilm", "--threads", "1", "--jobs", "1", "--no-progress",
            "--records", str(records), "--out-dir", str(tmp_path / "runs")]
    assert main(args) == 0
    assert [json.loads(line)["config"]["row"] for line in records.read_text().splitlines()] == ["qt-plain", "random"]
    out = capsys.readouterr().out  # the untrained encoder beside the run it is the reference of
    assert "| quick, batch_size=8, steps=2, val_batches=1, TREC | quick-thought, ntxent | 0 |" in out
    assert "| quick, batch_size=8, steps=2, val_batches=1, TREC | random encoder (quick-thought, untrained) | 0 |" in out
    assert main(args) == 0 and "quick-thought, ntxent, seed 0: already recorded" in capsys.readouterr().out  # no redo
