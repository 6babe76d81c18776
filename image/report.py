"""Rows of the image results, from run records alone: mean ± std over seeds, paired Δ against NT-Xent (SimCLR's
loss); the leaderboard's scores and the robustness curves' points."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from common.protocols import history, protocol_of
from common.records import NUMBER
from common.stats import UNTRAINED as UNTRAINED_LABEL
from common.stats import CurveScore, PairedDelta, Score, config_label, paired_delta
from image.identity import PRETRAINING_FIELDS, UNTRAINED, identity, objective_of

#: What an image record must hold to be resumed or tabulated (``common.records.read_records``).
RECORD_NEEDS = {"image": {**{f"config.{k}": str for k in ("profile", "dataset_label", "arch_label", "method")},
                          "config.epochs": int, "seed": int, "metrics.knn_top1": NUMBER, "metrics.linear_top1": NUMBER}}

BASELINE = "ntxent"  # the registry's label of SimCLR's loss


def label_of(config: dict[str, Any]) -> str:
    """A record's display name: the objective's registry label (``image.config.objective_label``) or random-init."""
    from image.config import objective_label

    objective = objective_of(config)
    return UNTRAINED if objective is None else objective_label(objective, bool(config.get("anneal_beta")))


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
    delta_knn: PairedDelta | None  # paired by seed against ntxent of the same setting
    delta_linear: PairedDelta | None
    best: bool  # highest mean linear top-1 of the trained methods in its setting

    @property
    def n(self) -> int:
        return len(self.linear)


def rows(records: list[dict[str, Any]]) -> list[ImageRow]:
    """Rows in first-seen order of their settings; a run recorded twice (same settings, seed and protocol version)
    counts once, its latest. Runs of an older protocol version form their own rows (history): they never pair.

    A random-init baseline recorded by runs at several temperatures, and runs that differ only in runtime options
    (bf16, compile, the machine) or in the epochs scored along the way (``--eval-at``, which leaves the final scores
    as they are) are the same run: counted twice they would pose as two seeds.
    """
    from image.config import PROFILES

    runs: dict[tuple[str, int, int, int], dict] = {}
    for r in records:
        if r.get("pipeline") == "image":  # a run of another protocol version is another run, never a re-record
            # The epochs keep the untrained encoder's row in every epoch-count group (its identity has none).
            key = (identity({**r["config"], "eval_at": None}), r["seed"], protocol_of(r), r["config"]["epochs"])
            runs[key] = r
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs.values():
        c, version = r["config"], protocol_of(r)
        profile = setting_of(c, version)
        default_t = PROFILES[c["profile"]].temperature if c["profile"] in PROFILES else None
        label = label_of(c)
        method = config_label(label, c.get("temperature") if label != UNTRAINED else None, default_t)
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
        baseline = groups.get((profile, data, arch, epochs, BASELINE), []) if method not in (BASELINE, UNTRAINED) else []
        linear = metric(group, "linear_top1")
        out.append(ImageRow(profile, data, arch, epochs, method, metric(group, "knn_top1"), linear,
                            delta(group, "knn_top1", baseline), delta(group, "linear_top1", baseline),
                            trained and statistics.fmean(linear) == best[(profile, data, arch)]))
    return out


#: Settings whose change makes another experiment, not another seed (a batch curve's batch size and learning rate).
SETTING_FIELDS = ("train_per_class", "batch_size", "lr", "weight_decay", "crop_size", "sync_bn", "knn_k",
                  "knn_temperature", "linear_epochs", "linear_lr", "linear_weight_decay", "linear_batch_size")


def setting_of(config: dict[str, Any], protocol: int) -> str:
    """The profile's name, with the settings the command changed (``quick, batch_size=256, lr=0.002``) and an older
    protocol version (``quick, protocol v0 (history)``), as graph's and sentence's pages write them.

    Runs of two settings never share a row or pair; the temperature is in the row's label and the epochs have a
    column of their own. The untrained encoder's setting leaves out what only pretraining reads: it is one row per
    evaluation setting, shown under the profile's name, not again beside every batch a curve visits.
    """
    from image.config import PROFILES

    base = PROFILES.get(config["profile"])
    skip = PRETRAINING_FIELDS if objective_of(config) is None else ()
    changes = [f"{k}={config[k]:g}" for k in SETTING_FIELDS
               if base is not None and k in config and k not in skip and config[k] != getattr(base, k)]
    changes += history("image", protocol)
    return ", ".join([config["profile"], *changes])


#: Settings a leaderboard score may differ in from its profile: the tuned temperature, and what never changes the
#: protocol (seed, runtime options, where the data comes from).
_NOT_PROTOCOL = ("seed", "dataset", "sync_bn", "temperature")
#: A robustness curve also varies the batch (with Adam's learning rate) and the training length (issue 40).
_CURVE_AXES = ("batch_size", "lr", "epochs")


def _protocol_runs(records: list[dict[str, Any]], profile: str, free: tuple[str, ...]) -> list[dict[str, Any]]:
    """Image records of ``profile`` run at its protocol but for the settings in ``free``.

    A run with ``--profile quick --epochs 4`` (a smoke run) records profile ``quick`` too, and must not count as
    one of the profile's unless ``free`` lets its epochs differ.
    """
    import dataclasses

    from image.config import PROFILES, RUNTIME_FIELDS

    protocol = {k: v for k, v in dataclasses.asdict(PROFILES[profile]).items() if k not in (*RUNTIME_FIELDS, *free)}
    return [r for r in records if r.get("pipeline") == "image" and r["config"].get("profile") == profile
            and all(r["config"].get(k, v) == v for k, v in protocol.items())]


def scores(records: list[dict[str, Any]], profile: str = "quick") -> list[Score]:
    """The leaderboard's image scores: linear-probe top-1 of every run of ``profile``'s own protocol (its
    temperature aside, a tuned configuration its label names), labelled by objective."""
    from image.config import PROFILES

    default_t = PROFILES[profile].temperature
    out = []
    for r in _protocol_runs(records, profile, _NOT_PROTOCOL):
        if objective_of(r["config"]) is None:
            label, spec, temperature = UNTRAINED_LABEL, "", None
        else:
            temperature = r["config"].get("temperature", default_t)
            spec = str(objective_of(r["config"]))
            label = config_label(label_of(r["config"]), temperature, default_t)
        out.append(Score("image", r["config"]["dataset_label"], label, r["seed"], r["metrics"]["linear_top1"],
                         protocol_of(r), spec, temperature))
    return out


def curve_scores(records: list[dict[str, Any]]) -> list[CurveScore]:
    """The robustness curves' image points (issue 40): linear-probe top-1 of every quick-profile run at its
    protocol but for batch, learning rate, epochs and temperature; one point per epoch it was scored after
    (``linear_top1_at``, written by ``--eval-at``), or its final score at its length when it has none.
    """
    from image.config import PROFILES

    default_t = PROFILES["quick"].temperature
    out = []
    for r in _protocol_runs(records, "quick", (*_NOT_PROTOCOL, *_CURVE_AXES)):
        config, metrics = r["config"], r["metrics"]
        objective = objective_of(config)
        spec, temperature = ("", None) if objective is None else (str(objective), config.get("temperature", default_t))
        length = config["epochs"]
        points = metrics.get("linear_top1_at") or {str(length): metrics["linear_top1"]}
        out.extend(CurveScore("image", config["dataset_label"], spec, temperature, config["batch_size"], length,
                              int(at), r["seed"], value, protocol_of(r)) for at, value in points.items())
    return out
