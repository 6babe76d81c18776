"""The cross-modal leaderboard page: which way of handling negatives helps, in which modality, by how much.

Composed from the pipelines' scores (``graph.report``, ``image.report``, ``sentence.report``) and the
shared paired statistics (``common.stats.verdicts``); nothing here is measured or typed in.
"""

from __future__ import annotations

import math
from pathlib import Path

from common.stats import PairedDelta, Score, Verdict, format_delta, mean_ranks, paired_delta, verdicts

#: modality -> (baseline label, what a cell scores)
MODALITIES = {
    "image": ("ntxent", "linear-probe top-1 %, quick profile (compact ResNet-18, 10k CIFAR-10 images, 8 epochs)"),
    "sentence": ("ntxent", "mean accuracy % of the six transfer tasks, quick-thought quick profile"),
    "graph": ("ntxent", "SVM accuracy %, paper protocol (200 epochs), InfoNCE local-global estimator"),
    "graph-jsd": ("infograph", "SVM accuracy %, paper protocol (200 epochs), InfoGraph's JSD estimator "
                  "(the reproduction's rows; baseline InfoGraph)"),
}
UNTRAINED = "untrained"


def collect(records: list[dict]) -> list[Score]:
    from graph.report import scores as graph_scores
    from image.report import scores as image_scores
    from sentence.report import scores as sentence_scores

    return [*image_scores(records), *sentence_scores(records), *graph_scores(records)]


def done(cells: list, records: list[dict]) -> list:
    """The cells whose every score (``SuiteCell.yields``) is in the records, through the harness or not."""
    from common.objectives import parse_objective

    scores = collect(records)
    have = {(s.modality, dataset, s.label, s.seed) for s in scores for dataset in (s.dataset, None)}
    return [c for c in cells if c.yields is not None and all(
        (c.yields[0], c.yields[1], parse_objective(c.yields[2]).label(), seed) in have for seed in c.yields[3])]


def _cost_key(record: dict) -> tuple[str, str | None] | None:
    """Which cells a record's run time predicts: a trained run of the leaderboard's protocol (graph: per data set)."""
    config = record.get("config", {})
    if record.get("pipeline") == "graph" and config.get("profile") == "paper" and config.get("epochs") == 200:
        return "graph", config.get("dataset")
    if record.get("pipeline") == "image" and config.get("profile") == "quick" and config.get("method") != "random-init":
        return "image", None
    if record.get("pipeline") == "sentence" and config.get("profile") == "quick" and str(config.get("row")).startswith("qt-"):
        return "sentence", None
    return None


def time_left(todo: list, records: list[dict]) -> str:
    """The coverage line's last sentence: the CPU-hours the cells still ``todo`` would take, per modality (the
    median recorded run time of the same protocol, and data set for graphs, times the runs each cell makes; cells
    with nothing to go by count 0), or that none is left."""
    import statistics

    times: dict[tuple[str, str | None], list[float]] = {}
    for r in records:
        if (key := _cost_key(r)) is not None:
            times.setdefault(key, []).append(float(r.get("wall_time_s") or 0.0))
    left: dict[str, float] = {}
    for c in todo:
        if c.yields is not None:
            modality, dataset = c.yields[0], c.yields[1] if c.yields[0] == "graph" else None
            runs = times.get((modality, dataset), [])
            left[modality] = left.get(modality, 0.0) + (statistics.median(runs) * len(c.yields[3]) / 3600 if runs else 0.0)
    if not left:
        return "Every declared cell has run."
    return ("The cells still to run would take about " + ", ".join(f"{m} {h:.0f} h" for m, h in sorted(left.items()))
            + " on one such core (median recorded time of the same protocol and data set, times the runs each cell "
            "makes).")


def confirmed(scores: list[Score], rounds: tuple[tuple[tuple[str, str, str, range], ...], ...],
              labels: dict[str, str]) -> set:
    """(modality, data set, label) of the declared stage-2 variants that beat NT-Xent on their fresh seeds (Holm
    within each declared round: a round declared later cannot undo an earlier one's verdicts)."""
    from common.stats import holm

    beaten = set()
    for declared in rounds:
        tested = []
        for modality, dataset, spec, seeds in declared:
            pick = {(s.label, s.seed): s.value for s in scores
                    if (s.modality, s.dataset) == (modality, dataset) and s.seed in seeds}
            label = labels[spec]
            delta = paired_delta({seed: v for (lab, seed), v in pick.items() if lab == label},
                                 {seed: v for (lab, seed), v in pick.items() if lab == MODALITIES[modality][0]})
            # Judged only once every declared seed has both runs: a verdict on the first seeds in is optional stopping.
            tested.append(((modality, dataset, label), delta if delta is not None and delta.n == len(seeds) else None))
        reject = holm([d.p_value if d is not None and d.n > 1 else 1.0 for _, d in tested])
        beaten |= {key for (key, d), r in zip(tested, reject, strict=True) if r and d.mean > 0}
    return beaten


