"""The leaderboard's cells: the commands that score each declared configuration (``benchmarks.suites`` declares
what runs; this builds the pipeline command lines from it)."""

from __future__ import annotations

from benchmarks.stage1 import follow_ups
from benchmarks.suites import (
    MODALITIES,
    STAGE1_SEEDS,
    TUNED_ROUNDS,
    Config,
    SuiteCell,
    Yield,
    columns,
    config_key,
    profile_temperature,
    stage1_configs,
)


def run_cells(modality: str, dataset: str | None, config: Config, seeds: tuple[int, ...], key: str,
              round_digest: str | None = None) -> list[SuiteCell]:
    """The commands that score ``config`` in one column on ``seeds``: one per graph data set (all stage-1 repeats
    in one process, or one seed per process for fresh seeds), one per seed for images and sentences."""
    extra = () if config.temperature == profile_temperature(modality) else ("--temperature", f"{config.temperature:g}")
    if modality == "graph" and seeds == STAGE1_SEEDS["graph"]:
        argv = ("graph", "--dataset", dataset, "--objective", config.spec, "--profile", "paper", *extra,
                "--records", "{records}", "--no-progress")
        return [SuiteCell("leaderboard", key, argv, Yield(modality, dataset, config.spec, config.temperature, seeds),
                          round_digest)]
    cells = []
    for seed in seeds:
        argv = {"graph": ("graph", "--dataset", str(dataset), "--profile", "paper", "--repeats", "1", "--seed", str(seed),
                          "--records", "{records}", "--no-progress"),
                "image": ("image", "run", "--profile", "quick", "--seed", str(seed), "--records", "{records}"),
                "sentence": ("sentence", "run", "--profile", "quick", "--seed", str(seed), "--no-minilm",
                             "--records", "{records}", "--no-progress")}[modality]
        cells.append(SuiteCell("leaderboard", f"{key}/seed={seed}", (*argv, "--objective", config.spec, *extra),
                               Yield(modality, dataset, config.spec, config.temperature, (seed,)), round_digest))
    return cells


def leaderboard_suite(profile: str) -> list[SuiteCell]:
    """Stage 1, the edge steps and temperature controls its committed results call for, and the declared rounds
    (each modality at its own protocol, whatever ``profile`` says)."""
    cells: dict[str, SuiteCell] = {}
    for modality in MODALITIES:
        for dataset in columns(modality):
            for config in [*stage1_configs(modality), *follow_ups(modality, dataset)]:
                key = config_key(modality, dataset, config)
                for cell in run_cells(modality, dataset, config, STAGE1_SEEDS[modality], key):
                    cells[cell.key] = cell
    for declared in TUNED_ROUNDS:
        for claim in declared.claims:
            for column, spec, temperature in (*claim.configs, *claim.baselines):
                config = Config(spec.split(":")[0], spec, temperature)
                dataset = column if declared.modality == "graph" else None
                key = config_key(declared.modality, dataset, config, fresh=True)
                for cell in run_cells(declared.modality, dataset, config, declared.seeds, key, declared.digest):
                    cells[cell.key] = cell
    return list(cells.values())
