"""Run records: one JSON object per finished run, appended as one line to a JSONL file.

The tables are generated from these files alone, so a record carries everything needed
to re-run and to judge a number: command, full config, git commit, seed, hardware,
library versions, wall time and the metrics. Lines are standard JSON (a non-finite number
is ``null``, and its run says ``"diverged": true``), readable by ``jq`` or a browser.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict

from common.errors import UserError
from common.io import append_line, check_output_file, file_lock
from common.paths import REPO_ROOT
from common.protocols import PROTOCOL

Kind = type | tuple[type, ...]
#: Dotted fields a reader uses, per pipeline (``{"graph": {"metrics.accuracy": NUMBER}}``): see :func:`read_records`.
Needs = Mapping[str, Mapping[str, Kind]]
NUMBER = (int, float)
#: What every reader needs of a record, on top of a pipeline's own fields.
BASE_NEEDS: dict[str, Kind] = {"pipeline": str, "config": dict, "metrics": dict}
_MISSING = object()
_WARNED: set[tuple[Path, int]] = set()


class _RunRecordCore(TypedDict):
    """What every record holds (:data:`BASE_NEEDS`): :func:`read_records` skips a line without it."""

    pipeline: str
    config: dict[str, Any]  # every setting of the run; ``objective`` as ``Objective.to_dict()``
    metrics: dict[str, Any]  # non-finite numbers are null, and ``"diverged": true`` says so


class RunRecord(_RunRecordCore, total=False):
    """One finished run, as :func:`make_record` writes it and :func:`read_records` returns it (MTEB's TaskResult).

    A dict on disk and in memory, so every reader keeps indexing it; the type names the fields in one place.
    Only the core's fields are required: records older than some of these (``protocol``, ``hardware``) and the
    harness's bookkeeping records still read. :func:`upgrade` converts older formats. (Two classes, not
    ``NotRequired``: under ``from __future__ import annotations`` Python 3.11 counts that as required.)
    """

    command: str  # pasteable in the repository root (:func:`runnable_command`)
    seed: int
    wall_time_s: float
    git_commit: str
    hardware: dict[str, Any]
    versions: dict[str, str]
    finished_at: str  # UTC, ISO 8601
    protocol: int | None  # the pipeline's evaluation protocol version (``common.protocols``)


_LIBRARIES = ("torch", "torchvision", "torch-geometric", "scikit-learn", "numpy", "sentence-transformers")


@functools.cache
def git_commit() -> str:
    """Commit of the checkout when the process first asked (``-dirty`` if tracked code differed).

    ``HARDNEG_COMMIT``, when set, wins: a tree copied to another machine (a GPU host) may carry a stale ``.git``.

    Changes under tables/ do not count: they are the records and tables that runs write.
    """
    if os.environ.get("HARDNEG_COMMIT"):
        return os.environ["HARDNEG_COMMIT"]

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
    protocol: int | None = None,
) -> RunRecord:
    """A complete record of one finished run; ``command`` defaults to :func:`runnable_command` of this process.

    Metrics holding a NaN or infinity mark the run ``"diverged": true`` (the number itself is
    written as null): readers then tell a diverged run from a missing one. ``protocol`` is the
    version of the pipeline's evaluation protocol (default: ``common.protocols.PROTOCOL``; null for other records).
    """
    if not _finite(metrics):
        metrics = {**metrics, "diverged": True}
    return {
        "pipeline": pipeline,
        "command": command if command is not None else runnable_command(sys.argv),
        "config": config,
        "seed": seed,
        "metrics": metrics,
        "wall_time_s": round(wall_time_s, 3),
        "git_commit": git_commit(),
        "hardware": hardware(),
        "versions": versions(),
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "protocol": protocol if protocol is not None else PROTOCOL.get(pipeline),
    }


def _finite(value: Any) -> bool:
    """Whether every number inside ``value`` (dicts, lists) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    if isinstance(value, (list, tuple)):
        return all(map(_finite, value))
    return True