def build(records: list[dict]) -> tuple[list[Verdict], dict[str, dict[str, float]], set]:
    """Verdicts on the grid's seeds (stage 1), mean ranks, and the confirmed (stage 2) cells."""
    from benchmarks.suites import LEADERBOARD_CONFIRMATION_ROUNDS, LEADERBOARD_CONFIRMATIONS
    from common.objectives import parse_objective

    scores = collect(records)
    fresh = {(m, d, s) for m, d, _, seeds in LEADERBOARD_CONFIRMATIONS for s in seeds}
    grid = [s for s in scores if (s.modality, s.dataset, s.seed) not in fresh]
    rows = [v for modality, (baseline, _) in MODALITIES.items()
            for v in verdicts([s for s in grid if s.modality == modality], baseline)]
    labels = {spec: parse_objective(spec).label() for _, _, spec, _ in LEADERBOARD_CONFIRMATIONS}
    return rows, mean_ranks(rows), confirmed(scores, LEADERBOARD_CONFIRMATION_ROUNDS, labels)


def _plain(delta: PairedDelta | None) -> str:
    """A Δ without the uncorrected-significance star: this page marks Holm and confirmation instead."""
    return format_delta(delta).replace("*", "")


def _cell(v: Verdict | None, baseline: Verdict | None, confirmed_cells: set) -> str:
    """A Δ on fewer seeds than the baseline ran says so: its runs are still coming in."""
    if v is None:
        return ""
    if baseline is not None and v.label == baseline.label:
        return f"{v.mean:.2f} (n={v.n})"
    mark = (" H" if v.holm else "") + (" C" if (v.modality, v.dataset, v.label) in confirmed_cells else "")
    if v.delta is None:
        return f"{v.mean:.2f}, no shared seed{mark}"
    partial = f" (n={v.delta.n} of {baseline.n})" if baseline is not None and v.delta.n < baseline.n else ""
    return _plain(v.delta) + partial + mark


