"""Bad input as a new user makes it, through the real command lines: one line on stderr, exit code 2.

Every case runs the CLI as a subprocess on a damaged copy of real data in a temporary folder
and checks: exit code 2, a single stderr line that names the file or flag, no traceback, and
a records file that existed before is byte for byte the same afterwards. Damaged records are
the other way round: skipped with a warning naming file and line, and the run goes on.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from common.paths import REPO_ROOT, data_dir

STAGED = data_dir()
needs_data = pytest.mark.skipif(not (STAGED / "tu" / "MUTAG").is_dir() or not (STAGED / "senteval").is_dir(),
                                reason="staged data sets not found (DATA_DIR)")
_VALID = {"pipeline": "note", "config": {"note": "a finished run that must survive"}, "metrics": {}, "seed": 0}


def _cli(args: list[str], tmp: Path, data: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HARDNEG_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "DATA_DIR": str(data or STAGED), "HOME": str(tmp)}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _mutag(tmp: Path, damage: Callable[[Path], None]) -> Path:
    """A data folder holding a copy of MUTAG's raw files with ``damage`` applied to the folder."""
    raw = tmp / "data" / "tu" / "MUTAG" / "raw"
    shutil.copytree(STAGED / "tu" / "MUTAG" / "raw", raw)
    damage(raw)
    return tmp / "data"


def _edit(name: str, change: Callable[[list[str]], list[str]]) -> Callable[..., None]:
    def damage(raw: Path, dataset: str = "MUTAG") -> None:
        path = raw / f"{dataset}_{name}.txt"
        path.write_text("".join(line + "\n" for line in change(path.read_text().splitlines())))
    return damage


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda raw: (raw / f"MUTAG_{name}.txt").write_bytes(data)


def _toy_tu(tmp: Path, name: str, graphs: int, labels: Callable[[list[str]], list[str]] = list) -> Path:
    """A data folder with a toy TU set of ``graphs`` rings and stars, its labels changed by ``labels``."""
    from tests.graph.conftest import write_toy_tu

    write_toy_tu(tmp / "data", name, graphs=graphs)
    _edit("graph_labels", labels)(tmp / "data" / "tu" / name / "raw", name)
    return tmp / "data"


