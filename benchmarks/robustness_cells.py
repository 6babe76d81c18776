"""Issue 40 wired to the records: the arms stage 1 selected (a rule in code), the pipeline commands that run the
declared design (:func:`benchmarks.robustness.declared_cells`), and the recorded curve points keyed as
:func:`benchmarks.robustness.analyse` reads them. A column whose stage 1 is not complete has no strongest families
yet; its HCL cells, which the design fixes whatever stage 1 selects, and its tuned NT-Xent's, once selected
(:func:`benchmarks.robustness.fixed_cells`), run meanwhile.

A cell that is a stage-1 cell too is not run twice: its flags spell the profile's own values (batch, learning rate,
length), so the pipeline's resume key (which the harness checks before starting it) finds the stage-1 run and
counts it as done. That holds for the image run at batch 128 and 8 epochs. The length runs at the profile's batch
that are the profile's own run (graphs: 200 epochs; sentences: 800 steps) add ``--eval-at``: every pipeline counts
a run scored along the way as a run of its own (its key holds the scored points), so it runs beside the stage-1 run
and records the intermediate points.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from benchmarks.robustness import (
    COLUMNS,
    FAMILIES_PER_COLUMN,
    LENGTH_UNITS,
    SEEDS,
    Cell,
    Column,
    ScoreKey,
    analyse,
    column_name,
    declared_cells,
    fixed_cells,
    run_length,
)
from benchmarks.stage1 import UNTRAINED_KEY, Key, Selection, collect, key_of, selections, table
from benchmarks.suites import BASELINE, STAGE1_SEEDS, Config, SuiteCell, profile_temperature
from common.protocols import PROTOCOL
from common.stats import CurveScore, Score

SUITE = "robustness"


def strongest(chosen: Sequence[Selection], by_key: Mapping[Key, Mapping[int, float]],
              seeds: Sequence[int]) -> tuple[Config, tuple[Config, ...]] | str:
    """A column's arms from its stage-1 selections: the selected NT-Xent, and the selected other families with the
    largest mean Δ against it over the stage-1 ``seeds`` (ties: by family name), ``FAMILIES_PER_COLUMN`` of them.

    Every family must be selected first, since one still waiting could be among the strongest; until then the
    reason comes back instead of the arms. ``by_key`` is :func:`benchmarks.stage1.table` of the column.
    """
    waiting = [s.family for s in chosen if s.config is None]
    if waiting:
        return (f"stage 1 has selected {len(chosen) - len(waiting)} of {len(chosen)} families "
                f"(waiting: {', '.join(waiting)})")
    base = next(s.config for s in chosen if s.family == BASELINE)
    base_scores = by_key[key_of(base)]

    def mean_delta(config: Config) -> float:
        scores = by_key[key_of(config)]
        return statistics.fmean(scores[s] - base_scores[s] for s in seeds)

    others = sorted((s.config for s in chosen if s.family != BASELINE), key=lambda c: (-mean_delta(c), c.family))
    return base, tuple(others[:FAMILIES_PER_COLUMN])


class Plan(NamedTuple):
    """Stage 1's arms per column, the columns still waiting (with why), the untrained encoder's stage-1 scores (the
    page's floor), and the tuned NT-Xent of each waiting column whose NT-Xent stage 1 has already selected."""

    baseline: dict[Column, Config]
    families: dict[Column, tuple[Config, ...]]
    waiting: dict[Column, str]
    untrained: dict[Column, dict[int, float]]
    early_baseline: dict[Column, Config]


def plan(scores: list[Score]) -> Plan:
    """:func:`strongest` in every robustness column, from stage 1's scores."""
    out = Plan({}, {}, {}, {}, {})
    for column in COLUMNS:
        modality, dataset = column
        by_key = table(scores, modality, dataset)
        seeds = STAGE1_SEEDS[modality]
        out.untrained[column] = {s: v for s, v in by_key.get(UNTRAINED_KEY, {}).items() if s in seeds}
        chosen = selections(scores, modality, dataset)
        arms = strongest(chosen, by_key, seeds)
        if isinstance(arms, str):
            out.waiting[column] = arms
            if (base := next(s.config for s in chosen if s.family == BASELINE)) is not None:
                out.early_baseline[column] = base
        else:
            out.baseline[column], out.families[column] = arms
    return out


def waiting_line(waiting: Mapping[Column, str]) -> str:
    """One line: which columns wait for stage 1, and why."""
    return (f"{SUITE}: {len(waiting)} of {len(COLUMNS)} columns wait for stage 1, so only their HCL cells (fixed by "
            "the design) and their tuned NT-Xent's (once selected) are declared: "
            + "; ".join(f"{column_name(*c)}: {why}" for c, why in waiting.items()))


def exact_float(value: float) -> str:
    """A float as a command line gets it: the shortest text that reads back as the very same float."""
    return repr(float(value))


def suite_cells(cells: Sequence[Cell]) -> list[SuiteCell]:
    """The pipeline commands of the declared cells: one per seed for images and sentences; graphs run every stage-1
    seed in one process (the paper profile's repeats, repeat r at seed r), as the leaderboard's stage 1 does."""
    out = []
    for cell in cells:
        modality = cell.modality
        key = "/".join([SUITE, modality, *([cell.dataset] if cell.dataset else []),
                        f"{cell.spec}@t={cell.temperature:g}", f"batch={cell.batch}"])
        if cell.length != run_length(modality, cell.batch):
            key += f"/{LENGTH_UNITS[modality]}={cell.length}"
        temperature = (() if cell.temperature == profile_temperature(modality)
                       else ("--temperature", exact_float(cell.temperature)))
        along = ("--eval-at", ",".join(map(str, cell.scored_at[:-1]))) if len(cell.scored_at) > 1 else ()
        train = ("--objective", cell.spec, *temperature, "--batch-size", str(cell.batch), "--lr", exact_float(cell.lr),
                 "--steps" if modality == "sentence" else "--epochs", str(cell.length), *along)
        if modality == "graph":
            if cell.seeds != STAGE1_SEEDS["graph"]:
                raise ValueError(f"graph cells run the stage-1 repeats {STAGE1_SEEDS['graph']}, got {cell.seeds}")
            out.append(SuiteCell(SUITE, key, ("graph", "--dataset", str(cell.dataset), "--profile", "paper", *train,
                                              "--records", "{records}", "--no-progress")))
            continue
        for seed in cell.seeds:
            head = {"image": ("image", "run", "--profile", "quick", "--seed", str(seed)),
                    "sentence": ("sentence", "run", "--profile", "quick", "--seed", str(seed), "--no-minilm",
                                 "--no-random")}[modality]
            tail = ("--records", "{records}", *(("--no-progress",) if modality == "sentence" else ()))
            out.append(SuiteCell(SUITE, f"{key}/seed={seed}", (*head, *train, *tail)))
    return out


@functools.cache
def committed_plan() -> Plan:
    """:func:`plan` of the committed records (what the suite runs from, like the leaderboard's follow-ups)."""
    from benchmarks.stage1 import committed_scores

    return plan(list(committed_scores()))


def robustness_suite(profile: str) -> list[SuiteCell]:
    """The suite's cells from the committed records' stage 1 (:func:`cells_of`; each modality at its own protocol,
    whatever ``profile`` says)."""
    return cells_of(committed_plan())


def cells_of(chosen: Plan) -> list[SuiteCell]:
    """Issue 40's cells in the columns stage 1 has selected, and the fixed cells of those still waiting."""
    return suite_cells([*declared_cells(chosen.baseline, chosen.families),
                        *fixed_cells({c: chosen.early_baseline.get(c) for c in chosen.waiting})])


def points_from(curves: Sequence[CurveScore]) -> dict[ScoreKey, float]:
    """The curve points keyed as :func:`benchmarks.robustness.analyse` reads them: current protocol only, the
    last record of a point wins (as :func:`benchmarks.stage1.table`), a one-column modality's data set as None.
    The untrained encoder has no curve: its floor comes from stage 1."""
    out: dict[ScoreKey, float] = {}
    for c in curves:
        if c.spec and c.temperature is not None and c.modality in SEEDS and c.protocol == PROTOCOL[c.modality]:
            dataset = c.dataset if c.modality == "graph" else None
            out[(c.modality, dataset, c.spec, c.temperature, c.batch, c.length, c.at, c.seed)] = c.value
    return out


def points(records: list[dict]) -> dict[ScoreKey, float]:
    """Every pipeline's recorded curve points (:func:`points_from` of their ``curve_scores``)."""
    from graph.report import curve_scores as graph_curves
    from image.report import curve_scores as image_curves
    from sentence.report import curve_scores as sentence_curves

    return points_from([*image_curves(records), *sentence_curves(records), *graph_curves(records)])


def result(records: list[dict], scores: Mapping[ScoreKey, float]) -> dict:
    """``tables/robustness.json``: :func:`benchmarks.robustness.analyse` of the declared cells on ``scores``, with
    the arms from the records' stage 1 and the columns still waiting for it."""
    chosen = plan(collect(records))
    cells = declared_cells(chosen.baseline, chosen.families)
    return analyse(cells, scores, chosen.untrained, chosen.waiting)
