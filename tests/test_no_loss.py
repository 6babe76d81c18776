"""Nothing lost, nothing half-done (issue 36): records are appended, never rewritten; every I/O fault is one line.

Each fault is built in a temporary folder and the real command line runs as a subprocess: a
run either records its cells and leaves every earlier byte (and mode, and symlink) as it was,
or ends in exit code 2 with one line naming the path, with no traceback and nothing written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import UserError
from common.paths import REPO_ROOT, data_dir
from common.records import append_record, make_record, read_records

STAGED = data_dir()
needs_mutag = pytest.mark.skipif(not (STAGED / "tu" / "MUTAG").is_dir(), reason="staged MUTAG not found (DATA_DIR)")
_RECORD = {"pipeline": "note", "config": {"note": "a finished run that must survive"}, "metrics": {}, "seed": 0}
_GRAPH = ["graph", "--dataset", "MUTAG", "--epochs", "1", "--repeats", "1", "--threads", "1", "--no-progress",
          "--no-download", "--objective", "ntxent"]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HARDNEG_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "DATA_DIR": str(STAGED), "HOME": str(tmp), **extra}


def _cli(args: list[str], tmp: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=_env(tmp, **env), capture_output=True,
                          text=True, timeout=timeout)


def _error_line(result: subprocess.CompletedProcess) -> str:
    """The one stderr line of a refused run (exit code 2, no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def _strict(line: bytes) -> dict:
    """A record line parsed as standard JSON: NaN and Infinity are refused, as jq and browsers refuse them."""
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def _method(line: bytes) -> str:
    """The objective of a graph record line (the untrained encoder has none)."""
    return (_strict(line)["config"]["objective"] or {"name": "untrained"})["name"]


@needs_mutag
@pytest.mark.parametrize("layout", ["symlink-unterminated-0640-ascii", "cr-only"])
def test_a_run_appends_and_keeps_every_earlier_byte(tmp_path: Path, layout: str) -> None:
    """Symlinked records file, a last record without its newline, mode 0640 and an ASCII-only stdout; a CR-only file."""
    target = tmp_path / "kept" / "records.jsonl"
    target.parent.mkdir()
    if layout == "cr-only":
        before = b"old notes\rwritten on a classic Mac\r"
        target.write_bytes(before)
        out, env = target, {}
    else:
        before = (json.dumps(_RECORD) + "\n" + json.dumps({**_RECORD, "seed": 1})).encode()
        target.write_bytes(before)
        target.chmod(0o640)
        out = tmp_path / "records.jsonl"
        out.symlink_to(target)
        env = {"PYTHONIOENCODING": "ascii", "LANG": "C"}
    result = _cli([*_GRAPH, "--records", str(out)], tmp_path, **env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    data = target.read_bytes()
    assert data.startswith(before + b"\n")
    new = data[len(before) + 1 :].splitlines()
    assert [_method(line) for line in new] == ["untrained", "ntxent"]
    if layout == "cr-only":
        return
    assert out.is_symlink() and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [r["seed"] for r in read_records(target)][:2] == [0, 1]
    assert "\\xb1" in result.stdout  # the table's ± printed as an escape, not a UnicodeEncodeError


@needs_mutag
def test_a_held_lock_ends_in_one_named_line_within_the_timeout(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps(_RECORD) + "\n")
    before = records.read_bytes()
    lock = tmp_path / "records.jsonl.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                               "f.write('pid holder: a long run\\n'); f.flush(); fcntl.flock(f, fcntl.LOCK_EX); "
                               "print('locked', flush=True); time.sleep(120)", str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = _cli([*_GRAPH, "--records", str(records)], tmp_path, timeout=120, HARDNEG_LOCK_TIMEOUT="1")
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    waiting, error = result.stderr.strip().splitlines()
    assert result.returncode == 2 and elapsed < 60, result.stderr
    assert waiting == f"waiting up to 1 s for lock {lock} on records file {records} (held by pid holder: a long run)"
    assert error.startswith(f"error: lock {lock} is still held after 1 s"), error
    assert records.read_bytes() == before


@needs_mutag
def test_two_identical_runs_at_once_record_each_cell_once(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    env = _env(tmp_path)
    runs = [subprocess.Popen([sys.executable, "-m", *_GRAPH, "--records", str(records)], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0 and "Traceback" not in err, err[-3000:]
    methods = [_method(line) for line in records.read_bytes().splitlines()]
    assert sorted(methods) == ["ntxent", "untrained"]


@needs_mutag
@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "lock-folder"])
def test_a_records_file_that_is_no_file_is_refused_before_work(tmp_path: Path, kind: str) -> None:
    records = tmp_path / "records.jsonl"
    if kind == "fifo":
        os.mkfifo(records)
    elif kind == "device":
        records = Path("/dev/null")
    elif kind == "folder":
        records.mkdir()
    else:
        (tmp_path / "records.jsonl.lock").mkdir()
    line = _error_line(_cli([*_GRAPH, "--records", str(records)], tmp_path, timeout=120))
    named = tmp_path / "records.jsonl.lock" if kind == "lock-folder" else records
    assert f"{named} is" in line, line
    assert not (tmp_path / "cache" / "tu").exists()  # refused before any data loaded


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``folder`` (skips the test where this machine does not allow mounting)."""
    folder.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the full-disk cases need one")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()


@needs_mutag
@pytest.mark.parametrize("where", ["records", "cache", "image-out-dir", "sentence-out"])
def test_a_full_disk_is_one_line_before_training(tmp_path: Path, where: str) -> None:
    with _tmpfs(tmp_path / "full", "1m") as full:
        _fill(full)
        records = tmp_path / "records.jsonl"
        args = {"records": [*_GRAPH, "--records", str(full / "records.jsonl")],
                "cache": [*_GRAPH, "--records", str(records)],
                "image-out-dir": ["image", "pretrain", "--epochs", "1", "--out-dir", str(full / "runs")],
                "sentence-out": ["sentence", "train", "--out", str(full / "qt.pt")]}[where]
        env = {"HARDNEG_CACHE": str(full / "cache")} if where == "cache" else {}
        line = _error_line(_cli(args, tmp_path, timeout=120, **env))
        assert "bytes free" in line and str(full) in line, line
        assert [p.name for p in full.rglob("*") if p.is_file()] == ["filler"]


def test_an_append_that_does_not_fit_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "64k") as small:
        path = small / "records.jsonl"
        path.write_text(json.dumps(_RECORD) + "\n" + "x" * 8000 + "\n")
        before = path.read_bytes()
        with pytest.raises(UserError, match=f"cannot write records file {path}.*nothing was appended"):
            append_record(path, {**_RECORD, "config": {"big": "y" * 200_000}})
        assert path.read_bytes() == before


def test_appending_to_a_20_mb_file_costs_what_appending_to_an_empty_one_does(tmp_path: Path) -> None:
    line = json.dumps({**_RECORD, "config": {"pad": "p" * 2000}}) + "\n"
    big, empty = tmp_path / "big.jsonl", tmp_path / "empty.jsonl"
    big.write_text(line * (20_000_000 // len(line)))
    empty.touch()

    def seconds(path: Path) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            append_record(path, _RECORD)
            times.append(time.perf_counter() - started)
        return min(times)

    seconds(empty)  # warm imports and the page cache
    assert big.stat().st_size > 19_000_000
    assert seconds(big) < 3 * seconds(empty) + 0.005


def test_records_are_standard_json_and_a_non_finite_run_says_it_diverged(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    record = make_record(pipeline="image", config={}, metrics={"knn_top1": float("nan"), "loss": [1.0, float("inf")]},
                         seed=0, wall_time_s=1.0, protocol=2)
    append_record(path, record)
    append_record(path, make_record(pipeline="image", config={}, metrics={"knn_top1": 50.0}, seed=1, wall_time_s=1.0))
    first, second = map(_strict, path.read_bytes().splitlines())
    assert first["metrics"] == {"knn_top1": None, "loss": [1.0, None], "diverged": True} and first["protocol"] == 2
    assert second["metrics"] == {"knn_top1": 50.0} and second["protocol"] == 1  # the pipeline's current version


def test_a_cell_already_in_the_file_is_not_appended_again(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    cell = {**_RECORD, "config": {"cell": "a"}}
    assert append_record(path, cell, key=lambda config: config["cell"])
    assert not append_record(path, {**cell, "seed": 9}, key=lambda config: config["cell"])
    assert append_record(path, {**_RECORD, "config": {"cell": "b"}}, key=lambda config: config["cell"])
    assert [r["config"]["cell"] for r in read_records(path)] == ["a", "b"]


@pytest.mark.skipif(not (REPO_ROOT / "tables" / "records" / "image.jsonl").is_file(), reason="no committed image records")
def test_tables_are_written_as_a_set_where_asked_and_never_over_the_committed_ones(tmp_path: Path) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    shutil.copyfile(REPO_ROOT / "tables" / "records" / "image.jsonl", folder / "image.jsonl")
    committed = {p: p.read_bytes() for p in (REPO_ROOT / "tables").glob("*.md")}
    line = _error_line(_cli(["benchmarks", "tables", "--records", str(folder)], tmp_path))
    assert "not the committed tables/records" in line and "--out" in line, line
    assert {p: p.read_bytes() for p in (REPO_ROOT / "tables").glob("*.md")} == committed

    readme = tmp_path / "README.md"
    readme.write_text("<!-- leaderboard: generated by `make tables` -->\nmine\n<!-- /leaderboard -->\n")
    before = readme.read_bytes()
    result = _cli(["benchmarks", "tables", "--records", str(folder), "--out", str(tmp_path / "tables")], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert readme.read_bytes() == before
    written = sorted(p.name for p in (tmp_path / "tables").iterdir())
    assert "image.md" in written and not [name for name in written if name.startswith(".")]


@pytest.mark.skipif(not (REPO_ROOT / "tables" / "records" / "image.jsonl").is_file(), reason="no committed image records")
def test_the_repository_readme_gets_its_leaderboard_section_with_the_set(tmp_path: Path) -> None:
    """What `make tables` does to tables/ and README.md, done in a copy: the README is moved in with the pages."""
    from benchmarks.tables import NEEDS, write_pages

    readme = tmp_path / "README.md"
    readme.write_text("# a project\n<!-- leaderboard: generated by `make tables` -->\nstale\n<!-- /leaderboard -->\ntail\n")
    records = read_records(REPO_ROOT / "tables" / "records" / "image.jsonl", NEEDS)
    written = write_pages(records, tmp_path / "tables", readme)
    text = readme.read_text()
    assert "stale" not in text and text.startswith("# a project\n") and text.endswith("<!-- /leaderboard -->\ntail\n")
    assert tmp_path / "tables" / "leaderboard.md" in written and sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "tables"]


def _damage(path: Path, how: str) -> None:
    """A cache file cut short (a kill or full disk mid-write) or replaced by random bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if how == "truncated" else os.urandom(len(data)))


@pytest.mark.parametrize("how", ["truncated", "random"])
def test_a_damaged_graph_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from graph.data import load_tu
    from tests.graph.conftest import write_toy_tu

    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    root = write_toy_tu(tmp_path / "data")
    first = load_tu("TOY", root, download=False)
    _damage(tmp_path / "cache" / "tu" / "TOY" / "processed" / "data.pt", how)
    again = load_tu("TOY", root, download=False)
    assert again.labels.tolist() == first.labels.tolist() and again.num_features == first.num_features


@pytest.mark.parametrize("how", ["truncated", "random"])
def test_a_damaged_corpus_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    import numpy as np

    from sentence.config import CorpusConfig
    from sentence.corpus import load_corpus
    from tests.sentence.conftest import use_tiny_books

    use_tiny_books(tmp_path, monkeypatch)
    first = load_corpus(CorpusConfig(vocab_size=100, val_books=1), verbose=False)
    (cached,) = (tmp_path / "cache" / "sentence").glob("corpus-*.npz")
    _damage(cached, how)
    np.testing.assert_array_equal(load_corpus(CorpusConfig(vocab_size=100, val_books=1), verbose=False).tokens, first.tokens)


@pytest.mark.parametrize("how", ["truncated", "random", "foreign"])
def test_a_damaged_embedding_cache_is_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    import numpy as np

    from sentence.senteval import encode

    class Lengths:
        identity = "lengths:v1"

        def __call__(self, sentences: list[str]) -> np.ndarray:
            return np.array([[len(s), 1.0] for s in sentences], dtype=np.float32)

    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    sentences = ["a b c", "d", "e f", "a b c"]
    first = encode(Lengths(), sentences, batch_size=2)
    (cached,) = (tmp_path / "cache" / "sentence" / "embeddings").glob("*.npy")
    if how == "foreign":
        np.save(cached, np.zeros((2, 7), dtype=np.float32))
    else:
        _damage(cached, how)
    np.testing.assert_array_equal(encode(Lengths(), sentences, batch_size=2), first)


@pytest.mark.parametrize("how", ["truncated", "random"])
def test_a_damaged_cifar_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    import io
    import zipfile

    from PIL import Image

    from image.data import JPEG_ZIP, load_dataset

    zip_path = tmp_path / "data" / JPEG_ZIP
    zip_path.parent.mkdir(parents=True)
    with zipfile.ZipFile(zip_path, "w") as archive:
        for split in ("train", "test"):
            for shade, label in ((20, "cat"), (220, "dog")):
                buffer = io.BytesIO()
                Image.new("RGB", (32, 32), (shade, shade, shade)).save(buffer, "JPEG")
                archive.writestr(f"{split}/{label}/0001.jpg", buffer.getvalue())
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    first = load_dataset("cifar10-jpeg")
    (cached,) = (tmp_path / "cache").glob("cifar10_jpeg-*.npz")
    _damage(cached, how)
    again = load_dataset("cifar10-jpeg")
    assert again.train_images.equal(first.train_images) and again.test_labels.equal(first.test_labels)


def test_a_binary_file_among_the_books_is_skipped_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from sentence.config import CorpusConfig
    from sentence.corpus import load_corpus
    from tests.sentence.conftest import use_tiny_books

    books = use_tiny_books(tmp_path, monkeypatch) / "books" / "gutenberg"
    (books / "pg9__cover.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(200))
    corpus = load_corpus(CorpusConfig(vocab_size=100, val_books=1), verbose=False)
    assert "pg9__cover" not in corpus.book_names and len(corpus.book_names) == 4
    assert capsys.readouterr().err == f"warning: {books / 'pg9__cover.txt'} is not plain text (NUL bytes); skipping it\n"


def test_a_cache_or_checkpoint_that_does_not_fit_names_its_path_and_leaves_the_old_file(tmp_path: Path) -> None:
    import errno

    from common.cli import os_error_text
    from common.io import atomic_write_bytes

    with _tmpfs(tmp_path / "small", "64k") as small:
        path = small / "checkpoint.pt"
        path.write_bytes(b"the previous epoch")
        with pytest.raises(OSError) as caught:
            atomic_write_bytes(path, b"w" * 200_000)
        assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
        assert os_error_text(caught.value).startswith(f"{path}: No space left on device; free some space")
        assert path.read_bytes() == b"the previous epoch" and [p.name for p in small.iterdir()] == ["checkpoint.pt"]
