"""Rows of the image results, from run records alone: mean ± std over seeds, paired Δ against simclr."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from common.objectives import Objective
from common.protocols import protocol_of
from common.records import NUMBER
from common.stats import PairedDelta, Score, config_label, paired_delta

#: What an image record must hold to be resumed or tabulated (``common.records.read_records``).
RECORD_NEEDS = {"image": {**{f"config.{k}": str for k in ("profile", "dataset_label", "arch_label", "method")},
                          "config.epochs": int, "seed": int, "metrics.knn_top1": NUMBER, "metrics.linear_top1": NUMBER}}

BASELINE, UNTRAINED = "simclr", "random-init"


def objective_of(config: dict[str, Any]) -> Objective | None:
    """A record's objective (None: the random-init encoder; older records: ``common.records.legacy_objective``)."""
    from common.objectives import from_dict
    from common.records import legacy_objective

    if config.get("method") == UNTRAINED:
        return None
    stored = config.get("objective") or legacy_objective("image", config)
    return None if stored is None else from_dict(stored)


@dataclass(frozen=True)
class ImageRow:
    """One (profile, data, encoder, epochs, method) setting over its seeds."""

    profile: str
    data: str
    arch: str
    epochs: int
    method: str
    knn: list[float]
    linear: list[float]
    delta_knn: PairedDelta | None  # paired by seed against simclr of the same setting
    delta_linear: PairedDelta | None
    best: bool  # highest mean linear top-1 of the trained methods in its setting

    @property
    def n(self) -> int:
        return len(self.linear)


def rows(records: list[dict[str, Any]]) -> list[ImageRow]:
    """Rows in first-seen order of their settings; a run recorded twice (same settings, seed and protocol version)
    counts once, its latest. Runs of an older protocol version form their own rows (history): they never pair.

    Every ``run`` re-records the random-init baseline, and runs that differ only in runtime options (bf16,
    compile, the machine) are the same run: counted twice they would pose as two seeds.
    """
    from common.protocols import PROTOCOL
    from image.config import PROFILES

    runs: dict[tuple[str, int, int], dict] = {}
    for r in records:
        if r.get("pipeline") == "image":  # a run of another protocol version is another run, never a re-record
            runs[(identity(r["config"]), r["seed"], protocol_of(r))] = r
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs.values():
        c, version = r["config"], protocol_of(r)
        profile = c["profile"] + ("" if version == PROTOCOL["image"] else f" (protocol v{version}, history)")
        default_t = PROFILES[c["profile"]].temperature if c["profile"] in PROFILES else None
        method = config_label(c["method"], c.get("temperature") if c["method"] != UNTRAINED else None, default_t)
        groups[(profile, c["dataset_label"], c["arch_label"], c["epochs"], method)].append(r)

    def metric(group: list[dict], key: str) -> list[float]:
        return [r["metrics"][key] for r in group if key in r["metrics"]]

    def delta(group: list[dict], key: str, baseline: list[dict]) -> PairedDelta | None:
        return paired_delta({r["seed"]: r["metrics"][key] for r in group}, {r["seed"]: r["metrics"][key] for r in baseline})

    best: dict[tuple, float] = {}
    for (profile, data, arch, _, method), group in groups.items():
        if method != UNTRAINED:
            mean = statistics.fmean(metric(group, "linear_top1"))
            best[(profile, data, arch)] = max(best.get((profile, data, arch), float("-inf")), mean)
    out = []
    for (profile, data, arch, epochs, method), group in groups.items():
        trained = method != UNTRAINED
        simclr = groups.get((profile, data, arch, epochs, BASELINE), []) if method not in (BASELINE, UNTRAINED) else []
        linear = metric(group, "linear_top1")
        out.append(ImageRow(profile, data, arch, epochs, method, metric(group, "knn_top1"), linear,
                            delta(group, "knn_top1", simclr), delta(group, "linear_top1", simclr),
                            trained and statistics.fmean(linear) == best[(profile, data, arch)]))
    return out


def identity(config: dict[str, Any]) -> str:
    """What makes two image records the same run: every setting but the runtime ones, the objective as today's spec."""
    import json

    from image.config import RUNTIME_FIELDS

    objective = objective_of(config)
    settings = {k: v for k, v in config.items() if k not in (*RUNTIME_FIELDS, "tau_plus", "beta", "objective")}
    return json.dumps({**settings, **({} if objective is None else {"objective": str(objective)})}, sort_keys=True)


def scores(records: list[dict[str, Any]], profile: str = "quick") -> list[Score]:
    """The leaderboard's image scores: linear-probe top-1 of every run of ``profile``, labelled by objective.

    Only runs of the profile's own protocol count: a run with ``--profile quick --epochs 4`` (a smoke run)
    records profile ``quick`` too, and must not sit in the quick column.
    """
    import dataclasses

    from image.config import PROFILES, RUNTIME_FIELDS

    # The temperature is a tuned configuration of the leaderboard's rows (its label says so), not the protocol.
    protocol = {k: v for k, v in dataclasses.asdict(PROFILES[profile]).items()
                if k not in (*RUNTIME_FIELDS, "seed", "dataset", "sync_bn", "temperature")}
    default_t = PROFILES[profile].temperature
    out = []
    for r in records:
        if r.get("pipeline") != "image" or r["config"].get("profile") != profile:
            continue
        if any(r["config"].get(k, v) != v for k, v in protocol.items()):
            continue
        objective = objective_of(r["config"])
        if objective is None:
            label, spec, temperature = "untrained", "", None
        else:
            temperature = r["config"].get("temperature", default_t)
            spec = str(objective)
            label = config_label(objective.label() + (" annealed" if r["config"].get("anneal_beta") else ""),
                                 temperature, default_t)
        out.append(Score("image", r["config"]["dataset_label"], label, r["seed"], r["metrics"]["linear_top1"],
                         protocol_of(r), spec, temperature))
    return out
