"""Command-line conventions: bad input is one line on stderr and exit code 2.

Only the entry points (``*/__main__.py`` and the benchmark scripts) import this module; the rest of
the code raises :class:`common.errors.UserError` and declares its settings with :mod:`common.settings`.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from common.errors import UserError
from common.records import git_commit
from common.settings import MAX_SEED, comma_list


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


def eval_points(unit: str) -> Callable[[str], tuple[int, ...]]:
    """argparse ``type=`` of every ``--eval-at``: comma-separated whole numbers >= 1 (epochs or steps), sorted and
    each once, so the same points given in another order are the same run."""
    numbers = comma_list(at_least(1), unit)

    def parse(text: str) -> tuple[int, ...]:
        return tuple(sorted(set(numbers(text))))

    parse.__name__ = unit
    return parse


def progress_flag(parser: Any) -> None:
    """The one ``--no-progress`` flag; bars are also hidden whenever stderr is not a terminal (:func:`show_progress`)."""
    parser.add_argument("--no-progress", action="store_true",
                        help="hide progress bars (hidden anyway when stderr is not a terminal, e.g. in a log file)")


def show_progress(args: argparse.Namespace) -> bool:
    """Bars only on a terminal: a background run's log gets its lines, not thousands of bar redraws."""
    return not args.no_progress and sys.stderr.isatty()


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
