"""``python -m benchmarks compare SPEC``: one objective on the leaderboard's stage-1 protocol, judged alone.

The cells are the leaderboard's own (``benchmarks.leaderboard_cells.run_cells`` at the profile temperature, stage-1 seeds), so a
newcomer's runs are the runs the board would make; the harness runs the missing ones. Each column then pairs the
newcomer by seed with the baseline's committed runs of the same protocol version: NT-Xent at the profile temperature,
and the temperature-tuned NT-Xent where the board has selected it. The p-value is this comparison's alone: it joins
none of the board's Holm families, and a claim counts only once declared in a stage-2 round and confirmed on fresh
seeds.
"""

from __future__ import annotations

from benchmarks.leaderboard_cells import run_cells
from benchmarks.suites import BASELINE, STAGE1_SEEDS, Config, columns, config_key, profile_temperature
from benchmarks.suites import MODALITIES as ALL_MODALITIES
from common.format import paired

ALPHA, POWER = 0.05, 0.8


def configuration(spec: str, modality: str) -> Config:
    """``spec`` as the board's configuration in ``modality``: every parameter spelled out, the profile temperature."""
    from common.objectives import parse_objective

    objective = parse_objective(spec)
    if objective.family.local_global:
        raise ValueError(f"{objective.name} is a graph-only local-global estimator; compare runs contrastive objectives "
                         "on every modality (the JSD variants are the graph suite's: python -m benchmarks run graph)")
    return Config(objective.name, str(objective), profile_temperature(modality))


def cells(spec: str, modalities: tuple[str, ...] = (), datasets: tuple[str, ...] = ()) -> list:
    """The stage-1 cells of ``spec`` in the columns asked for (default: every column); ``ValueError`` for a bad spec,
    modality or data set."""
    from benchmarks.suites import LEADERBOARD_GRAPH_DATASETS

    unknown = sorted(set(datasets) - set(LEADERBOARD_GRAPH_DATASETS))
    if unknown:
        raise ValueError(f"--dataset {', '.join(unknown)}: the leaderboard's graph data sets are "
                         f"{', '.join(LEADERBOARD_GRAPH_DATASETS)}")
    if datasets and modalities and "graph" not in modalities:
        raise ValueError("--dataset names graph columns; add --modality graph or leave --modality out")
    chosen = ("graph",) if datasets and not modalities else modalities or ALL_MODALITIES
    out = []
    for modality in ALL_MODALITIES:
        if modality not in chosen:
            continue
        config = configuration(spec, modality)
        for dataset in columns(modality):
            if modality == "graph" and datasets and dataset not in datasets:
                continue
            out += run_cells(modality, dataset, config, STAGE1_SEEDS[modality], config_key(modality, dataset, config))
    return out


def judgement(values: dict[int, float], baseline: dict[int, float], seeds: tuple[int, ...]) -> str:
    """Δ ± s.e., p, the minimum detectable effect (80% power, two-sided t at 5%, this test alone) and a verdict."""
    from common.stats import min_detectable_effect, paired_delta

    delta = paired_delta({s: v for s, v in values.items() if s in seeds}, {s: v for s, v in baseline.items() if s in seeds})
    if delta is None or delta.se is None:
        return f"{0 if delta is None else delta.n} of {len(seeds)} seeds paired: nothing to judge yet"
    mde = min_detectable_effect(delta.se * delta.n ** 0.5, delta.n, 1, ALPHA, POWER)
    numbers = f"Δ {paired(delta, star=False)} (n={delta.n}), p={delta.p_value:.3g}" + (f", MDE {mde:.2f}" if mde else "")
    if delta.n < len(seeds):
        return f"{numbers}: pending, {delta.n} of {len(seeds)} seeds paired (no verdict before all of them)"
    if delta.p_value < ALPHA:
        return f"{numbers}: {'better' if delta.mean > 0 else 'worse'} by {abs(delta.mean):.2f}"
    return f"{numbers}: no effect larger than the MDE" + (f" ({mde:.2f})" if mde else "")


def report(spec: str, compared: list, records: list[dict]) -> list[str]:
    """Per column of ``compared``: the newcomer against NT-Xent at the profile temperature, and against the
    temperature-tuned NT-Xent where the board has selected it."""
    from benchmarks.stage1 import collect, key_of, selections, table
    from common.objectives import make_objective

    scores = collect(records)
    lines = [f"compare {spec}: paired by seed with the committed baseline runs on the leaderboard's stage-1 seeds; "
             f"p: two-sided paired t; MDE: the smallest true Δ found with {POWER:.0%} power at {ALPHA:g}; judged alone "
             "(not part of the board's Holm families; a claim needs a declared stage-2 round)"]
    shown = set()
    for cell in compared:
        y = cell.yields
        if (y.modality, y.dataset) in shown:
            continue
        shown.add((y.modality, y.dataset))
        seeds = STAGE1_SEEDS[y.modality]
        by_key = table(scores, y.modality, y.dataset)  # (spec, temperature) -> seed -> score, current protocol
        mine = by_key.get(key_of(Config(y.spec.split(":")[0], y.spec, y.temperature)), {})
        column = f"{y.modality} {y.dataset}" if y.dataset else y.modality
        untuned = Config(BASELINE, str(make_objective(BASELINE)), profile_temperature(y.modality))
        lines.append(f"{column} vs {BASELINE} at the profile temperature t={untuned.temperature:g}: "
                     + judgement(mine, by_key.get(key_of(untuned), {}), seeds))
        tuned = next(s for s in selections(scores, y.modality, y.dataset) if s.family == BASELINE)
        if tuned.config is None:
            lines.append(f"{column} vs the temperature-tuned {BASELINE}: not selected yet ({tuned.why})")
        elif tuned.config != untuned:
            lines.append(f"{column} vs the temperature-tuned {BASELINE} (t={tuned.config.temperature:g}): "
                         + judgement(mine, by_key.get(key_of(tuned.config), {}), seeds))
        else:
            lines.append(f"{column}: the temperature-tuned {BASELINE} is the profile temperature's (above)")
    return lines