def _standard(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so ``json.dumps(allow_nan=False)`` accepts it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _standard(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_standard(v) for v in value]
    return value


def record_line(record: RunRecord) -> bytes:
    """One record as a line of standard JSON (NaN and infinity become null)."""
    return (json.dumps(_standard(record), sort_keys=True, allow_nan=False) + "\n").encode()


def repo_relative(arg: str, root: Path = REPO_ROOT) -> str:
    """``arg``, or ``--flag=arg``, with an absolute path inside ``root`` made relative to it."""
    if arg.startswith("-") and "=" in arg:
        flag, value = arg.split("=", 1)
        return f"{flag}={repo_relative(value, root)}"
    path = Path(arg)
    return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else arg


def runnable_command(argv: list[str], root: Path = REPO_ROOT) -> str:
    """The command a reader pastes in the repository root to re-run the process started with ``argv``.

    A script of the repository becomes ``python -m module`` (``sys.argv[0]`` is the file's
    absolute path even under ``-m``), and argument paths inside ``root`` become relative to it;
    where the run happened belongs to ``hardware``, not here.
    """
    script, *args = argv
    head = [script]
    if script.endswith(".py"):
        inside = Path(repo_relative(str(Path(script).resolve()), root))
        if not inside.is_absolute():
            parts = inside.with_suffix("").parts
            head = ["-m", ".".join(parts[:-1] if parts[-1] == "__main__" else parts)]
    # torchrun's workers see only their script's argv; its variables say how many ranks it started per node
    launcher = (["torchrun", "--nnodes", os.environ.get("GROUP_WORLD_SIZE", "1"), "--nproc_per_node",
                 os.environ["LOCAL_WORLD_SIZE"]] if "TORCHELASTIC_RUN_ID" in os.environ and "LOCAL_WORLD_SIZE" in os.environ
                else ["python"])
    return shlex.join([*launcher, *head, *(repo_relative(a, root) for a in args)])


def check_records_file(path: str | os.PathLike, flag: str) -> Path:
    """``path`` when records can be appended there (see :func:`common.io.check_output_file`) and its lock is
    free or freed within the lock timeout: checked before any work, so a bad path or a held lock is found at once."""
    path = check_output_file(path, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_lock_path(path), f"records file {path}"):
        pass
    return path


def _lock_path(path: Path) -> Path:
    """The lock beside the file ``path`` points to: every name of one records file shares one lock."""
    real = Path(os.path.realpath(path))
    return real.with_name(real.name + ".lock")


def append_record(path: str | os.PathLike, record: RunRecord, *,
                  key: Callable[[dict[str, Any]], Hashable] | None = None, needs: Mapping[str, Any] | None = None) -> bool:
    """Append one record as one line; readers never see a partial line, concurrent writers never clash.

    Earlier bytes are never rewritten (:func:`common.io.append_line`), so the cost does not grow
    with the file and symlinks, modes and open readers keep working. With ``key`` (a config ->
    its cell, as for :func:`common.resume.recorded`, which reads ``needs``), the file is read again
    under the lock and a record of a cell already there is not appended: two identical commands
    started together record each cell once. Returns whether the record was appended.
    """
    path = check_output_file(path, "records file", min_free=0)  # a full disk is told by the write, which takes nothing
    line = record_line(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_lock_path(path), f"records file {path}"):
        if key is not None:
            from common.resume import recorded

            if key(record["config"]) in recorded(path, record["pipeline"], key, needs):
                return False
        try:
            append_line(path, line)
        except OSError as err:
            raise UserError(f"cannot write records file {path} ({err.strerror}); nothing was appended: free some space "
                            "or choose another path, then run the same command again") from None
    return True


# The MiniLM fine-tune variants of ``sentence st-finetune --variant`` (before ``--objective``), as the objectives they
# ran: ``plain`` and ``st-hardness-*`` were sentence-transformers' MultipleNegativesRankingLoss (NT-Xent, and its
# ``in_batch_negatives`` hardness, the registry's ``hardness`` family), ``hard`` was HCL at tau_plus 0 (the registry's
# ``hard`` defaults to 0.1), ``debiased`` the debiased loss at tau_plus 0.1.
_FINETUNE_VARIANTS: dict[str, str] = {"plain": "ntxent", "hard": "hard:tau_plus=0,beta=1", "debiased": "debiased:tau_plus=0.1",
                                      "st-hardness-9": "hardness:alpha=9", "st-hardness-5": "hardness:alpha=5"}
#: Image run tags (``method``) of the records from before the registry: the family each names.
_IMAGE_TAGS = {"simclr": "ntxent"}


def legacy_objective(pipeline: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """The objective (``Objective.to_dict()``) that a record written before the objective registry ran, or None
    when it ran none (an untrained or shipped encoder) or its format is not one of these:

    - graph: ``method`` untrained, infograph, debiased or hard, with ``tau_plus``, ``beta`` and ``convention``: the
      JSD estimator (InfoGraph's convention field was never used);
    - image: ``method`` a tag (``simclr``, ``hard``, ``hard-beta0.5``), with ``tau_plus`` and ``beta``;
    - sentence: quick-thought rows name ``method`` (a registry name, with ``tau_plus`` and ``beta`` in some), the
      MiniLM fine-tunes their ``variant`` (``_FINETUNE_VARIANTS``).
    """
    from common.objectives import make_objective, parse_objective

    method = config.get("method")
    if pipeline == "graph" and isinstance(method, str):
        if method == "untrained":
            return None
        if method == "infograph":
            return make_objective("jsd").to_dict()
        return make_objective("jsd", tau_plus=config["tau_plus"], beta=config["beta"],
                              convention=config["convention"]).to_dict()
    if pipeline == "image" and isinstance(method, str) and method != "random-init":
        family = method.split("-")[0]
        family = _IMAGE_TAGS.get(family, family)
        known = make_objective(family).family.params
        return make_objective(family, **{k: config[k] for k in ("tau_plus", "beta") if k in known and k in config}).to_dict()
    if pipeline == "sentence" and str(config.get("row", "")).startswith("qt-") and isinstance(method, str):
        objective = parse_objective(method)
        if "tau_plus" in config:
            objective = objective.replace(tau_plus=config["tau_plus"], beta=config["beta"])
        return objective.to_dict()
    if pipeline == "sentence" and config.get("variant") in _FINETUNE_VARIANTS:
        return parse_objective(_FINETUNE_VARIANTS[config["variant"]]).to_dict()
    return None


def upgrade(record: dict[str, Any]) -> RunRecord:
    """``record`` in today's format: every format an older version wrote is converted here, and only here.

    A graph, image or sentence record from before the objective registry gets the ``objective`` it ran
    (:func:`legacy_objective`; graph and image runs without one store ``None`` for the untrained encoder); the
    rest of the record, and the file, stay as written.
    """
    pipeline, config = record.get("pipeline"), record.get("config")
    if pipeline not in ("graph", "image", "sentence") or not isinstance(config, dict) or "objective" in config:
        return record
    try:
        objective = legacy_objective(pipeline, config)
    except (KeyError, ValueError):  # not a format we wrote: left as it is, its readers decide
        return record
    if objective is None and pipeline == "sentence":
        return record
    return {**record, "config": {**config, "objective": objective}}


def _kind(kind: Kind) -> str:
    names = {str: "text", dict: "an object", list: "a list", int: "a number", float: "a number", bool: "true/false",
             type(None): "null"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def record_problem(record: Any, needs: Needs | None = None) -> str | None:
    """Why ``record`` cannot be used, or None: not an object, or a needed field missing or of the wrong type."""
    if not isinstance(record, dict):
        return f"not a JSON object but {_kind(type(record))}"
    wanted = {**BASE_NEEDS, **(needs or {}).get(record.get("pipeline"), {})}
    for field, kind in wanted.items():
        value: Any = record
        for key in field.split("."):
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return f"no {field}"
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return f"{field} is {_kind(type(value))}, not {_kind(kind)}"
    return None


def read_records(paths: str | os.PathLike | Iterable[str | os.PathLike], needs: Needs | None = None) -> list[RunRecord]:
    """All usable records in the given JSONL files or folders of them.

    A line that is not UTF-8, not JSON, not an object, or lacks what its reader needs
    (:func:`record_problem`) is skipped with one line on stderr naming file and line, and left
    in the file untouched: tables and resumed runs go on with the others.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(f for f in p.glob("*.jsonl") if f.is_file()) if p.is_dir() else [p] if p.is_file() else [])
    records = []
    for file in files:
        try:
            lines = file.read_bytes().split(b"\n")
        except OSError as err:
            raise UserError(f"cannot read records file {file}: {err.strerror}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode())
            except UnicodeDecodeError:
                problem: str | None = "not UTF-8 text"
            except json.JSONDecodeError:
                problem = "truncated or corrupt JSON"
            else:
                problem = record_problem(record, needs)
            if problem is None:
                records.append(upgrade(record))
            elif (file.resolve(), number) not in _WARNED:  # a resumed run reads its file again: warn once
                _WARNED.add((file.resolve(), number))
                print(f"warning: {file}:{number}: skipping a record ({problem}); the line is left as it is",
                      file=sys.stderr)
    return records
