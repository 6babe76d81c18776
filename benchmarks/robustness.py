"""Where the answer holds (issue 40): the declared design along the number of negatives and the training length,
and its statistics, as pure functions over scores. Nothing here runs a cell. Declared before any of it runs:

- Arms per column: the temperature-tuned NT-Xent, the column's two strongest families as stage 1 selected them
  (``benchmarks.robustness_cells.strongest``), and HCL hard at its paper default at the profile temperature;
  paired by seed, the seeds of the leaderboard's stage 1.
- Number of negatives: the batch, 4x either side of each profile's (a graph column stops at its set's size). Every
  batch sees the same examples (images 8 epochs of the same 10k images; graphs the paper's 200 epochs; sentences
  the quick profile's 800 x 400 sentences: 3200 steps at 100, 200 at 1600). Adam's learning rate follows the
  square-root rule from the profile's (images and graphs 1e-3 at 128, sentences 2e-3 at 400), which keeps the noise
  of an update about constant as the batch changes.
- Training length: at the profile's batch, one run per (arm, seed) scored along the way: images at 4, 8, 16, 32
  epochs, graphs at 20, 50, 100, 200, sentences at 200, 400, 800 steps.
- Tests, two per (column, arm other than NT-Xent), two-sided, Holm over all of them: (a) the slope of Δ = arm −
  NT-Xent on log2(batch), least squares per seed, mean ± s.e. over seeds (a one-sample t test of the per-seed slopes,
  which keeps the pairing); (b) Δ(longest) − Δ(shortest) per seed, a paired t test. Doubling the batch doubles the
  in-batch negatives (2B − 2 for images), so a slope per doubling of the batch is one per doubling of negatives.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from benchmarks.stage1 import ONE_COLUMN
from benchmarks.suites import BASELINE, STAGE1_SEEDS, Config, profile_temperature
from common.format import signed
from common.objectives import parse_objective
from common.stats import PairedDelta, ci95, holm_adjusted, paired_delta, t_threshold

Column = tuple[str, str | None]  # (modality, data set; None for the modality's one column)

GRAPH_DATASETS = ("PROTEINS", "IMDB-BINARY", "MUTAG")
COLUMNS: tuple[Column, ...] = (("image", None), *(("graph", d) for d in GRAPH_DATASETS), ("sentence", None))
BATCHES = {"image": (32, 64, 128, 256, 512), "graph": (32, 64, 128, 256, 512), "sentence": (100, 200, 400, 800, 1600)}
#: Graphs per TU set of the graph columns: a batch beyond it is the whole set, so the column's batches stop there.
GRAPH_COUNTS = {"PROTEINS": 1113, "IMDB-BINARY": 1000, "MUTAG": 188}
LENGTHS = {"image": (4, 8, 16, 32), "graph": (20, 50, 100, 200), "sentence": (200, 400, 800)}
LENGTH_UNITS = {"image": "epochs", "graph": "epochs", "sentence": "steps"}
SEEDS = {m: STAGE1_SEEDS[m] for m in ("image", "graph", "sentence")}
HCL_PAPER = "hard:beta=1,tau_plus=0.1"
FAMILIES_PER_COLUMN = 2
ARMS_RULE = ("per column, the temperature-tuned NT-Xent stage 1 selected, the two selected families with the largest "
             "stage-1 mean Δ against it (ties: by name), and HCL hard at its paper default "
             f"({HCL_PAPER}) at the profile temperature")
ALPHA = 0.05


class Protocol(NamedTuple):
    """A modality's operating point: the profile's batch, Adam learning rate and length (epochs or steps)."""
    batch: int
    lr: float
    length: int


#: The leaderboard's operating points (image and sentence quick profiles, graph paper protocol).
PROTOCOLS = {"image": Protocol(128, 1e-3, 8), "graph": Protocol(128, 1e-3, 200), "sentence": Protocol(400, 2e-3, 800)}
LR_RULE = ("Adam's learning rate scales with the square root of the batch from the profile's "
           "(images 1e-3 and graphs 1e-3 at batch 128, sentences 2e-3 at batch 400); every batch sees the same examples")


def scaled_lr(modality: str, batch: int) -> float:
    """The declared learning rate at ``batch``: square-root scaling from the profile's."""
    p = PROTOCOLS[modality]
    return p.lr * math.sqrt(batch / p.batch)


