"""Run records: one JSON object per finished run, appended atomically to a JSONL file.

The tables are generated from these files alone, so a record carries everything needed
to re-run and to judge a number: command, full config, git commit, seed, hardware,
library versions, wall time and the metrics.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import functools
import json
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from common.io import atomic_write_bytes
from common.paths import REPO_ROOT

_LIBRARIES = ("torch", "torchvision", "torch-geometric", "scikit-learn", "numpy", "sentence-transformers")


@functools.cache
def git_commit() -> str:
    """Commit of the checkout when the process first asked (``-dirty`` if tracked code differed).

    Changes under tables/ do not count: they are the records and tables that runs write.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)tables")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")



def hardware() -> dict[str, Any]:
    """CPU model and count, and the GPU name when one is used."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:  # Linux only; else keep platform's
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    info: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(), "gpu": None}
    import torch

    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def make_record(
    *,
    pipeline: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    seed: int,
    wall_time_s: float,
    command: str | None = None,
) -> dict[str, Any]:
    """A complete record of one finished run."""
    return {
        "pipeline": pipeline,
        "command": command if command is not None else " ".join([Path(sys.executable).name, *sys.argv]),
        "config": config,
        "seed": seed,
        "metrics": metrics,
        "wall_time_s": round(wall_time_s, 3),
        "git_commit": git_commit(),
        "hardware": hardware(),
        "versions": versions(),
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record; readers never see a partial line, concurrent writers never clash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old = old[: old.rfind(b"\n") + 1]  # drop a line a killed writer left half-written
        atomic_write_bytes(path, old + line)


def read_records(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """All records in the given JSONL files or folders of them; skips broken lines with a warning."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.jsonl")) if p.is_dir() else [p] if p.exists() else [])
    records = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{file}:{number}: skipping a truncated or corrupt record", stacklevel=2)
    return records