def markdown(rows: list[Verdict], ranks: dict[str, dict[str, float]], confirmed_cells: set, coverage: str) -> list[str]:
    columns = list(dict.fromkeys((v.modality, v.dataset) for v in rows))
    by = {(v.modality, v.dataset, v.label): v for v in rows}
    labels = sorted({v.label for v in rows}, key=lambda lab: (lab == UNTRAINED, ranks.get(lab, {}).get("all", math.inf), lab))
    modalities = list(dict.fromkeys(m for m, _ in columns))
    header = "| objective | " + " | ".join(f"{m}: {d}" for m, d in columns) + " | " + " | ".join(
        f"mean rank {m}" for m in modalities) + " | mean rank, all |"
    lines = [header, "|---" * (len(columns) + len(modalities) + 2) + "|"]
    for label in labels:
        cells = [_cell(by.get((m, d, label)), by.get((m, d, MODALITIES[m][0])), confirmed_cells) for m, d in columns]
        rank = ranks.get(label, {})
        cells += [f"{rank[m]:.1f}" if m in rank else "" for m in (*modalities, "all")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [
        "Cells: the baseline's mean score (n = paired seeds), every other row its paired Δ to that baseline ± s.e. "
        "over the seeds both ran (`n=2 of 4` where the row has run fewer of them so far); `H`: the Δ survives Holm's correction over the column's variants (5%, family-wise); "
        "`C`: confirmed on fresh seeds declared before they ran (stage 2, `benchmarks/suites.py`). Mean ranks order "
        "the rows by mean score within each column (untrained left out). What each column scores:", "",
        *(f"- `{m}`: {what}; baseline `{base}`" for m, (base, what) in MODALITIES.items() if m in modalities), "",
        coverage, "", *lines, "", *evidence(rows, confirmed_cells),
    ]


def evidence(rows: list[Verdict], confirmed_cells: set) -> list[str]:
    """The plain reading of each column: what beats its baseline beyond noise, what loses to it, and where the
    untrained encoder is ahead (a gain there may only win back what training lost); "no objective beats" is an answer."""

    lines: list[str] = []
    gained: dict[str, dict[str, list[str]]] = {}  # modality -> family -> the data sets where it gained
    lost: dict[str, dict[str, list[str]]] = {}
    for modality, dataset in dict.fromkeys((v.modality, v.dataset) for v in rows):
        column = [v for v in rows if (v.modality, v.dataset) == (modality, dataset)]
        baseline = MODALITIES[modality][0]
        variants = [v for v in column if v.label not in (baseline, UNTRAINED) and v.delta is not None]
        if not variants:
            continue
        confirmed_here = {v.label for v in variants if (modality, dataset, v.label) in confirmed_cells}
        gains = sorted((v for v in variants if v.delta.mean > 0 and (v.holm or v.label in confirmed_here)),
                       key=lambda v: -v.delta.mean)
        losses = sorted((v for v in variants if v.delta.mean < 0 and v.holm), key=lambda v: v.delta.mean)
        for found, by_family in ((gains, gained), (losses, lost)):
            for v in found:
                by_family.setdefault(modality, {}).setdefault(v.label.split()[0], []).append(dataset)
        said = (f"better than {baseline}: " + ", ".join(
            f"{v.label} {_plain(v.delta)} (" + ("beyond Holm" if v.holm else "not beyond Holm") + "; "
            + ("confirmed on fresh seeds" if v.label in confirmed_here else "not confirmed on fresh seeds yet") + ")"
            for v in gains) if gains else f"no objective beats {baseline} beyond noise")
        if losses:
            said += f"; worse than {baseline} beyond Holm: " + ", ".join(f"{v.label} {_plain(v.delta)}" for v in losses)
        untrained = next((v for v in column if v.label == UNTRAINED and v.delta is not None), None)
        if untrained is not None and untrained.delta.mean > 0:
            said += (f"; the untrained encoder scores above {baseline} here ({_plain(untrained.delta)}): a gain may only win "
                     "back what training lost")
        lines.append(f"- {modality} {dataset}, {len(variants)} variant{'s' if len(variants) > 1 else ''} run: {said}.")

    def families(by_family: dict[str, list[str]], columns: int) -> str:
        return ", ".join(family + ("" if columns == 1 else f" ({', '.join(dict.fromkeys(sets))})")
                         for family, sets in by_family.items())

    short = []
    for modality in dict.fromkeys(v.modality for v in rows):
        columns = len({v.dataset for v in rows if v.modality == modality})
        parts = [f"{word} from {families(found[modality], columns)}" for word, found in (("gains", gained), ("losses", lost))
                 if modality in found]
        short.append(f"{modality} ({columns} column{'s' if columns > 1 else ''}): "
                     + ("; ".join(parts) if parts else "no gain and no loss beyond noise"))
    return ["**What the evidence says** (paired by seed, Holm over each column's variants; a gain is named when it "
            "survives Holm on the grid's seeds or was confirmed on fresh seeds declared before they ran, in the "
            "stage-2 table; every Δ is on the grid's seeds). In short, per modality: " + ". ".join(short) + ".",
            "", *lines]


def legend() -> list[str]:
    """What each declared row is: its label, the full spec it runs, the family's one-line description."""
    from benchmarks.suites import LEADERBOARD_SWEEPS, leaderboard_objectives
    from common.objectives import parse_objective

    lines = ["| row | spec (every parameter) | what it is |", "|---|---|---|"]
    for spec in leaderboard_objectives():
        objective = parse_objective(spec)
        what = objective.family.summary
        if objective.label() != objective.name:
            swept = LEADERBOARD_SWEEPS[objective.name][0]
            default = objective.family.params[swept].default
            what = f"`{objective.name}` with {swept} = {objective[swept]:g} (default {default:g})"
        lines.append(f"| {objective.label()} | `{objective}` | {what} |")
    return ["Rows declared in `benchmarks/suites.py` (every contrastive family at its paper's defaults, then one "
            "sweep of its main parameter; `python -m benchmarks objectives` cites each):", "", *lines]


def stage2(records: list[dict]) -> list[str]:
    """The declared confirmations: what runs on which fresh seeds, how many of them have run, and the verdict."""
    from benchmarks.suites import LEADERBOARD_CONFIRMATION_ROUNDS, LEADERBOARD_CONFIRMATIONS
    from common.objectives import parse_objective

    if not LEADERBOARD_CONFIRMATIONS:
        return []
    scores = collect(records)
    labels = {spec: parse_objective(spec).label() for _, _, spec, _ in LEADERBOARD_CONFIRMATIONS}
    confirmed_cells = confirmed(scores, LEADERBOARD_CONFIRMATION_ROUNDS, labels)
    lines = ["| round | column | variant | fresh seeds | run (variant / NT-Xent) | Δ vs NT-Xent on them "
             "| confirmed (Holm over the round) | Δ vs the untrained encoder on them |", "|---|---|---|---|---|---|---|---|"]
    for number, declared in enumerate(LEADERBOARD_CONFIRMATION_ROUNDS, 1):
        rows, complete = [], []
        for modality, dataset, spec, seeds in declared:
            mine = {(s.label, s.seed): s.value for s in scores
                    if (s.modality, s.dataset) == (modality, dataset) and s.seed in seeds}
            variant = {seed: v for (label, seed), v in mine.items() if label == labels[spec]}
            baseline = {seed: v for (label, seed), v in mine.items() if label == MODALITIES[modality][0]}
            untrained = {seed: v for (label, seed), v in mine.items() if label == UNTRAINED}
            shown = [_plain(d) if d is not None and d.n > 1 else ""
                     for d in (paired_delta(variant, baseline), paired_delta(variant, untrained))]
            complete.append(len(variant) == len(baseline) == len(seeds))
            rows.append((modality, dataset, spec, seeds, f"{len(variant)} / {len(baseline)} of {len(seeds)}", *shown))
        for (modality, dataset, spec, seeds, run, delta, versus_untrained), done_ in zip(rows, complete, strict=True):
            # Unrun variants count as p = 1, so a "no" can still turn "yes" until the whole round is in.
            mark = ("yes" if (modality, dataset, labels[spec]) in confirmed_cells
                    else "no" if all(complete) else "not so far" if done_ else "")
            lines.append(f"| {number} | {modality}: {dataset} | `{spec}` | {seeds.start}-{seeds.stop - 1} | {run} "
                         f"| {delta} | {mark} | {versus_untrained} |")
    return ["Stage 2, declared in `benchmarks/suites.py` before its runs, in rounds (every stage-1 variant with a "
            "positive gain and an uncorrected p < 0.1 when its round was declared; each round its own Holm family):",
            "", *lines, "", undeclared(records)]


def undeclared(records: list[dict]) -> str:
    """The next round's candidates: complete stage-1 cells with a positive gain and p < 0.1 that no round declares."""
    from benchmarks.suites import (
        LEADERBOARD_CONFIRMATIONS,
        LEADERBOARD_IMAGE_SEEDS,
        LEADERBOARD_SENTENCE_SEEDS,
        leaderboard_objectives,
    )
    from common.objectives import parse_objective
    from graph.config import PROFILES as GRAPH_PROFILES

    seeds = {"image": len(LEADERBOARD_IMAGE_SEEDS), "sentence": len(LEADERBOARD_SENTENCE_SEEDS),
             "graph": GRAPH_PROFILES["paper"].repeats}
    specs = {parse_objective(spec).label(): spec for spec in leaderboard_objectives()}
    declared = {(m, d, parse_objective(spec).label()) for m, d, spec, _ in LEADERBOARD_CONFIRMATIONS}
    rows, _, _ = build(records)
    found = [f"{v.modality} {v.dataset} `{specs[v.label]}` (p = {v.delta.p_value:.2g})" for v in rows
             if v.modality in seeds and v.label in specs and v.delta is not None and v.delta.n == seeds[v.modality]
             and v.delta.mean > 0 and v.delta.p_value < 0.1 and (v.modality, v.dataset, v.label) not in declared]
    return ("Stage-1 gains with p < 0.1 on all their seeds that no round declares yet (the next round's candidates): "
            + ("; ".join(found) if found else "none") + ".")


def heat_map(rows: list[Verdict], confirmed_cells: set, path: Path, pyplot) -> None:
    """Δ / s.e. per (objective, column): blue helps, red hurts, grey not run or one seed; H and C as in the table."""
    import numpy as np

    columns = list(dict.fromkeys((v.modality, v.dataset) for v in rows))
    labels = sorted({v.label for v in rows if v.delta is not None})
    grid = np.full((len(labels), len(columns)), np.nan)
    marks: dict[tuple[int, int], str] = {}
    for v in rows:
        if v.delta is not None and v.delta.se:
            at = labels.index(v.label), columns.index((v.modality, v.dataset))
            grid[at] = v.delta.mean / v.delta.se
            marks[at] = (" H" if v.holm else "") + (" C" if (v.modality, v.dataset, v.label) in confirmed_cells else "")
    fig, ax = pyplot.subplots(figsize=(1.2 + 0.9 * len(columns), 1.0 + 0.4 * len(labels)))
    # The colour saturates at |t| = 6 (far past any test's threshold), so an untrained row at -40 leaves the rest readable.
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu", vmin=-6, vmax=6, aspect="auto")
    ax.set_facecolor("0.85")
    ax.set_xticks(range(len(columns)), [f"{m}\n{d}" for m, d in columns], fontsize=7, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.1f}{marks[i, j]}", ha="center", va="center", fontsize=6,
                    color="white" if abs(value) > 3.5 else "black")  # readable on the dark ends of the scale
    fig.colorbar(image, ax=ax, label="paired Δ / s.e. vs baseline (colour capped at ±6)")
    ax.set_title("Negative handling vs its baseline, per modality and data set (H: beyond Holm; C: confirmed on fresh "
                 "seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot.close(fig)