def batches(column: Column) -> tuple[int, ...]:
    """A column's batches: its modality's, up to a graph set's size (MUTAG's 188 graphs give 187 negatives at 256
    and at 512 alike, at two learning rates: a slope over them would measure the learning rate)."""
    modality, dataset = column
    return tuple(b for b in BATCHES[modality] if modality != "graph" or b <= GRAPH_COUNTS[str(dataset)])


def run_length(modality: str, batch: int) -> int:
    """The length of a run at ``batch`` that sees the profile's examples: epochs (image, graph) or steps (sentence)."""
    p = PROTOCOLS[modality]
    if modality != "sentence":
        return p.length
    steps, rest = divmod(p.length * p.batch, batch)
    if rest:
        raise ValueError(f"batch {batch} does not divide the profile's {p.length * p.batch} sentences")
    return steps


class Cell(NamedTuple):
    """One declared run configuration on its seeds (``robustness_cells`` makes its harness cells); ``scored_at``: the
    lengths its encoder is scored at, the last being ``length``, the run's own score."""

    modality: str
    dataset: str | None
    spec: str
    temperature: float
    batch: int
    lr: float
    length: int
    scored_at: tuple[int, ...]
    seeds: tuple[int, ...]


def hcl_arm(modality: str) -> Config:
    """The one arm stage 1 does not choose: HCL hard at its paper default, at the profile's temperature."""
    return Config("hard", HCL_PAPER, profile_temperature(modality))


def arms(column: Column, baseline: Config, families: Sequence[Config]) -> list[Config]:
    """NT-Xent first, then the two selected families, then HCL hard at its paper default (unless already one)."""
    if baseline.family != BASELINE:
        raise ValueError(f"the baseline of {column} must be the tuned {BASELINE}, got {baseline.family}")
    if len(families) != FAMILIES_PER_COLUMN:
        raise ValueError(f"{column}: stage 1's {FAMILIES_PER_COLUMN} strongest families are declared, got {len(families)}")
    return _distinct((baseline, *families, hcl_arm(column[0])))


def _distinct(configs: Sequence[Config]) -> list[Config]:
    """``configs`` in order, each (spec, temperature) once: an arm that is also HCL's paper default runs once."""
    out: list[Config] = []
    for config in configs:
        if all((c.spec, c.temperature) != (config.spec, config.temperature) for c in out):
            out.append(config)
    return out


def declared_cells(baseline: Mapping[Column, Config], families: Mapping[Column, Sequence[Config]]) -> list[Cell]:
    """Every declared run of the design in the columns stage 1 has selected (in ``COLUMNS`` order; a column waiting
    for stage 1 is left out of both mappings).

    Number of negatives: each arm at each batch, scored at the end. Training length: each arm at the profile's
    batch, one run to the longest length scored along the way; where that run is the profile's own (graphs,
    sentences) it is the same cell as the negatives axis' profile batch, declared once.
    """
    unknown = set(baseline) ^ set(families) | (set(baseline) - set(COLUMNS))
    if unknown:
        raise ValueError(f"a baseline and its families are declared together, for columns of {COLUMNS}: "
                         f"{sorted(map(str, unknown))}")
    return [cell for column in COLUMNS if column in baseline
            for arm in arms(column, baseline[column], families[column]) for cell in _arm_cells(column, arm)]


