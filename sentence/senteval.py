"""An offline SentEval for any sentence encoder: six transfer tasks, any task folder, the standard protocol.

An encoder is any callable from a list of sentences to an ``(n, d)`` array. Embeddings are
frozen; a logistic regression on standardised features is trained on top. Every task, built in
or read from a folder, becomes one :class:`Task` and goes through :func:`evaluate_task`:

* MR, CR, SUBJ, MPQA (protocol ``cv``): 10-fold stratified cross-validation; in each fold the
  L2 strength is chosen by an inner stratified cross-validation on the training part;
* TREC (``train-test``): C by cross-validation on the 5,452 training questions, accuracy on the
  500 test ones;
* MRPC (``train-test``, pairs): features ``[|u - v|, u * v]``, accuracy and F1 on the 1,725 test pairs;
* a folder in SentEval's SST layout (``train-dev-test``): C chosen on dev, accuracy on test.

Speed: embeddings are cached on disk by content (encoder identity + sentences), each C grid is
fitted as one warm-started lbfgs path that converges, and folds run in parallel processes.

Files are read as SentEval ships them (see ``shared/data/README.md``): MR, SUBJ and TREC are
latin-1, lines are split on ``\\n`` only (``str.splitlines`` also breaks at ``\\x85`` inside MR
sentences), MRPC is tab-separated with a header and a UTF-8 byte-order mark. A file that is
missing, empty, binary, UTF-16 or undecodable is a :class:`common.errors.UserError` naming it.
Folds are fixed by a seed, so two encoders are compared on the same splits.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.io import atomic_write_bytes
from common.paths import cache_dir, data_dir
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
SST_SPLITS = ("train", "dev", "test")
#: names this evaluator in run records; the tables compare only records of one evaluator
EVALUATOR = "cached embeddings, warm-started lbfgs C path (issue 21)"


@dataclass
class Split:
    """Sentences (or, for pair tasks, ``second`` too) and their labels (any hashable values)."""

    first: list[str]
    labels: np.ndarray
    second: list[str] | None = None


@dataclass
class Task:
    """``protocol`` is ``cv`` (one split ``all``), ``train-test`` (C by inner CV) or ``train-dev-test`` (C on dev)."""

    name: str
    protocol: str
    splits: dict[str, Split]


def senteval_dir(root: Path | None = None) -> Path:
    return (root or data_dir()) / "senteval"


def _require(root: Path, names: Sequence[str]) -> list[Path]:
    paths = [root / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"missing SentEval file(s): {', '.join(missing)}; set DATA_DIR to the folder holding senteval/")
    return paths


def check_task_files(tasks: Sequence[str], root: Path | None = None) -> None:
    """Read and validate every task's files before any encoding or training (a second for all six)."""
    for task in tasks:
        load_task(task, root)


def read_lines(path: Path, encoding: str) -> list[str]:
    """Lines split on ``\\n`` only; empty lines are kept as SentEval keeps them (MPQA has three).

    An empty, binary (NUL bytes: also UTF-16) or undecodable file is a ``UserError`` naming it.
    """
    data = path.read_bytes()
    if not data.strip():
        raise UserError(f"{path} is empty")
    if b"\x00" in data:
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise UserError(f"{path} is {'UTF-16' if utf16 else 'binary'} (NUL bytes); expected {encoding} text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not {encoding} text (byte {err.start}: {data[err.start:err.start + 1]!r})") from None
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _two_classes(path: Path, labels: np.ndarray) -> None:
    if len(np.unique(labels)) < 2:
        raise UserError(f"{path} has a single class ({str(labels[0])!r}); a classification task needs two or more")


def _seen_in_training(path: Path, labels: np.ndarray, train_labels: np.ndarray, train_name: str) -> None:
    """A test class the classifier never trained on can only be scored wrong: refuse it, naming the file."""
    unseen = sorted(set(labels.tolist()) - set(train_labels.tolist()))
    if unseen:
        raise UserError(f"{path} has class(es) {', '.join(map(repr, unseen[:5]))} that {train_name} never has")


def load_binary(task: str, root: Path | None = None) -> tuple[list[str], np.ndarray]:
    """Sentences and 0/1 labels (1 = the first file: positive, objective) of MR, CR, SUBJ or MPQA."""
    pos_name, neg_name, encoding = BINARY_FILES[task]
    pos_path, neg_path = _require(senteval_dir(root), (pos_name, neg_name))
    pos, neg = read_lines(pos_path, encoding), read_lines(neg_path, encoding)
    return [s.strip() for s in pos + neg], np.array([1] * len(pos) + [0] * len(neg))


