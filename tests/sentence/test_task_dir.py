"""Any task by folder (SentEval's SST layout), and every malformed task file: exit 2, one line, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentence.config import EvalConfig
from sentence.senteval import evaluate_task, load_task_dir
from tests.sentence.test_cli import run_cli
from tests.sentence.test_senteval import WordCountEncoder

FAST = EvalConfig(kfold=5, inner_kfold=3, c_grid=(0.01, 1.0), max_iter=200)
LABELS = {"good": "positive", "bad": "negative", "fact": "neutral"}


def write_sst(folder: Path, counts: tuple[int, int, int] = (90, 30, 60)) -> Path:
    """Three splits whose string label follows the marker word; UTF-8 with a non-ASCII filler word."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "dev", "test"), counts, strict=True):
        lines = []
        for k in range(n):
            word = list(LABELS)[k % 3]
            lines.append(f"{word} {' '.join(rng.choice(['the', 'naïve', 'plot', 'scene'], 4))} {k}\t{LABELS[word]}")
        (folder / f"sentiment-{split}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_folder_task_with_string_labels_is_solved(tmp_path: Path) -> None:
    task = load_task_dir(write_sst(tmp_path / "toy"))
    assert task.protocol == "train-dev-test" and len(task.splits["dev"].first) == 30
    assert set(task.splits["train"].labels) == {"positive", "negative", "neutral"}
    scores, seconds = evaluate_task(WordCountEncoder(), task, FAST, n_jobs=1)
    assert scores == {"toy": 100.0} and seconds["classify_s"] >= 0


def _break(folder: Path, how: str) -> None:
    train = folder / "sentiment-train"
    if how == "missing split":
        (folder / "sentiment-dev").unlink()
    elif how == "one class":
        train.write_text("good film\tpositive\ngood plot\tpositive\n", encoding="utf-8")
    elif how == "empty file":
        train.write_bytes(b"")
    elif how == "utf-16":
        train.write_bytes("good film\tpositive\nbad plot\tnegative\n".encode("utf-16"))
    elif how == "binary":
        train.write_bytes(bytes(range(256)) * 4)
    elif how == "undecodable":
        train.write_bytes(b"good caf\xe9 film\tpositive\nbad plot\tnegative\n")
    elif how == "no tab":
        train.write_text("good film positive\nbad plot\tnegative\n", encoding="utf-8")
    elif how == "unseen test label":
        with open(folder / "sentiment-test", "a", encoding="utf-8") as f:
            f.write("odd one\tsurprise\n")


CASES = {"missing split": "lacks sentiment-dev", "one class": "single class", "empty file": "is empty",
         "utf-16": "is UTF-16", "binary": "is binary", "undecodable": "is not utf-8-sig text", "no tab": ":1 is not",
         "unseen test label": "'surprise'"}


@pytest.mark.parametrize("how", list(CASES))
def test_malformed_folder_is_one_line_and_exit_2(tmp_path: Path, how: str) -> None:
    folder = write_sst(tmp_path / "task", counts=(6, 3, 3))
    _break(folder, how)
    result = run_cli("eval", "--encoder", "minilm", "--task-dir", str(folder), data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert CASES[how] in result.stderr


def test_mrpc_with_both_splits_empty_is_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "senteval" / "MRPC"
    folder.mkdir(parents=True)
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        (folder / name).write_text("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n", encoding="utf-8")
    result = run_cli("eval", "--encoder", "minilm", "--tasks", "MRPC", data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "no sentence pairs" in result.stderr and "msr_paraphrase_train.txt" in result.stderr


def test_builtin_binary_file_is_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "senteval" / "CR"
    folder.mkdir(parents=True)
    (folder / "custrev.pos").write_bytes("great phone\n".encode("utf-16"))
    (folder / "custrev.neg").write_text("bad phone\n", encoding="utf-8")
    result = run_cli("eval", "--encoder", "minilm", "--tasks", "CR", data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 2 and "custrev.pos is UTF-16" in result.stderr and "Traceback" not in result.stderr