def fixed_cells(columns: Mapping[Column, Config | None]) -> list[Cell]:
    """The cells a column waiting for the rest of stage 1 can already run, each column mapped to its selected
    NT-Xent (None until stage 1 selects it): that NT-Xent's cells, since no other family's result can change them,
    and those of :func:`hcl_arm`, which the design fixes from the start. Both are the column's cells of
    :func:`declared_cells` once every family is selected."""
    return [cell for column, baseline in columns.items()
            for arm in _distinct([*([baseline] if baseline else []), hcl_arm(column[0])])
            for cell in _arm_cells(column, arm)]


def _arm_cells(column: Column, arm: Config) -> list[Cell]:
    """One arm's runs in one column: each batch, and the length run where it is not one of those."""
    modality, dataset = column
    lengths, profile = LENGTHS[modality], PROTOCOLS[modality]
    cells = []
    for batch in batches(column):
        length = run_length(modality, batch)
        scored = lengths if batch == profile.batch and length == lengths[-1] else (length,)
        cells.append(Cell(modality, dataset, arm.spec, arm.temperature, batch, scaled_lr(modality, batch), length,
                          scored, SEEDS[modality]))
    if run_length(modality, profile.batch) != lengths[-1]:
        cells.append(Cell(modality, dataset, arm.spec, arm.temperature, profile.batch, profile.lr, lengths[-1], lengths,
                          SEEDS[modality]))
    return cells


# --- statistics -------------------------------------------------------------------------------------------------