def load_trec(root: Path | None = None) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Train and test questions with their coarse class (``"NUM:dist How far ..."`` -> ``NUM``)."""
    splits = []
    paths = _require(senteval_dir(root), TREC_FILES)
    for path in paths:
        rows = [line.split(" ", 1) for line in read_lines(path, "latin-1")]
        bad = next((k for k, r in enumerate(rows, 1) if len(r) != 2 or ":" not in r[0]), None)
        if bad is not None:
            raise UserError(f"{path}:{bad} is not TREC's 'COARSE:fine question' format")
        empty = next((k for k, r in enumerate(rows, 1) if not r[1].strip()), None)
        if empty is not None:
            raise UserError(f"{path}:{empty} (TREC) has a label but no question")
        labels = np.array([label.split(":")[0] for label, _ in rows])
        _two_classes(path, labels)
        splits.append(([text.strip() for _, text in rows], labels))
    (train_x, train_y), (test_x, test_y) = splits
    _seen_in_training(paths[1], test_y, train_y, paths[0].name)
    return train_x, train_y, test_x, test_y


def load_mrpc(root: Path | None = None) -> tuple[Split, Split]:
    """(train, test) sentence pairs and paraphrase labels of MRPC."""
    splits = []
    for path in _require(senteval_dir(root), MRPC_FILES):
        lines = read_lines(path, "utf-8-sig")
        header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
        if header[0] != "Quality" or any(len(r) != 5 or r[0] not in ("0", "1") for r in rows):
            raise UserError(f"{path} is not MRPC's tab-separated format (Quality, #1 ID, #2 ID, #1 String, #2 String)")
        if not rows:
            raise UserError(f"{path} holds a header but no sentence pairs")
        split = Split([r[3] for r in rows], np.array([int(r[0]) for r in rows]), [r[4] for r in rows])
        _two_classes(path, split.labels)
        splits.append(split)
    return splits[0], splits[1]


def load_task(task: str, root: Path | None = None) -> Task:
    """One of the six built-in tasks as a :class:`Task`."""
    if task in BINARY_FILES:
        sentences, labels = load_binary(task, root)
        return Task(task, "cv", {"all": Split(sentences, labels)})
    if task == "TREC":
        train_x, train_y, test_x, test_y = load_trec(root)
        return Task(task, "train-test", {"train": Split(train_x, train_y), "test": Split(test_x, test_y)})
    if task == "MRPC":
        train, test = load_mrpc(root)
        return Task(task, "train-test", {"train": train, "test": test})
    raise UserError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def load_task_dir(folder: Path) -> Task:
    """A single-sentence task in SentEval's SST layout: ``sentiment-{train,dev,test}``, ``sentence<TAB>label`` lines."""
    if not folder.is_dir():
        raise UserError(f"--task-dir {folder} is not a folder")
    paths = [folder / f"sentiment-{split}" for split in SST_SPLITS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"--task-dir {folder} lacks {', '.join(missing)} (needs sentiment-train, sentiment-dev, sentiment-test)")
    splits = {}
    for split, path in zip(SST_SPLITS, paths, strict=True):
        sentences, labels = [], []
        for number, line in enumerate(read_lines(path, "utf-8-sig"), 1):
            sentence, tab, label = line.rpartition("\t")
            if not tab or not sentence.strip() or not label.strip():
                raise UserError(f"{path}:{number} is not 'sentence<TAB>label'")
            sentences.append(sentence.strip())
            labels.append(label.strip())
        splits[split] = Split(sentences, np.array(labels))
    _two_classes(paths[0], splits["train"].labels)
    for split, path in zip(SST_SPLITS[1:], paths[1:], strict=True):
        _seen_in_training(path, splits[split].labels, splits["train"].labels, "sentiment-train")
    return Task(folder.name, "train-dev-test", splits)


def encoder_identity(encoder: Encoder) -> str | None:
    """What the embedding cache keys an encoder by: its ``identity`` attribute (None: not cached)."""
    return getattr(encoder, "identity", None)


def _cache_path(identity: str, sentences: list[str]) -> Path:
    digest = hashlib.sha256(identity.encode())
    for sentence in sentences:
        digest.update(sentence.encode("utf-8", "surrogatepass") + b"\n")
    return cache_dir() / "sentence" / "embeddings" / f"{digest.hexdigest()[:32]}.npy"


