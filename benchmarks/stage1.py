"""Stage 1 of the leaderboard: each column's scores, the rule that selects a family's configuration, the cells its
results call for (edge steps, temperature controls), and what is left to run and its cost."""

from __future__ import annotations

import functools
import math
import statistics
import sys
from dataclasses import dataclass

from benchmarks.suites import (
    BASELINE,
    STAGE1_SEEDS,
    TEMPERATURE_FAMILIES,
    Config,
    Sweep,
    columns,
    configuration,
    profile_temperature,
    sweeps,
)
from common.protocols import PROTOCOL
from common.stats import Score, config_label

ONE_COLUMN = {"image": "CIFAR-10 (JPEG q75)", "sentence": "6 transfer tasks"}


def collect(records: list[dict]) -> list[Score]:
    """Every pipeline's leaderboard scores; a non-finite score (a diverged run) is left out with one warning.

    Computed once per set of records: the pages of one ``make tables`` (the board, its cell coverage, the
    robustness arms) all ask with the same record objects, and get the very same scores.
    """
    key = tuple(map(id, records))
    if key not in _COLLECTED:
        if len(_COLLECTED) >= 4:  # a process reads a set or two (the pages' and the committed ones): keep a few
            del _COLLECTED[next(iter(_COLLECTED))]
        _COLLECTED[key] = (_collect(records), records)  # the records are kept so that their ids stay theirs
    return list(_COLLECTED[key][0])


_COLLECTED: dict[tuple[int, ...], tuple[list[Score], list[dict]]] = {}


def _collect(records: list[dict]) -> list[Score]:
    from graph.report import scores as graph_scores
    from image.report import scores as image_scores
    from sentence.report import scores as sentence_scores

    found = [*image_scores(records), *sentence_scores(records), *graph_scores(records)]
    bad = [s for s in found if not math.isfinite(s.value)]
    if bad:
        print(f"warning: {len(bad)} run(s) recorded no finite score and are left out: "
              + ", ".join(f"{s.modality} {s.dataset} {s.label} seed {s.seed}" for s in bad[:5]), file=sys.stderr)
    return [s for s in found if math.isfinite(s.value)]


def label_of(modality: str, config: Config) -> str:
    from common.objectives import parse_objective

    return config_label(parse_objective(config.spec).label(), config.temperature, profile_temperature(modality))


Key = tuple[str, float | None]  # (full objective spec, temperature): a run's identity; labels are for display
UNTRAINED_KEY: Key = ("", None)


def key_of(config: Config) -> Key:
    return config.spec, config.temperature


def table(scores: list[Score], modality: str, dataset: str | None) -> dict[Key, dict[int, float]]:
    """(spec, temperature) -> seed -> score of one column, current protocol only (the last record of a seed wins).

    Keyed by the full spec, not the label: a record of a family's earlier version (retired parameters) may label
    like today's default, and must never pair as it.
    """
    column = ONE_COLUMN.get(modality, dataset)
    out: dict[Key, dict[int, float]] = {}
    for s in scores:
        if s.modality == modality and s.dataset == column and s.protocol == PROTOCOL[modality]:
            out.setdefault((s.spec, s.temperature), {})[s.seed] = s.value
    return out


def done(cells: list, records: list[dict]) -> list:
    """The cells whose every score (``SuiteCell.yields``) is in the records of the current protocol, however run."""
    scores = collect(records)
    have = {(s.modality, dataset, s.spec, s.temperature, s.seed) for s in scores
            if s.protocol == PROTOCOL.get(s.modality) for dataset in (s.dataset, None)}
    out = []
    for c in cells:
        y = c.yields
        if y is not None and all((y.modality, y.dataset, y.spec, y.temperature, seed) in have for seed in y.seeds):
            out.append(c)
    return out


@dataclass(frozen=True)
class Selection:
    """A family's configuration in one column, picked by :func:`select`; ``config`` is None while ``why`` waits."""

    family: str
    config: Config | None
    why: str
    step: Config | None = None  # the edge step that must run (or ran) before selecting


def _mean(values: dict[int, float], seeds: tuple[int, ...]) -> float | None:
    """Mean over exactly the stage-1 seeds; None until all of them have run."""
    return statistics.fmean(values[s] for s in seeds) if all(s in values for s in seeds) else None


def select(by_key: dict[Key, dict[int, float]], modality: str, sweep: Sweep) -> Selection:
    """The rule: the configuration with the highest mean over the stage-1 seeds (ties: the first declared); when that
    is the lowest or highest value of the grid and a step beyond that edge is declared, the step runs first and the
    best of all five is selected. Nothing is selected until every configuration it compares has all its seeds."""
    seeds = STAGE1_SEEDS[modality]
    grid = [configuration(modality, sweep, v) for v in sweep.values]
    means = [_mean(by_key.get(key_of(c), {}), seeds) for c in grid]
    if any(m is None for m in means):
        return Selection(sweep.family, None, f"{sum(m is not None for m in means)} of {len(grid)} configurations "
                         "have all their stage-1 seeds")
    best = max(range(len(grid)), key=lambda i: (means[i], -i))
    edge = sweep.below if best == 0 else sweep.above if best == len(grid) - 1 else None
    if edge is None:
        return Selection(sweep.family, grid[best], "best of its grid")
    step = configuration(modality, sweep, edge)
    step_mean = _mean(by_key.get(key_of(step), {}), seeds)
    if step_mean is None:
        return Selection(sweep.family, None, f"best at the edge of its grid: the step {sweep.param}={edge:g} runs first",
                         step)
    if step_mean > means[best]:
        return Selection(sweep.family, step, f"the step beyond the edge ({sweep.param}={edge:g}) beat the grid", step)
    return Selection(sweep.family, grid[best], f"best of its grid and the step beyond its edge ({sweep.param}={edge:g})",
                     step)


