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
