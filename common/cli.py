"""Command-line conventions: bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
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
    """Run ``main`` and turn a ``UserError`` into a one-line message and exit code 2.

    The git commit is read first: a long run's records name the code it started with, not a later checkout.
    """
    from common.records import git_commit

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
    sys.exit(code or 0)


def objective_arg(text: str) -> Any:
    """argparse ``type=`` for an objective spec (``hard:tau_plus=0.1,beta=2``); the error names the valid choices."""
    from common.objectives import parse_objective

    try:
        return parse_objective(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def objectives_arg(parser: Any, *, default: tuple[str, ...], what: str) -> None:
    """The one ``--objective`` flag of every pipeline: repeatable, each value a spec (``python -m benchmarks objectives``)."""
    parser.add_argument("--objective", dest="objectives", action="append", type=objective_arg, default=None,
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
            if meta["low"] is not None and item < meta["low"]:
                raise UserError(f"{name} must be >= {meta['low']:g}, got {item}")
            if meta["above"] is not None and not item > meta["above"]:
                raise UserError(f"{name} must be > {meta['above']:g}, got {item}")
            if meta["high"] is not None and item > meta["high"]:
                raise UserError(f"{name} must be <= {meta['high']:g}, got {item}")
    return config


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """``path`` when a file can be written there: not a folder, its nearest existing parent a writable folder.

    Checked before a run starts, so hours of work never end in an ``IsADirectoryError``.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file path such as {path / 'records.jsonl'}")
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
    return path


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