def _jpeg_zip(tmp: Path, damage: str) -> Path:
    """A data folder with a CIFAR-style JPEG zip: two classes, one member damaged (``crc``) or not an image
    (``jpeg``); or one class only (``one-class``), or a test class without train images (``test-only``)."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buffer, "JPEG")
    good = buffer.getvalue()
    path = tmp / "data" / "images" / "cifar10_jpeg" / "cifar10_jpeg.zip"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for split in ("train", "test"):
            for label in {"one-class": ("cat",), "test-only": ("cat", "dog", "bird")}.get(damage, ("cat", "dog")):
                if damage == "test-only" and split == "train" and label == "bird":
                    continue
                broken = split == "test" and label == "dog"
                archive.writestr(f"{split}/{label}/0001.jpg", b"not a jpeg at all" if broken and damage == "jpeg" else good)
    if damage == "crc":  # flip a byte inside the last member's stored data: its CRC no longer matches
        data = bytearray(path.read_bytes())
        offset = data.rfind(good[100:120])
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
    return tmp / "data"


def _senteval(tmp: Path, task: str, damage: Callable[[Path], None]) -> Path:
    """A data folder with the staged books (linked) and a damaged copy of one SentEval task."""
    root = tmp / "data"
    (root / "senteval").mkdir(parents=True)
    (root / "books").symlink_to(STAGED / "books")
    shutil.copytree(STAGED / "senteval" / task, root / "senteval" / task)
    damage(root / "senteval" / task)
    return root


def _checkpoint(tmp: Path, config: object) -> Path:
    from common.checkpoint import save_checkpoint

    path = tmp / "checkpoint.pt"
    save_checkpoint(path, {"model": {}, "config": config})
    return path


_GRAPH = ["graph", "--dataset", "MUTAG", "--epochs", "1", "--repeats", "1", "--threads", "1", "--no-progress",
          "--no-download"]
_IMAGE = ["image", "run", "--objective", "ntxent", "--epochs", "1", "--threads", "1"]
_SENTEVAL = ["sentence", "eval", "--encoder", "random", "--threads", "1", "--jobs", "1"]


def _trec(change: Callable[[list[str]], list[str]], name: str = "train_5500.label") -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        def damage(folder: Path) -> None:
            path = folder / name
            path.write_bytes("".join(line + "\n" for line in change(path.read_bytes().decode("latin-1").splitlines()))
                             .encode("latin-1"))
        return _senteval(tmp, "TREC", damage)
    return build


def _zip_folder(tmp: Path) -> Path:
    (tmp / "data" / "images" / "cifar10_jpeg" / "cifar10_jpeg.zip").mkdir(parents=True)
    return tmp / "data"

# (id, command after `python -m` ({tmp}, {records} and {data} filled in), data folder builder, words the message holds)
CASES: list[tuple[str, list[str], Callable[[Path], Path | None], str]] = [
    # TU files
    ("tu-node-index-beyond-nodes", [*_GRAPH, "--records", "{records}"], lambda t: _mutag(t, _edit("A", lambda ls: [*ls[:-1], "99999, 1"])),
     "MUTAG_A.txt:7442: edge [99999, 1] names a node outside 1..3371"),
    ("tu-not-a-number", [*_GRAPH, "--records", "{records}"], lambda t: _mutag(t, _edit("graph_labels", lambda ls: ["x", *ls[1:]])),
     "MUTAG_graph_labels.txt:1: 'x' is not whole numbers"),
    ("tu-line-counts", [*_GRAPH, "--records", "{records}"], lambda t: _mutag(t, _edit("node_labels", lambda ls: ls[:-5])),
     "MUTAG_node_labels.txt: has 3366 lines, but MUTAG_graph_indicator.txt has 3371 nodes"),
    ("tu-empty-file", [*_GRAPH, "--records", "{records}"], lambda t: _mutag(t, _write("graph_indicator", b"")), "is empty"),
    ("tu-utf16-file", [*_GRAPH, "--records", "{records}"], lambda t: _mutag(t, _write("graph_labels", "1\n-1\n".encode("utf-16"))),
     "is not text"),
    ("tu-edge-across-graphs", [*_GRAPH, "--records", "{records}"], lambda t: _mutag(t, _edit("A", lambda ls: ["1, 3371", *ls[1:]])),
     "joins graph 1 to graph 188"),
    # graph flags and output
    ("graph-out-is-a-folder", [*_GRAPH, "--records", "{tmp}"], lambda t: None, "is a folder"),
    ("graph-nan-lr", [*_GRAPH, "--records", "{records}", "--lr", "nan"], lambda t: None, "--lr must be a finite number"),
    ("graph-unknown-device", [*_GRAPH, "--records", "{records}", "--device", "tpu"], lambda t: None, "--device 'tpu' is not a device"),
    ("graph-missing-gpu", [*_GRAPH, "--records", "{records}", "--device", "cuda:3"], lambda t: None, "--device cuda:3"),
    ("graph-negative-threads", [*_GRAPH, "--records", "{records}", "--threads", "-1"], lambda t: None, "--threads: must be >= 0"),
    # images
    ("cifar-zip-bad-crc", [*_IMAGE, "--records", "{records}", "--out-dir", "{tmp}/runs"], lambda t: _jpeg_zip(t, "crc"),
     "test/dog/0001.jpg cannot be read"),
    ("cifar-zip-not-a-jpeg", [*_IMAGE, "--records", "{records}", "--out-dir", "{tmp}/runs"], lambda t: _jpeg_zip(t, "jpeg"),
     "test/dog/0001.jpg is not an image"),
    ("image-batch-too-large", [*_IMAGE, "--records", "{records}", "--batch-size", "10000000"], lambda t: None,
     "lower --batch-size"),
    ("image-nan-weight-decay", [*_IMAGE, "--records", "{records}", "--weight-decay", "nan"], lambda t: None,
     "--weight-decay must be a finite number"),
    ("image-inf-temperature", [*_IMAGE, "--records", "{records}", "--temperature", "inf"], lambda t: None,
     "--temperature must be a finite number"),
    ("image-unknown-device", [*_IMAGE, "--records", "{records}", "--device", "gpu0"], lambda t: None, "is not a device"),
    ("image-records-is-a-folder", [*_IMAGE, "--records", "{tmp}"], lambda t: None, "--records"),
    ("image-checkpoint-unknown-keys", ["image", "knn", "--checkpoint", "{tmp}/checkpoint.pt"],
     lambda t: _checkpoint(t, {"epochs": 3, "colour": "blue"}) and None, "unknown settings (colour)"),
    ("image-checkpoint-wrong-types", ["image", "knn", "--checkpoint", "{tmp}/checkpoint.pt"],
     lambda t: _checkpoint(t, {"epochs": "three"}) and None, "stores epochs='three', expected int"),
    ("image-checkpoint-not-a-dict", ["image", "knn", "--checkpoint", "{tmp}/checkpoint.pt"],
     lambda t: _checkpoint(t, [1, 2]) and None, "not a dict"),
    ("image-checkpoint-garbage", ["image", "knn", "--checkpoint", "{records}"], lambda t: None, "corrupt or not a hardneg checkpoint"),
    # sentences
    ("senteval-empty-file", [*_SENTEVAL, "--tasks", "CR"], lambda t: _senteval(t, "CR", lambda d: (d / "custrev.pos").write_bytes(b"")),
     "custrev.pos is empty"),
    ("senteval-binary-file", [*_SENTEVAL, "--tasks", "CR"],
     lambda t: _senteval(t, "CR", lambda d: (d / "custrev.neg").write_bytes(b"\x00\x01\x02\xff" * 10)), "binary"),
    ("senteval-utf16-file", [*_SENTEVAL, "--tasks", "CR"],
     lambda t: _senteval(t, "CR", lambda d: (d / "custrev.neg").write_bytes("bad phone\n".encode("utf-16"))), "UTF-16"),
    ("senteval-one-class", [*_SENTEVAL, "--tasks", "TREC"],
     lambda t: _senteval(t, "TREC", lambda d: [(d / n).write_text("DESC:manner How did serfdom develop ?\n" * 50)
                                              for n in ("train_5500.label", "TREC_10.label")]), "single class ('DESC')"),
    ("senteval-mrpc-empty-splits", [*_SENTEVAL, "--tasks", "MRPC"],
     lambda t: _senteval(t, "MRPC", lambda d: [(d / f"msr_paraphrase_{s}.txt").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
                                              for s in ("train", "test")]), "MRPC"),
    ("sentence-task-dir-missing-split", ["sentence", "eval", "--encoder", "random", "--task-dir", "{tmp}"], lambda t: None,
     "sentiment-train"),
    ("st-finetune-nan-lr", ["sentence", "st-finetune", "--objective", "hard", "--lr", "nan", "--records", "{records}"], lambda t: None,
     "--lr must be a finite number"),
    ("st-finetune-negative-scale", ["sentence", "st-finetune", "--objective", "hard", "--scale", "-1", "--records", "{records}"],
     lambda t: None, "--scale must be > 0"),
    ("train-bad-tau-plus", ["sentence", "train", "--objective", "hard:tau_plus=1.5"], lambda t: None, "tau_plus"),
    ("train-zero-temperature", ["sentence", "train", "--temperature", "0"], lambda t: None, "--temperature must be > 0"),
    ("sentence-negative-threads", ["sentence", "train", "--threads", "-1"], lambda t: None, "--threads: must be >= 0"),
    ("sentence-records-is-a-folder", ["sentence", "run", "--records", "{tmp}"], lambda t: None, "is a folder"),
    ("sentence-checkpoint-garbage", [*_SENTEVAL, "--encoder", "{records}", "--tasks", "CR"], lambda t: None, "checkpoint"),
    ("sentence-checkpoint-text", [*_SENTEVAL, "--encoder", "{tmp}/notes.txt", "--tasks", "CR"],
     lambda t: (t / "notes.txt").write_text("a text file\n") and None, "corrupt or not a hardneg checkpoint"),
    ("image-stop-after-negative", ["image", "pretrain", "--stop-after", "-3", "--out-dir", "{tmp}/runs"], lambda t: None,
     "--stop-after: must be >= 1"),
    ("records-in-an-unwritable-place", [*_GRAPH, "--records", "/proc/hardneg-records.jsonl"], lambda t: None, "/proc/hardneg-records.jsonl"),
    ("cache-is-a-file", [*_GRAPH, "--records", "{records}"], lambda t: (t / "cache").write_text("x") and None,
     "cache folder {tmp}/cache cannot be created (a file, not a folder); point HARDNEG_CACHE"),
    ("checkpoint-is-a-folder", ["image", "knn", "--checkpoint", "{tmp}"], lambda t: None, "checkpoint {tmp} is a folder"),
    ("sentence-out-is-a-folder", ["sentence", "train", "--out", "{tmp}"], lambda t: None,
     "--out {tmp} is a folder; give a file path such as {tmp}/checkpoint.pt"),
    # values refused at parse time, before any work
    ("graph-seed-negative", [*_GRAPH, "--records", "{records}", "--seed", "-1"], lambda t: None, "--seed: must lie in [0, 4294967295]"),
    ("graph-seeds-past-2-32", [*_GRAPH, "--records", "{records}", "--seed", "4294967295", "--repeats", "2"], lambda t: None,
     "uses seeds up to 4294967296"),
    ("image-seed-2-64", [*_IMAGE, "--records", "{records}", "--seed", str(2**64)], lambda t: None, "--seed must lie in [0, 4294967295]"),
    ("sentence-seed-negative", ["sentence", "train", "--seed", "-1"], lambda t: None, "--seed: must lie in [0, 4294967295]"),
    ("image-graph-only-objective", ["image", "run", "--objective", "jsd", "--records", "{records}"], lambda t: None,
     "jsd is graph-only"),
    ("sentence-graph-only-objective", ["sentence", "run", "--objective", "infograph", "--records", "{records}"], lambda t: None,
     "infograph is graph-only"),
    # evaluators: data sets they cannot score
    ("tu-one-graph", [*_GRAPH, "--dataset", "ONE", "--records", "{records}"], lambda t: _toy_tu(t, "ONE", 1),
     "ONE_graph_labels.txt: holds 1 graph"),
    ("tu-one-class", [*_GRAPH, "--dataset", "SAME", "--records", "{records}"], lambda t: _toy_tu(t, "SAME", 24, lambda ls: ["1"] * len(ls)),
     "data set SAME: every graph has the same label"),
    ("tu-fewer-graphs-than-folds", [*_GRAPH, "--dataset", "FIVE", "--records", "{records}"], lambda t: _toy_tu(t, "FIVE", 5),
     "data set FIVE has 5 graphs, fewer than the 10 folds"),
    ("tu-class-smaller-than-folds", [*_GRAPH, "--dataset", "SMALL", "--records", "{records}"],
     lambda t: _toy_tu(t, "SMALL", 24, lambda ls: ["2"] * 3 + ls[3:]), "data set SMALL: its smallest class has 3 graph(s)"),
    ("trec-empty-question", [*_SENTEVAL, "--tasks", "TREC"], _trec(lambda ls: [*ls, "DESC:manner "]),
     "train_5500.label:5453 (TREC) has a label but no question"),
    ("trec-test-class-missing-from-train", [*_SENTEVAL, "--tasks", "TREC"],
     _trec(lambda ls: ["XYZ:other What is this ?", *ls[1:]], "TREC_10.label"), "has class(es) 'XYZ' that train_5500.label never has"),
    ("cifar-zip-one-class", [*_IMAGE, "--records", "{records}", "--out-dir", "{tmp}/runs"], lambda t: _jpeg_zip(t, "one-class"),
     "has 1 class folder(s) (cat)"),
    ("cifar-zip-test-class-without-train", [*_IMAGE, "--records", "{records}", "--out-dir", "{tmp}/runs"],
     lambda t: _jpeg_zip(t, "test-only"), "class(es) bird have test images but no train/ images"),
    ("cifar-zip-is-a-folder", [*_IMAGE, "--records", "{records}", "--out-dir", "{tmp}/runs"], _zip_folder,
     "cifar10_jpeg.zip is a folder"),
    # the harness and the benchmarks
    ("harness-bad-shard", ["benchmarks", "run", "smoke", "--shard", "3/2", "--records", "{tmp}"], lambda t: None, "--shard"),
    ("harness-records-is-a-file", ["benchmarks", "run", "smoke", "--records", "{records}"], lambda t: None, "is a file"),
    ("tables-records-missing", ["benchmarks", "tables", "--records", "{tmp}/nowhere", "--out", "{tmp}"], lambda t: None,
     "does not exist"),
    ("loss-speed-bad-batches", ["benchmarks.loss_speed", "--batches", "abc", "--records", "{records}"], lambda t: None,
     "'abc' is not batch sizes"),
]


@needs_data
@pytest.mark.parametrize(("args", "build", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], build: Callable, words: str) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps(_VALID) + "\n")
    before = records.read_bytes()
    data = build(tmp_path)
    result = _cli([a.format(tmp=tmp_path, records=records) for a in args], tmp_path, data)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert words.format(tmp=tmp_path) in lines[0], lines[0]
    assert records.read_bytes() == before


@needs_data
def test_damaged_records_are_skipped_named_and_kept(tmp_path: Path) -> None:
    """A binary line, a line that is JSON but not an object and records missing fields: tables go on, the file stays."""
    folder = tmp_path / "records"
    folder.mkdir()
    good = (REPO_ROOT / "tables" / "records" / "image.jsonl").read_bytes()
    bad = b"\xff\xfe\x00binary\n[1, 2, 3]\n" + json.dumps({"pipeline": "image", "config": {}, "metrics": {}}).encode() + b"\n"
    records = folder / "image.jsonl"
    records.write_bytes(good + bad + json.dumps({"pipeline": "graph", "metrics": {}}).encode() + b"\n")
    before = records.read_bytes()
    result = _cli(["benchmarks", "tables", "--records", str(folder), "--out", str(tmp_path)], tmp_path)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = good.count(b"\n")
    named = [int(m[1]) for w in warnings if (m := re.match(rf"warning: {re.escape(str(records))}:(\d+): skipping a record ", w))]
    assert [n for n in named if n > lines] == [lines + i for i in (1, 2, 3, 4)]  # committed lines may warn of their own
    assert records.read_bytes() == before


@needs_data
def test_a_resumed_graph_run_skips_a_record_without_config(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"pipeline": "graph", "metrics": {"accuracy": 1.0}, "seed": 0}) + "\n")
    before = records.read_bytes()
    result = _cli([*_GRAPH, "--records", str(records), "--objective", "infograph"], tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"warning: {records}:1: skipping a record (no config)" in result.stderr
    assert records.read_bytes().startswith(before) and len(records.read_text().splitlines()) == 3  # + untrained, infograph