def distinct_by_length(sentences: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct sentences, index of each input among them, their order by word count): what ``encode`` batches."""
    unique, inverse = np.unique(np.asarray(sentences, dtype=object), return_inverse=True)
    return unique, inverse, np.argsort([len(s.split()) for s in unique], kind="stable")


def encode(encoder: Encoder, sentences: list[str], batch_size: int) -> np.ndarray:
    """Embeddings of ``sentences``: each distinct sentence once, in batches of similar length (less padding).

    With an encoder identity they are read from (or written to) the cache, keyed by identity and content.
    """
    identity = encoder_identity(encoder)
    path = _cache_path(identity, sentences) if identity else None
    if path is not None and path.exists():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.ndim == 2 and len(cached) == len(sentences) and cached.dtype == np.float32:
                return cached
        except (OSError, ValueError, EOFError):
            pass
        path.unlink(missing_ok=True)  # a truncated or foreign cache entry is recomputed, never trusted
    unique, inverse, order = distinct_by_length(sentences)
    chunks = [np.asarray(encoder(list(unique[order[i : i + batch_size]])), dtype=np.float32)
              for i in range(0, len(order), batch_size)]
    embeddings = np.empty((len(unique), chunks[0].shape[1]), dtype=np.float32)
    embeddings[order] = np.concatenate(chunks)
    embeddings = embeddings[inverse]
    if path is not None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, embeddings)
        atomic_write_bytes(path, buffer.getvalue())
    return embeddings


def default_jobs() -> int:
    """All usable cores, or OMP_NUM_THREADS where it is set: a one-thread queue beside another must not start a
    classifier fit per core (the fits are independent, so the scores do not depend on it)."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        return int(threads)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _c_path(train_x: np.ndarray, train_y: np.ndarray, evals: list[np.ndarray], config: EvalConfig) -> list[list[np.ndarray]]:
    """Predictions on each of ``evals`` for every C of the grid, ascending, each fit warm-started from the last.

    Small C converges in a few lbfgs steps and each larger C starts near its optimum, so the whole
    grid costs little more than one fit and every fit reaches ``tol`` within ``max_iter``.
    """
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(solver="lbfgs", warm_start=True, max_iter=config.max_iter)
    predictions = []
    for c in sorted(config.c_grid):
        model.set_params(C=c).fit(train_x, train_y)
        predictions.append([model.predict(x) for x in evals])
    return predictions


def _inner_cv_choice(train_x: np.ndarray, train_y: np.ndarray, config: EvalConfig) -> float:
    """The C of the grid with the best mean inner-CV accuracy (the smallest on ties, as LogisticRegressionCV)."""
    from sklearn.model_selection import StratifiedKFold

    inner = StratifiedKFold(config.inner_kfold, shuffle=True, random_state=config.seed)
    scores = np.zeros(len(config.c_grid))
    for fit, held in inner.split(train_x, train_y):
        path = _c_path(train_x[fit], train_y[fit], [train_x[held]], config)
        scores += [np.mean(p[0] == train_y[held]) for p in path]
    return sorted(config.c_grid)[int(np.argmax(scores))]


def _fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, c: float, config: EvalConfig) -> np.ndarray:
    import dataclasses

    return _c_path(train_x, train_y, [test_x], dataclasses.replace(config, c_grid=(c,)))[0][0]


