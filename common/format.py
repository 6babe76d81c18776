"""How every page and report writes a number: a markdown table, mean ± s.d., Δ ± s.e., a signed number.

One place for these, so that a cell reads the same on every page (``+0.40 ± 0.12*`` in the graph table and in
the leaderboard alike) and a change of convention is one edit. Pure text, no statistics: the numbers arrive
computed (``common.stats``), and this module imports nothing of the project.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Protocol

#: The cell of a number that could not be computed (no run, no value): a dash, not an empty cell, where the
#: reader should see that something is missing rather than not applicable.
MISSING = "–"


class Paired(Protocol):
    """What :func:`paired` reads from a comparison (``common.stats.PairedDelta`` is one)."""

    mean: float
    se: float | None

    @property
    def significant(self) -> bool: ...


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a GitHub markdown table: the header, its ``|---|`` rule, then one line per row.

    Cells are written with ``str`` (format numbers before, with the functions below), each between single
    spaces, so an empty string is ``|  |``; ``None`` is a cell left out, written ``| |`` (markdown renders both
    blank; pages written before this kit used either, and a regenerated page must not change by a byte). A row
    shorter or longer than the header is an error, since markdown would silently shift its cells into the
    wrong columns.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row of {len(row)} cells under a header of {len(header)}: {list(row)}")
        lines.append("|" + "|".join(" " if cell is None else f" {cell} " for cell in row) + "|")
    return lines


def number(value: float | None, digits: int = 2) -> str:
    """``value`` to ``digits`` decimals; empty for None (a cell that does not apply)."""
    return "" if value is None else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 2) -> str:
    """A difference, always with its sign, so +0.40 and -0.40 never read alike; empty for None."""
    return "" if value is None else f"{value:+.{digits}f}"


def plus_minus(centre: float, spread: float | None, digits: int = 2, sign: bool = False) -> str:
    """``centre ± spread`` (``sign``: the centre with its sign, as a difference is written); the centre
    alone when there is no spread (a single run, a single paired seed)."""
    text = f"{centre:+.{digits}f}" if sign else f"{centre:.{digits}f}"
    return text if spread is None else f"{text} ± {spread:.{digits}f}"


def mean_sd(values: Iterable[float], digits: int = 2) -> str:
    """Mean ± sample standard deviation of ``values``; the mean alone for one value, :data:`MISSING` for none.

    Non-finite values are left out: a diverged run has no score, and one NaN would make the whole cell NaN.
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return MISSING
    return plus_minus(statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else None, digits)


def delta(mean: float, se: float | None, digits: int = 2, star: bool = False) -> str:
    """A paired difference ``Δ ± s.e.`` with its sign; ``star`` appends ``*`` (significant by its own test)."""
    return plus_minus(mean, se, digits, sign=True) + ("*" if star and se is not None else "")


def paired(comparison: Paired | None, star: bool = True, digits: int = 2) -> str:
    """The cell of a paired comparison: ``+1.23 ± 0.45``, starred when significant (``star=False``: never);
    the signed mean alone below two paired seeds; empty without a comparison."""
    if comparison is None:
        return ""
    return delta(comparison.mean, comparison.se, digits, star=star and comparison.significant)
