"""Command-line conventions: bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn


class UserError(Exception):
    """An error the user can fix (bad argument, missing data, corrupt file): no traceback."""


class Parser(argparse.ArgumentParser):
    """Every CLI's parser: a bad argument is a ``UserError`` too, one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


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