def _scaled(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Features standardised with the training part's statistics (constant features stay 0)."""
    mean, std = train_x.mean(axis=0), train_x.std(axis=0)
    std[std == 0] = 1.0
    return [(x - mean) / std for x in (train_x, *others)]


def _outer_fold(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, config: EvalConfig) -> float:
    train_x, test_x = _scaled(x[train], x[test])
    c = _inner_cv_choice(train_x, y[train], config)
    return float(np.mean(_fit_predict(train_x, y[train], test_x, c, config) == y[test]))


def _parallel(n_jobs: int):
    from joblib import Parallel

    return Parallel(n_jobs=n_jobs) if n_jobs > 1 else (lambda calls: [f(*a, **k) for f, a, k in calls])


def cross_validated_accuracy(features: np.ndarray, labels: np.ndarray, config: EvalConfig, n_jobs: int) -> float:
    """Mean test accuracy (%) over ``kfold`` stratified folds, C chosen inside each fold; folds in parallel."""
    from joblib import delayed
    from sklearn.model_selection import StratifiedKFold

    outer = StratifiedKFold(config.kfold, shuffle=True, random_state=config.seed)
    scores = _parallel(n_jobs)(delayed(_outer_fold)(features, labels, train, test, config)
                               for train, test in outer.split(features, labels))
    return 100.0 * float(np.mean(scores))


def _inner_fold_scores(x: np.ndarray, y: np.ndarray, fit: np.ndarray, held: np.ndarray, config: EvalConfig) -> list[float]:
    return [float(np.mean(p[0] == y[held])) for p in _c_path(x[fit], y[fit], [x[held]], config)]


def cv_choice(train_x: np.ndarray, train_y: np.ndarray, config: EvalConfig, n_jobs: int) -> float:
    """The C of the grid with the best summed inner-CV accuracy (the smallest on ties); inner folds in parallel."""
    from joblib import delayed
    from sklearn.model_selection import StratifiedKFold

    inner = StratifiedKFold(config.inner_kfold, shuffle=True, random_state=config.seed)
    scores = np.sum(_parallel(n_jobs)(delayed(_inner_fold_scores)(train_x, train_y, fit, held, config)
                                      for fit, held in inner.split(train_x, train_y)), axis=0)
    return sorted(config.c_grid)[int(np.argmax(scores))]


def train_test_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                      config: EvalConfig, n_jobs: int, dev: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float]:
    """(accuracy %, binary F1 % or nan) on the test split; C by CV on the training split (inner folds in
    parallel) or, given ``dev``, the C with the best dev accuracy."""
    from sklearn.metrics import f1_score

    if dev is None:
        train_x, test_x = _scaled(train_x, test_x)
        predicted = _fit_predict(train_x, train_y, test_x, cv_choice(train_x, train_y, config, n_jobs), config)
    else:
        train_x, dev_x, test_x = _scaled(train_x, dev[0], test_x)
        path = _c_path(train_x, train_y, [dev_x, test_x], config)
        predicted = path[int(np.argmax([np.mean(p[0] == dev[1]) for p in path]))][1]
    accuracy = 100.0 * float(np.mean(predicted == test_y))
    classes = np.unique(train_y)
    f1 = (100.0 * float(f1_score(test_y, predicted, pos_label=classes[-1])) if len(classes) == 2 and set(classes) == {0, 1}
          else float("nan"))
    return accuracy, f1


def task_features(encoder: Encoder, split: Split, batch_size: int) -> np.ndarray:
    """The classifier's input of one split: embeddings, or ``[|u - v|, u * v]`` of a pair split."""
    if split.second is None:
        return encode(encoder, split.first, batch_size)
    return pair_features(encode(encoder, split.first + split.second, batch_size))


def evaluate_task(encoder: Encoder, task: Task, config: EvalConfig, n_jobs: int) -> tuple[dict[str, float], dict[str, float]]:
    """(scores %, seconds spent encoding and classifying) of one task; pair tasks report ``NAME_acc`` and ``NAME_f1``."""
    start = time.perf_counter()
    features = {name: task_features(encoder, split, config.batch_size) for name, split in task.splits.items()}
    encoded = time.perf_counter()
    labels = {name: split.labels for name, split in task.splits.items()}
    if task.protocol == "cv":
        scores = {task.name: cross_validated_accuracy(features["all"], labels["all"], config, n_jobs)}
    else:
        dev = (features["dev"], labels["dev"]) if task.protocol == "train-dev-test" else None
        accuracy, f1 = train_test_scores(features["train"], labels["train"], features["test"], labels["test"], config,
                                         n_jobs, dev)
        pairs = task.splits["train"].second is not None
        scores = {f"{task.name}_acc": accuracy, f"{task.name}_f1": f1} if pairs else {task.name: accuracy}
    return scores, {"encode_s": encoded - start, "classify_s": time.perf_counter() - encoded}


def evaluate(
    encoder: Encoder,
    tasks: Sequence[str] = TASKS,
    config: EvalConfig | None = None,
    *,
    root: Path | None = None,
    n_jobs: int | None = None,
    log: Callable[[str], None] | None = print,
    timings: dict[str, float] | None = None,
) -> dict[str, float]:
    """Transfer scores (percent) of ``encoder``: one key per task, ``MRPC_acc`` and ``MRPC_f1`` for MRPC.

    ``timings``, when given, receives the encoding and classifier seconds summed over the tasks.
    """
    config = config or EvalConfig()
    n_jobs = n_jobs or default_jobs()
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UserError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    results: dict[str, float] = {}
    for name in tasks:
        scores, seconds = evaluate_task(encoder, load_task(name, root), config, n_jobs)
        results.update(scores)
        if timings is not None:
            for key, value in seconds.items():
                timings[key] = timings.get(key, 0.0) + value
        if log:
            log(f"{name}: {({k: round(v, 2) for k, v in scores.items()})} (encode {seconds['encode_s']:.0f} s, "
                f"classifier {seconds['classify_s']:.0f} s)")
    return results


def pair_features(stacked: np.ndarray) -> np.ndarray:
    """``[|u - v|, u * v]`` for embeddings of the first sentences stacked above the second ones."""
    first, second = np.split(stacked, 2)
    return np.concatenate([np.abs(first - second), first * second], axis=1)
