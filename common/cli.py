"""Command-line conventions: bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn


class UserError(Exception):
    """An error the user can fix (bad argument, missing data, corrupt file): no traceback."""


class Parser(argparse.ArgumentParser):
    """Every CLI's parser: a bad argument is a ``UserError`` too, one line on stderr and exit code 2.

    Every float it parses must be finite: NaN compares false with every bound, so a plain
    range check lets it through to fail deep inside an optimiser.
    """

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> tuple[Any, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        for name, value in vars(parsed).items():
            for item in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(item, float) and not math.isfinite(item):
                    self.error(f"--{name.replace('_', '-')} must be a finite number, got {item}")
        return parsed, rest


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run ``main``; every error a user can act on is one line on stderr and exit code 2, never a traceback.

    That is a ``UserError``, and any ``OSError`` (full disk, unwritable or vanished path: the
    message names the path) or ``UnicodeEncodeError``. Text the terminal cannot show (``±``
    under ``LANG=C``) is printed with backslash escapes rather than failing after the work is
    done. The git commit is read first: a long run's records name the code it started with,
    not a later checkout.
    """
    from common.records import git_commit

    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    git_commit()
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: finished results are saved; run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`| head`): no traceback, and none again at exit's flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as err:
        print(f"error: {os_error_text(err)}", file=sys.stderr)
        sys.exit(2)
    except UnicodeEncodeError as err:
        print(f"error: cannot write {err.object[err.start:err.end]!r} as {err.encoding}; set PYTHONIOENCODING=utf-8 "
              "or use file names in that encoding", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)


def os_error_text(err: OSError) -> str:
    """One line for an ``OSError``: the path(s) it names, the reason and what to do."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or str(err) or type(err).__name__
    hint = ("free some space there or choose another path" if err.errno in (errno.ENOSPC, errno.EDQUOT)
            else "choose a path you can write to" if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
            else "check the path")
    return f"{paths or 'a file operation'}: {reason}; {hint}"


#: Seeds are bounded where NumPy's are (``np.random.seed`` takes 0 .. 2**32 - 1).
MAX_SEED = 2**32 - 1


def seed_arg(text: str) -> int:
    """argparse ``type=`` for a seed: a whole number in [0, 2**32 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must lie in [0, {MAX_SEED}], got {value}")
    return value


seed_arg.__name__ = "seed"


def check_seeds(first: int, count: int, flag: str = "--seed") -> None:
    """``UserError`` unless seeds ``first`` .. ``first + count - 1`` all lie in [0, 2**32 - 1] (checked before any run)."""
    if not 0 <= first <= first + count - 1 <= MAX_SEED:
        raise UserError(f"{flag} {first} with {count} repeats uses seeds up to {first + count - 1}, past {MAX_SEED}; "
                        f"use {flag} {max(0, MAX_SEED - count + 1)} or lower")


def objective_arg(text: str) -> Any:
    """argparse ``type=`` for an objective spec (``hard:tau_plus=0.1,beta=2``); the error names the valid choices."""
    from common.objectives import parse_objective

    try:
        return parse_objective(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def contrastive_objective_arg(text: str) -> Any:
    """:func:`objective_arg` for pipelines without graphs: a graph-only (local-global) family is refused at parse time."""
    from common.objectives import REGISTRY

    objective = objective_arg(text)
    if objective.family.local_global:
        usable = ", ".join(name for name, family in REGISTRY.items() if not family.local_global)
        raise argparse.ArgumentTypeError(f"{text.partition(':')[0].strip()} is graph-only (a local-global estimator for `python -m "
                                         f"graph`); here use one of {usable}")
    return objective


contrastive_objective_arg.__name__ = "objective"


def objectives_arg(parser: Any, *, default: tuple[str, ...], what: str, graph: bool = False) -> None:
    """The one ``--objective`` flag of every pipeline: repeatable, each value a spec (``python -m benchmarks objectives``).

    Graph-only families are accepted only with ``graph``.
    """
    parser.add_argument("--objective", dest="objectives", action="append",
                        type=objective_arg if graph else contrastive_objective_arg, default=None,
                        metavar="SPEC", help=f"{what}: NAME or NAME:key=value,... (repeatable; `python -m benchmarks "
                        f"objectives` lists them with their parameters; default: {' '.join(default)})")


def at_least(low: int) -> Callable[[str], int]:
    """argparse ``type=`` for a whole number >= ``low`` (counts, threads, seconds): the error names the bound."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"whole number >= {low}"  # argparse names the type in its message
    return parse


def comma_list(element: Callable[[str], Any], what: str) -> Callable[[str], list[Any]]:
    """argparse ``type=`` for ``a,b,c``: every element converted by ``element``; the error names the bad one."""

    def parse(text: str) -> list[Any]:
        values = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                values.append(element(item))
            except (ValueError, argparse.ArgumentTypeError) as err:
                raise argparse.ArgumentTypeError(f"{item!r} is not {what} ({err})") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        return values

    return parse


def option(default: Any, help: str, *, low: float | None = None, above: float | None = None,
           high: float | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A config dataclass field that is also a command-line flag: its help and valid range live beside the default.

    ``low``/``high`` are inclusive bounds, ``above`` an exclusive lower bound; every float must be finite.
    """
    from dataclasses import field

    return field(default=default, metadata={"help": help, "low": low, "above": above, "high": high, "choices": choices})


def _flag_fields(cls: type) -> list[Any]:
    import dataclasses

    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def add_config_flags(parser: Any, cls: type, profiles: dict[str, Any], title: str = "settings") -> None:
    """One ``--flag`` per :func:`option` field of ``cls``, unset by default (the profile's value is kept).

    The help shows each profile's value and the valid range, so ``--help`` documents every default.
    """
    group = parser.add_argument_group(f"{title} (default: the --profile's value, shown as "
                                      f"{' / '.join(profiles)})")
    for f in _flag_fields(cls):
        values = [getattr(p, f.name) for p in profiles.values()]
        shown = " / ".join(",".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in values)
        meta = f.metadata
        bounds = [f">= {meta['low']:g}" if meta["low"] is not None else "", f"> {meta['above']:g}" if meta["above"] is not None else "",
                  f"<= {meta['high']:g}" if meta["high"] is not None else ""]
        text = f"{meta['help']} [{shown}]" + (f" ({', '.join(b for b in bounds if b)})" if any(bounds) else "")
        flag = "--" + f.name.replace("_", "-")
        if isinstance(values[0], bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif isinstance(values[0], tuple):
            element = type(values[0][0]) if values[0] else float
            group.add_argument(flag, type=comma_list(element, f"{element.__name__} values"), default=None, help=text)
        else:
            group.add_argument(flag, type=type(values[0]), default=None, choices=meta["choices"], help=text)


def config_from_args(args: Any, base: Any) -> Any:
    """``base`` with the flags that were given, validated by :func:`check_config`."""
    import dataclasses

    given = {f.name: getattr(args, f.name) for f in _flag_fields(type(base)) if getattr(args, f.name, None) is not None}
    given = {k: tuple(v) if isinstance(getattr(base, k), tuple) else v for k, v in given.items()}
    return check_config(dataclasses.replace(base, **given))


def config_from_dict(cls: type, values: object, source: str, *, ignore: tuple[str, ...] = ()) -> Any:
    """The ``cls`` a file stored as a dict (a checkpoint's settings), checked like flags: a ``UserError`` naming
    ``source`` for a non-dict, an unknown key or a value of the wrong type, never a ``TypeError`` later."""
    import dataclasses

    if not isinstance(values, dict):
        raise UserError(f"{source} stores its settings as {type(values).__name__}, not a dict; it is not a hardneg file")
    values = {k: v for k, v in values.items() if k not in ignore}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(values) - set(fields)))
    if unknown:
        raise UserError(f"{source} stores unknown settings ({', '.join(unknown)}); it was written by another program or version")
    for name, value in values.items():
        kind = type(fields[name].default)
        if type(value) is not kind and not (kind is float and type(value) is int) and not (kind is tuple and type(value) is list):
            raise UserError(f"{source} stores {name}={value!r}, expected {kind.__name__}; it was written by another "
                            "program or version")
    return check_config(cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}))


