"""An offline SentEval for any sentence encoder: six transfer tasks, the standard protocol.

An encoder is any callable from a list of sentences to an ``(n, d)`` array. Embeddings are
frozen; a logistic regression on standardised features is trained on top:

* MR, CR, SUBJ, MPQA: 10-fold stratified cross-validation; in each fold the L2 strength is
  chosen by an inner stratified cross-validation on the training part;
* TREC: C by cross-validation on the 5,452 training questions, accuracy on the 500 test ones;
* MRPC: features ``[|u - v|, u * v]``, C by cross-validation on the 4,076 training pairs,
  accuracy and F1 on the 1,725 test pairs.

Files are read as SentEval ships them (see ``shared/data/README.md``): MR, SUBJ and TREC are
latin-1, lines are split on ``\\n`` only (``str.splitlines`` also breaks at ``\\x85`` inside MR
sentences), MRPC is tab-separated with a header and a UTF-8 byte-order mark. Folds are fixed
by a seed, so two encoders are compared on the same splits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.cli import UserError
from common.paths import data_dir
from sentence.config import TASKS, EvalConfig

Encoder = Callable[[list[str]], np.ndarray]

#: task -> (positive file, negative file, encoding)
BINARY_FILES = {
    "MR": ("MR/rt-polarity.pos", "MR/rt-polarity.neg", "latin-1"),
    "CR": ("CR/custrev.pos", "CR/custrev.neg", "utf-8"),
    "SUBJ": ("SUBJ/subj.objective", "SUBJ/subj.subjective", "latin-1"),
    "MPQA": ("MPQA/mpqa.pos", "MPQA/mpqa.neg", "utf-8"),
}
TREC_FILES = ("TREC/train_5500.label", "TREC/TREC_10.label")
MRPC_FILES = ("MRPC/msr_paraphrase_train.txt", "MRPC/msr_paraphrase_test.txt")


def senteval_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "senteval"


def _require(root: Path, names: Sequence[str]) -> list[Path]:
    paths = [root / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"missing SentEval file(s): {', '.join(missing)}; set DATA_DIR to the folder holding senteval/")
    return paths


def check_task_files(tasks: Sequence[str], root: Path | None = None) -> None:
    """Fail before any encoding or training when a task's file is missing."""
    names = [name for task in tasks for name in
             (BINARY_FILES[task][:2] if task in BINARY_FILES else TREC_FILES if task == "TREC" else MRPC_FILES)]
    _require(senteval_dir(root), names)


def read_lines(path: Path, encoding: str) -> list[str]:
    """Lines split on ``\\n`` only; empty lines are kept as SentEval keeps them (MPQA has three)."""
    lines = path.read_bytes().decode(encoding).split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def load_binary(task: str, root: Path | None = None) -> tuple[list[str], np.ndarray]:
    """Sentences and 0/1 labels (1 = the first file: positive, objective) of MR, CR, SUBJ or MPQA."""
    pos_name, neg_name, encoding = BINARY_FILES[task]
    pos_path, neg_path = _require(senteval_dir(root), (pos_name, neg_name))
    pos, neg = read_lines(pos_path, encoding), read_lines(neg_path, encoding)
    return [s.strip() for s in pos + neg], np.array([1] * len(pos) + [0] * len(neg))


