"""The evaluator: separable tasks reach ~100%, shuffled labels ~chance; file formats read exactly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from sentence.config import EvalConfig
from sentence.senteval import cross_validated_accuracy, encode, evaluate, load_binary, load_mrpc, pair_features
from tests.sentence.conftest import STAGED

FAST = EvalConfig(kfold=5, inner_kfold=3, c_grid=(0.1, 1.0), max_iter=100)


class WordCountEncoder:
    """A real (if simple) encoder: counts of a few marker words, plus noise features."""

    vocabulary = ("good", "bad", "fact", "feel")

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, sentences: list[str]) -> np.ndarray:
        self.calls += 1
        counts = np.array([[s.split().count(w) for w in self.vocabulary] for s in sentences], dtype=np.float32)
        noise = np.random.default_rng(len(sentences)).normal(size=(len(sentences), 4)).astype(np.float32)
        return np.concatenate([counts, noise], axis=1)


def write_task(root: Path, rng: np.random.Generator, n: int = 120) -> None:
    """An MR-like task in latin-1 whose label is decided by the word 'good' vs 'bad'; one sentence holds \\x85."""
    folder = root / "senteval" / "MR"
    folder.mkdir(parents=True)
    filler = ["the", "film", "plot", "actor", "scene", "caf\xe9"]
    pos = [" ".join(["good", *rng.choice(filler, 5), str(k)]) for k in range(n)]
    neg = [" ".join(["bad", *rng.choice(filler, 5), str(k)]) for k in range(n)]
    pos[0] = "good \x85 but long"
    (folder / "rt-polarity.pos").write_bytes(("\n".join(pos) + "\n").encode("latin-1"))
    (folder / "rt-polarity.neg").write_bytes(("\n".join(neg) + "\n").encode("latin-1"))


def test_separable_task_is_solved_and_files_read_on_newlines_only(tmp_path: Path) -> None:
    write_task(tmp_path, np.random.default_rng(0))
    sentences, labels = load_binary("MR", tmp_path)
    assert len(sentences) == 240 and labels.sum() == 120 and sentences[0] == "good \x85 but long"
    scores = evaluate(WordCountEncoder(), ["MR"], FAST, root=tmp_path, n_jobs=1, log=None)
    assert scores["MR"] > 99.0


def test_shuffled_labels_give_chance() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 10))
    labels = rng.permutation(np.repeat([0, 1], 200))
    accuracy = cross_validated_accuracy(features, labels, FAST, n_jobs=1)
    assert 38.0 < accuracy < 62.0


def test_encode_embeds_each_distinct_sentence_once_in_input_order() -> None:
    encoder = WordCountEncoder()
    sentences = ["good good", "bad", "good good", "feel fact fact", "bad"]
    out = encode(encoder, sentences, batch_size=2)
    assert encoder.calls == 2  # three distinct sentences in batches of two
    np.testing.assert_array_equal(out[:, :4], [[2, 0, 0, 0], [0, 1, 0, 0], [2, 0, 0, 0], [0, 0, 2, 1], [0, 1, 0, 0]])


def test_pair_features_are_absolute_difference_and_product() -> None:
    u, v = np.array([[1.0, -2.0]]), np.array([[3.0, 4.0]])
    np.testing.assert_array_equal(pair_features(np.concatenate([u, v])), [[2.0, 6.0, 3.0, -8.0]])


def test_mrpc_parsing_with_bom_and_quotes(tmp_path: Path) -> None:
    folder = tmp_path / "senteval" / "MRPC"
    folder.mkdir(parents=True)
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    rows = '1\t1\t2\tHe said " yes .\tHe agreed .\n0\t3\t4\tA b .\tC d .\n'
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        (folder / name).write_text(header + rows, encoding="utf-8")
    train, test = load_mrpc(tmp_path)
    assert train.first == ['He said " yes .', "A b ."] and train.second[1] == "C d ." and train.labels.tolist() == [1, 0]


@pytest.mark.skipif(not (STAGED / "senteval" / "MRPC").is_dir(), reason="staged SentEval data not present")
def test_staged_file_counts() -> None:
    train, test = load_mrpc(STAGED)
    assert (len(train.labels), int(train.labels.sum()), len(test.labels), int(test.labels.sum())) == (4076, 2753, 1725, 1147)
    counts = {task: len(load_binary(task, STAGED)[0]) for task in ("MR", "CR", "SUBJ", "MPQA")}
    assert counts == {"MR": 10662, "CR": 3775, "SUBJ": 10000, "MPQA": 10606}


def test_missing_task_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="rt-polarity.pos"):
        load_binary("MR", tmp_path)


class IdentifiedEncoder(WordCountEncoder):
    """The same encoder with a content identity, so the evaluator may cache its embeddings."""

    identity = "word-count:v1"


def test_embeddings_are_cached_by_encoder_identity_and_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))
    encoder = IdentifiedEncoder()
    first = encode(encoder, ["good film", "bad plot"], batch_size=8)
    again = encode(encoder, ["good film", "bad plot"], batch_size=8)
    assert encoder.calls == 1 and np.array_equal(first, again)
    encode(encoder, ["good film", "bad plot", "fact"], batch_size=8)  # other sentences: another entry
    assert encoder.calls == 2
    other = IdentifiedEncoder()
    other.identity = "word-count:v2"
    encode(other, ["good film", "bad plot"], batch_size=8)  # another encoder, same sentences
    assert other.calls == 1


def test_warm_started_path_matches_logistic_regression_cv() -> None:
    """The fast protocol picks C and scores like the old LogisticRegressionCV pipeline once both converge."""
    from benchmarks.senteval_speed import legacy_scores
    from sentence.senteval import Split, Task

    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 150)
    features = rng.normal(size=(300, 12)) + 0.6 * labels[:, None] * (np.arange(12) < 3)
    task = Task("toy", "cv", {"all": Split([str(k) for k in range(300)], labels)})
    config = EvalConfig(kfold=5, inner_kfold=3, c_grid=(0.01, 0.1, 1.0, 10.0), max_iter=1000)
    fast = cross_validated_accuracy(features, labels, config, n_jobs=1)
    assert abs(fast - legacy_scores(task, {"all": features}, config, n_jobs=1)["toy"]) < 0.1
    assert fast > 70.0


def test_default_jobs_follow_omp_num_threads(monkeypatch):
    """A one-thread queue (OMP_NUM_THREADS=1) must get one classifier fit at a time; unset, every usable core."""
    from sentence.senteval import default_jobs

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_jobs() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_jobs() == len(os.sched_getaffinity(0))