def check_config(config: Any) -> Any:
    """``UserError`` naming the first :func:`option` field outside its range (floats must be finite)."""
    import math

    for f in _flag_fields(type(config)):
        meta, value = f.metadata, getattr(config, f.name)
        name = "--" + f.name.replace("_", "-")
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, (bool, str)):
                if meta["choices"] and item not in meta["choices"]:
                    raise UserError(f"{name} must be one of {', '.join(meta['choices'])}, got {item!r}")
                continue
            if isinstance(item, float) and not math.isfinite(item):
                raise UserError(f"{name} must be a finite number, got {item}")
            if f.name == "seed" and not 0 <= item <= MAX_SEED:
                raise UserError(f"{name} must lie in [0, {MAX_SEED}], got {item}")
            if meta["low"] is not None and item < meta["low"]:
                raise UserError(f"{name} must be >= {meta['low']:g}, got {item}")
            if meta["above"] is not None and not item > meta["above"]:
                raise UserError(f"{name} must be > {meta['above']:g}, got {item}")
            if meta["high"] is not None and item > meta["high"]:
                raise UserError(f"{name} must be <= {meta['high']:g}, got {item}")
    return config


#: Free bytes a run needs where it writes, checked before it starts (a record is a few kB, a cache or checkpoint more).
MIN_FREE_BYTES = 1 << 20


def check_output_file(path: str | os.PathLike, flag: str, example: str = "records.jsonl", *,
                      min_free: int = MIN_FREE_BYTES) -> Path:
    """``path`` when a file can be written there: a regular file or none yet, its nearest existing
    parent a writable folder with ``min_free`` bytes free; ``example`` names a file the hint for a folder suggests.

    Checked before a run starts, so hours of work never end in an ``IsADirectoryError``, a
    full disk, or a write that blocks forever on a FIFO.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file path such as {path / example}")
    if path.exists() and not path.is_file():
        raise UserError(f"{flag} {path} is not a regular file (a FIFO, socket or device); give a file path")
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path} is not writable; choose a path you can write to")
    if path.parent.is_dir():  # some folders (/proc, full or read-only mounts) pass the access test and refuse files
        try:
            tempfile.TemporaryFile(dir=path.parent).close()
        except OSError as err:
            raise UserError(f"{flag} {path}: cannot create files there ({err.strerror}); choose another path") from None
    _check_free_space(parent, f"{flag} {path}", min_free)
    return path


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``path`` when files can be written into it: a folder (created here) with free space, checked before a run starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise UserError(f"{flag} {path}: cannot create files there ({err.strerror}); choose another folder") from None
    _check_free_space(path, f"{flag} {path}", MIN_FREE_BYTES)
    return path


def _check_free_space(folder: Path, what: str, min_free: int) -> None:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return  # nothing to measure (some virtual file systems): the write itself will tell
    free = stat.f_bavail * stat.f_frsize
    if stat.f_blocks and free < min_free:
        raise UserError(f"{what}: its file system has only {free} bytes free; free some space or choose another path")


def check_device(name: str) -> str:
    """``name`` when torch can run on it here: ``cpu``, ``cuda``, ``cuda:N`` for an existing N, or ``mps``."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {name}: only {count} CUDA device(s) here (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name}: {device.type} is not supported; use cpu, cuda or cuda:N")
    return name