def load_trec(root: Path | None = None) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Train and test questions with their coarse class (``"NUM:dist How far ..."`` -> ``NUM``)."""
    splits = []
    for path in _require(senteval_dir(root), TREC_FILES):
        rows = [line.split(" ", 1) for line in read_lines(path, "latin-1")]
        splits.append(([text.strip() for _, text in rows], np.array([label.split(":")[0] for label, _ in rows])))
    (train_x, train_y), (test_x, test_y) = splits
    return train_x, train_y, test_x, test_y


@dataclass
class PairSplit:
    first: list[str]
    second: list[str]
    labels: np.ndarray


def load_mrpc(root: Path | None = None) -> tuple[PairSplit, PairSplit]:
    """(train, test) sentence pairs and paraphrase labels of MRPC."""
    splits = []
    for path in _require(senteval_dir(root), MRPC_FILES):
        lines = read_lines(path, "utf-8-sig")
        header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
        if header[0] != "Quality" or any(len(r) != 5 for r in rows):
            raise UserError(f"{path} is not MRPC's tab-separated format (Quality, #1 ID, #2 ID, #1 String, #2 String)")
        splits.append(PairSplit([r[3] for r in rows], [r[4] for r in rows], np.array([int(r[0]) for r in rows])))
    return splits[0], splits[1]


def encode(encoder: Encoder, sentences: list[str], batch_size: int) -> np.ndarray:
    """Embeddings of ``sentences``: each distinct sentence once, in batches of similar length (less padding)."""
    unique, inverse = np.unique(np.asarray(sentences, dtype=object), return_inverse=True)
    order = np.argsort([len(s.split()) for s in unique], kind="stable")
    chunks = [np.asarray(encoder(list(unique[order[i : i + batch_size]])), dtype=np.float32)
              for i in range(0, len(order), batch_size)]
    embeddings = np.empty((len(unique), chunks[0].shape[1]), dtype=np.float32)
    embeddings[order] = np.concatenate(chunks)
    return embeddings[inverse]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _classifier(config: EvalConfig, n_jobs: int):
    """Standardise, then logistic regression whose C is picked by inner stratified CV (warm-started path)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    inner = StratifiedKFold(config.inner_kfold, shuffle=True, random_state=config.seed)
    return make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(Cs=list(config.c_grid), cv=inner, scoring="accuracy", max_iter=config.max_iter,
                             l1_ratios=(0.0,), use_legacy_attributes=False, n_jobs=n_jobs),
    )


def cross_validated_accuracy(features: np.ndarray, labels: np.ndarray, config: EvalConfig, n_jobs: int) -> float:
    """Mean test accuracy (%) over ``kfold`` stratified folds, C chosen inside each fold."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    outer = StratifiedKFold(config.kfold, shuffle=True, random_state=config.seed)
    scores = cross_val_score(_classifier(config, 1), features, labels, cv=outer, n_jobs=n_jobs)
    return 100.0 * float(np.mean(scores))


def train_test_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                      config: EvalConfig, n_jobs: int) -> tuple[float, float]:
    """(accuracy %, binary F1 % or nan) on the test split; C chosen by CV on the training split."""
    from sklearn.metrics import f1_score

    predicted = _classifier(config, n_jobs).fit(train_x, train_y).predict(test_x)
    accuracy = 100.0 * float(np.mean(predicted == test_y))
    f1 = 100.0 * float(f1_score(test_y, predicted)) if len(np.unique(train_y)) == 2 else float("nan")
    return accuracy, f1


def evaluate(
    encoder: Encoder,
    tasks: Sequence[str] = TASKS,
    config: EvalConfig | None = None,
    *,
    root: Path | None = None,
    n_jobs: int | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, float]:
    """Transfer scores (percent) of ``encoder``: one key per task, ``MRPC_acc`` and ``MRPC_f1`` for MRPC."""
    config = config or EvalConfig()
    n_jobs = n_jobs or default_jobs()
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UserError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    results: dict[str, float] = {}
    for task in tasks:
        start = time.perf_counter()
        if task in BINARY_FILES:
            sentences, labels = load_binary(task, root)
            results[task] = cross_validated_accuracy(encode(encoder, sentences, config.batch_size), labels, config, n_jobs)
        elif task == "TREC":
            train_x, train_y, test_x, test_y = load_trec(root)
            results[task], _ = train_test_scores(encode(encoder, train_x, config.batch_size), train_y,
                                                 encode(encoder, test_x, config.batch_size), test_y, config, n_jobs)
        else:
            train, test = load_mrpc(root)
            features = [pair_features(encode(encoder, split.first + split.second, config.batch_size))
                        for split in (train, test)]
            results["MRPC_acc"], results["MRPC_f1"] = train_test_scores(features[0], train.labels, features[1],
                                                                        test.labels, config, n_jobs)
        if log:
            shown = {k: round(v, 2) for k, v in results.items() if k.startswith(task)}
            log(f"{task}: {shown} ({time.perf_counter() - start:.0f} s)")
    return results


def pair_features(stacked: np.ndarray) -> np.ndarray:
    """``[|u - v|, u * v]`` for embeddings of the first sentences stacked above the second ones."""
    first, second = np.split(stacked, 2)
    return np.concatenate([np.abs(first - second), first * second], axis=1)