def selections(scores: list[Score], modality: str, dataset: str | None) -> list[Selection]:
    by_key = table(scores, modality, dataset)
    return [select(by_key, modality, sweep) for sweep in sweeps(modality)]


def selected_rows(scores: list[Score], modality: str) -> list[tuple[str, str, str, str, str, str]]:
    """Stage 1's selection of every family in every column of ``modality``: (modality, column, family, spec,
    temperature, mean over the stage-1 seeds), or, for a family still waiting, its reason in place of the spec."""
    seeds, out = STAGE1_SEEDS[modality], []
    for dataset in columns(modality):
        column = dataset or ONE_COLUMN[modality]
        by_key = table(scores, modality, dataset)
        for s in selections(scores, modality, dataset):
            if s.config is None:
                out.append((modality, column, s.family, f"waiting: {s.why}", "", ""))
            else:
                mean = _mean(by_key.get(key_of(s.config), {}), seeds)
                out.append((modality, column, s.family, s.config.spec, repr(s.config.temperature),
                            "" if mean is None else f"{mean:.2f}"))
    return out


def controls(chosen: list[Selection]) -> list[Config]:
    """Each selected configuration of a family that does not sweep the temperature, run again at the selected
    NT-Xent's temperature, whether it beat NT-Xent or lost to it: does a gain come from hardness or from the
    temperature, and does a loss come from the family or from the temperature it was not allowed to tune? The spec
    stays as selected: the hardness offset keeps its alpha, so its logit multiplier 1 + alpha t moves with t."""
    base = next(s for s in chosen if s.family == BASELINE).config
    if base is None:
        return []
    return [Config(s.family, s.config.spec, base.temperature) for s in chosen
            if s.config is not None and s.family not in TEMPERATURE_FAMILIES
            and s.config.temperature != base.temperature]


@functools.cache
def committed_scores() -> tuple[Score, ...]:
    """The scores of the committed records, read once per process (the suites are built from them)."""
    from benchmarks.tables import NEEDS
    from common.paths import REPO_ROOT
    from common.records import read_records

    return tuple(collect(read_records(REPO_ROOT / "tables" / "records", NEEDS)))


def follow_ups(modality: str, dataset: str | None, scores: list[Score] | None = None) -> list[Config]:
    """The cells stage 1's results call for (the suite reads the committed records): edge steps, then controls."""
    scores = list(committed_scores()) if scores is None else scores
    chosen = selections(scores, modality, dataset)
    return [*(s.step for s in chosen if s.step is not None), *controls(chosen)]


def cell_hours(todo: list, records: list[dict]) -> dict[str, float]:
    """Cell key -> CPU-hours: the median recorded time of a one-thread run of the same protocol (graphs: and data
    set) times the runs the cell makes; cells with nothing to go by are left out. Runs on more threads are left out:
    beside another run they oversubscribe the cores, so their time is not a core's (README, Experiment harness)."""
    times: dict[tuple[str, str | None], list[float]] = {}
    for r in records:
        config = r.get("config", {})
        if (r.get("hardware") or {}).get("torch_threads", 1) != 1:
            continue
        if r.get("pipeline") == "graph" and config.get("profile") == "paper" and config.get("epochs") == 200:
            key: tuple[str, str | None] = ("graph", config.get("dataset"))
        elif r.get("pipeline") == "image" and config.get("profile") == "quick" and config.get("method") != "random-init":
            key = ("image", None)
        elif r.get("pipeline") == "sentence" and config.get("profile") == "quick" and str(config.get("row")).startswith("qt-"):
            key = ("sentence", None)
        else:
            continue
        times.setdefault(key, []).append(float(r.get("wall_time_s") or 0.0))
    out = {}
    for c in todo:
        if c.yields is not None and (runs := times.get((c.yields.modality, c.yields.dataset
                                                       if c.yields.modality == "graph" else None))):
            out[c.key] = statistics.median(runs) * len(c.yields.seeds) / 3600
    return out


def time_left(todo: list, records: list[dict]) -> str:
    """The coverage line's last sentence: :func:`cell_hours` of the cells still ``todo``, summed per modality."""
    hours = cell_hours(todo, records)
    left: dict[str, float] = {}
    for c in todo:
        if c.yields is not None:
            left[c.yields.modality] = left.get(c.yields.modality, 0.0) + hours.get(c.key, 0.0)
    if not left:
        return "Every declared cell has run."
    return ("The cells still to run would take about " + ", ".join(f"{m} {h:.0f} h" for m, h in sorted(left.items()))
            + " on one such core (median recorded time of a one-thread run of the same protocol and data set, times "
            "the runs each cell makes).")