#: (modality, dataset, spec, temperature, batch, the run's length, the length scored at, seed): a run of 32 epochs
#: scored at 8 is not the run of 8 epochs, even where both should agree.
ScoreKey = tuple[str, str | None, str, float, int, int, int, int]
Curve = dict[int, dict[int, float]]  # point (batch or length) -> seed -> score


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` on ``xs``."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def seed_slopes(arm: Curve, baseline: Curve, points: Sequence[int]) -> dict[int, float]:
    """Per seed, the slope of Δ = arm − baseline on log2(point), over seeds with every point in both arms."""
    seeds = set.intersection(*(set(arm.get(p, {})) & set(baseline.get(p, {})) for p in points))
    out = {}
    for seed in sorted(seeds):
        deltas = [arm[p][seed] - baseline[p][seed] for p in points]
        if all(map(math.isfinite, deltas)):
            out[seed] = slope([math.log2(p) for p in points], deltas)
    return out


def slope_test(arm: Curve, baseline: Curve, points: Sequence[int]) -> PairedDelta | None:
    """Mean ± s.e. of the per-seed slopes (points per doubling); its p-value is a one-sample t test."""
    slopes = seed_slopes(arm, baseline, points)
    return paired_delta(slopes, dict.fromkeys(slopes, 0.0))


def difference_test(arm: Curve, baseline: Curve, shortest: int, longest: int) -> PairedDelta | None:
    """Δ(longest) − Δ(shortest) per seed, mean ± s.e.: a paired t test of the two Δs."""
    def deltas(point: int) -> dict[int, float]:
        a, b = arm.get(point, {}), baseline.get(point, {})
        return {s: a[s] - b[s] for s in a if s in b}

    return paired_delta(deltas(longest), deltas(shortest))


def _level(values: Mapping[int, float]) -> dict | None:
    """Mean, 95% CI and n of one arm's scores at one point."""
    kept = {s: v for s, v in values.items() if math.isfinite(v)}
    if not kept:
        return None
    d = paired_delta(kept, dict.fromkeys(kept, 0.0))
    return {"mean": d.mean, "ci95": list(ci95(d)) if d.se is not None else None, "n": d.n}


def _delta(arm: Mapping[int, float], baseline: Mapping[int, float]) -> dict | None:
    d = paired_delta(dict(arm), dict(baseline))
    if d is None:
        return None
    return {"mean": d.mean, "se": d.se, "ci95": list(ci95(d)) if d.se is not None else None, "n": d.n}


def label(spec: str, temperature: float) -> str:
    """An arm's row: the registry's label of its objective, and its temperature (arms differ in both)."""
    return f"{parse_objective(spec).label()} t={temperature:g}"


def column_name(modality: str, dataset: str | None) -> str:
    return f"{modality} {dataset or ONE_COLUMN.get(modality, '')}".strip()


def _curves(cells: Sequence[Cell], scores: Mapping[ScoreKey, float], column: Column) -> dict:
    """(spec, temperature) -> axis -> Curve, read from the scores at the declared points."""
    modality, dataset = column
    lengths = LENGTHS[modality]
    out: dict[tuple[str, float], dict[str, Curve]] = {}
    for cell in cells:
        if (cell.modality, cell.dataset) != column:
            continue
        arm = out.setdefault((cell.spec, cell.temperature), {"negatives": {}, "length": {}})
        for seed in cell.seeds:
            def score(point: int, cell: Cell = cell, seed: int = seed) -> float | None:
                return scores.get((modality, dataset, cell.spec, cell.temperature, cell.batch, cell.length, point, seed))

            if cell.batch in batches(column) and cell.length == run_length(modality, cell.batch):
                value = score(cell.length)
                if _finite(value):
                    arm["negatives"].setdefault(cell.batch, {})[seed] = value
            if cell.batch == PROTOCOLS[modality].batch and cell.length == lengths[-1]:
                for point in lengths:
                    value = score(point)
                    if _finite(value):
                        arm["length"].setdefault(point, {})[seed] = value
    return out


def analyse(cells: Sequence[Cell], scores: Mapping[ScoreKey, float],
            untrained: Mapping[Column, Mapping[int, float]] | None = None,
            waiting: Mapping[Column, str] | None = None, alpha: float = ALPHA) -> dict:
    """The robustness results as a JSON-able dict (``tables/robustness.json``).

    ``cells``: :func:`declared_cells`; the first arm of each column is the baseline. ``scores``: every recorded score
    keyed by :data:`ScoreKey` (lengths in epochs or steps). ``waiting``: the columns stage 1 has not selected yet,
    with why. Holm runs over every declared test, and nothing is judged until every column is declared and every
    test has every declared seed (a correction over part of a family changes as the rest comes in).
    """
    columns, tests = [], []
    for column in dict.fromkeys((c.modality, c.dataset) for c in cells):
        modality, dataset = column
        curves = _curves(cells, scores, column)
        keys = list(curves)
        base_key, seeds = keys[0], next(c.seeds for c in cells if (c.modality, c.dataset) == column)
        entry: dict = {"modality": modality, "dataset": dataset, "name": column_name(modality, dataset),
                       "baseline": {"spec": base_key[0], "temperature": base_key[1], "label": label(*base_key)},
                       "seeds": list(seeds), "untrained": None, "axes": {}, "tests": []}
        if untrained and untrained.get(column):
            entry["untrained"] = _level(untrained[column])
        for axis, points in (("negatives", batches(column)), ("length", LENGTHS[modality])):
            entry["axes"][axis] = {
                "unit": "batch" if axis == "negatives" else LENGTH_UNITS[modality], "points": list(points),
                "absolute": {label(*k): [_level(curves[k][axis].get(p, {})) for p in points] for k in keys},
                "delta": {label(*k): [_delta(curves[k][axis].get(p, {}), curves[base_key][axis].get(p, {}))
                                      for p in points] for k in keys[1:]}}
        for key in keys[1:]:
            arm, base = curves[key], curves[base_key]
            lengths = LENGTHS[modality]
            for kind, estimate, axis, points in (
                    ("slope", slope_test(arm["negatives"], base["negatives"], batches(column)), "negatives",
                     batches(column)),
                    ("difference", difference_test(arm["length"], base["length"], lengths[0], lengths[-1]), "length",
                     (lengths[0], lengths[-1]))):
                levels = [d["mean"] for d in entry["axes"][axis]["delta"][label(*key)] if d is not None]
                test = {"column": entry["name"], "modality": modality, "dataset": dataset, "arm": label(*key),
                        "spec": key[0], "temperature": key[1], "kind": kind, "points": list(points),
                        "unit": LENGTH_UNITS[modality], "level": statistics.fmean(levels) if levels else None,
                        "mean": None if estimate is None else estimate.mean,
                        "se": None if estimate is None else estimate.se,
                        "n": 0 if estimate is None else estimate.n, "seeds_declared": len(seeds),
                        "ci95": list(ci95(estimate)) if estimate is not None and estimate.se is not None else None,
                        "p": None if estimate is None else estimate.p_value}
                entry["tests"].append(test)
                tests.append(test)
        columns.append(entry)
    waiting = dict(waiting or {})
    complete = not waiting and all(t["n"] == t["seeds_declared"] and t["p"] is not None for t in tests)
    adjusted = holm_adjusted([t["p"] for t in tests]) if complete and tests else [None] * len(tests)
    for test, p in zip(tests, adjusted, strict=True):
        test["p_holm"] = p
        test["verdict"] = "pending" if p is None else "change" if p <= alpha else "no change"
        test["bound"] = _bound(test, len(tests), alpha)
        test["words"] = describe(test, alpha)
    correction = (f"Holm over all {len(tests)} declared tests, two-sided t tests" if not waiting else
                  f"Holm over every declared test once every column is declared ({len(tests)} so far), "
                  "two-sided t tests")
    return {"issue": 40, "alpha": alpha, "tests_declared": len(tests),
            "tests_complete": sum(t["n"] == t["seeds_declared"] for t in tests),
            "waiting": [{"modality": m, "dataset": d, "name": column_name(m, d), "why": why}
                        for (m, d), why in waiting.items()],
            "design": {"batches": {m: list(b) for m, b in BATCHES.items()}, "graph_counts": GRAPH_COUNTS,
                       "lrs": {m: [scaled_lr(m, b) for b in bs] for m, bs in BATCHES.items()},
                       "lengths": {m: list(n) for m, n in LENGTHS.items()}, "length_units": LENGTH_UNITS,
                       "runs": {m: [run_length(m, b) for b in bs] for m, bs in BATCHES.items()},
                       "seeds": {m: list(s) for m, s in SEEDS.items()}, "lr_rule": LR_RULE, "hcl": HCL_PAPER,
                       "arms": ARMS_RULE,
                       "slope": "least squares of Δ on log2(batch) per seed, mean ± s.e. over seeds",
                       "difference": "Δ(longest) − Δ(shortest) per seed, mean ± s.e.", "correction": correction},
            "columns": columns}


def _bound(test: dict, family: int, alpha: float) -> float | None:
    """The largest change left open: the far end of the interval at alpha / family (Holm's strictest step)."""
    if test["se"] is None:
        return None
    return abs(test["mean"]) + t_threshold(test["n"], alpha / family) * test["se"]


def describe(test: dict, alpha: float = ALPHA) -> str:
    """The test in words, never stronger than the evidence: a change only where Holm rejects, otherwise the largest
    change it leaves open."""
    arm, column = test["arm"], test["column"]
    if test["kind"] == "slope":
        per = "per doubling of the batch"
    else:
        per = f"from {test['points'][0]} to {test['points'][1]} {test['unit']}"
    if test["verdict"] == "pending":
        return f"{arm} on {column}, change {per}: pending ({test['n']} of {test['seeds_declared']} seeds)"
    what = "gain" if (test["level"] or 0.0) >= 0 else "loss"
    subject = f"the {arm} {what} over NT-Xent on {column}"
    if test["verdict"] == "no change":
        return (f"no change in {subject} larger than {test['bound']:.2f} points {per} "
                f"(estimate {signed(test['mean'])} ± {test['se']:.2f}, Holm p = {test['p_holm']:.2g})")
    rising = test["mean"] > 0
    verb = "grows" if rising == (what == "gain") else "shrinks"
    return f"{subject} {verb} by {abs(test['mean']):.2f} ± {test['se']:.2f} points {per} (Holm p = {test['p_holm']:.2g})"
