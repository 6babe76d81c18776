"""What ``python -m image`` does, with every setting an explicit argument: pretrain one objective, score one
encoder, and ``run`` (the random-init baseline, then pretraining and scoring per objective; one record each,
resumable).

No torch at import: ``python -m image --help`` loads this module. :func:`planned_keys` and :func:`record_key` are
how the benchmark harness tells whether a command's runs are all recorded, by the key ``run`` itself resumes by.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from common.errors import UserError
from common.io import check_output_dir
from common.objectives import Objective
from common.resume import settings_digest
from image.config import RUNTIME_FIELDS, ImageConfig, check_anneal, objective_label, objective_tag
from image.identity import UNTRAINED, identity
from image.report import RECORD_NEEDS

DEFAULT_OUT = Path("runs") / "image"


def arch_label(cfg: ImageConfig) -> str:
    return cfg.arch if cfg.width == 64 else f"{cfg.arch} (width {cfg.width})"


def run_dir(out_dir: Path, cfg: ImageConfig, tag: str, eval_at: tuple[int, ...] = ()) -> Path:
    """Folder of one pretraining run; the hash keeps runs with different settings apart.

    Epochs scored along the way change the checkpoint (its history holds the scores), so they get a folder of their
    own; without them the folder is the one earlier versions wrote.
    """
    settings = dataclasses.asdict(cfg) | ({"eval_at": sorted(eval_at)} if eval_at else {})
    digest = settings_digest(settings, RUNTIME_FIELDS)
    return out_dir / f"{cfg.dataset}-{cfg.arch}-w{cfg.width}-{digest}" / tag


def check_outputs(out_dir: Path, records: Path | None = None) -> None:
    """Records file, its lock, run folders and cache writable with free space, before any data loads or training."""
    from common.paths import cache_dir
    from common.records import check_records_file

    if records is not None:
        check_records_file(records, "--records")
    check_output_dir(out_dir, "--out-dir")
    check_output_dir(cache_dir(), "HARDNEG_CACHE")


def setup(cfg: ImageConfig) -> Any:
    """Import torch, apply the thread setting, return the device (after checking it has the memory)."""
    import torch

    from image.train import check_memory, resolve_device

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    check_memory(cfg, device)
    return device


def pretrain_one(cfg: ImageConfig, objective: Objective, *, anneal_beta: bool, out_dir: Path, resume: bool,
                 stop_after: int | None, download: bool, progress: bool) -> None:
    """``python -m image pretrain``: one objective into the run folder ``run`` would resume."""
    check_anneal(objective, anneal_beta)
    check_outputs(out_dir)
    setup(cfg)
    from image.data import load_dataset
    from image.train import CHECKPOINT, pretrain

    data = load_dataset(cfg.dataset, train_per_class=cfg.train_per_class, seed=cfg.seed, download=download)
    folder = run_dir(out_dir, cfg, objective_tag(objective, anneal_beta))
    state = pretrain(cfg, objective, data, folder, resume=resume, stop_after=stop_after, anneal_beta=anneal_beta,
                     progress=progress)
    print(f"pretrained {objective_label(objective, anneal_beta)} to epoch {state['epoch']}: "
          f"loss {state['history'][-1]['loss']:.4f}; checkpoint {folder / CHECKPOINT}")


def score_one(protocol: str, *, checkpoint: Path | None, random_init: bool, profile_config: ImageConfig,
              settings: Callable[[ImageConfig], ImageConfig], download: bool) -> None:
    """``python -m image knn|linear``: one encoder (a checkpoint, or the seeded initialisation) by one protocol.

    ``settings`` applies the command's flags to a base config: ``profile_config``, or the checkpoint's own.
    """
    from common.checkpoint import load_checkpoint
    from common.settings import config_from_dict
    from image.data import load_dataset
    from image.evaluate import encode, knn_accuracy, linear_probe
    from image.train import build_model

    if (checkpoint is None) == (not random_init):
        raise UserError("give exactly one of --checkpoint PATH or --random-init")
    if random_init:
        cfg, source = settings(profile_config), "random-init"
        encoder = build_model(cfg).encoder
    else:
        state = load_checkpoint(checkpoint, required=("model", "config"))
        saved = config_from_dict(ImageConfig, state["config"], str(checkpoint),
                                 ignore=("method", "objective", "anneal_beta", "eval_at"))
        cfg, source = settings(saved), str(checkpoint)
        model = build_model(cfg)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise UserError(f"{checkpoint} does not fit {cfg.arch} at width {cfg.width}: {str(err).splitlines()[0]}") from None
        encoder = model.encoder
    device = setup(cfg)
    data = load_dataset(cfg.dataset, train_per_class=cfg.train_per_class, seed=cfg.seed, download=download)
    encoder.to(device)
    options = {"batch_size": cfg.eval_batch_size, "device": device, "bf16": cfg.bf16}
    train_features, test_features = encode(encoder, data.train_images, **options), encode(encoder, data.test_images, **options)
    if protocol == "knn":
        accuracy = knn_accuracy(train_features, data.train_labels, test_features, data.test_labels,
                                num_classes=data.num_classes, k=cfg.knn_k, temperature=cfg.knn_temperature)
        print(f"{source}: kNN (k={cfg.knn_k}) top-1 {accuracy:.2f}% on {data.label} test")
    else:
        accuracy = linear_probe(train_features, data.train_labels, test_features, data.test_labels,
                                num_classes=data.num_classes, epochs=cfg.linear_epochs, lr=cfg.linear_lr,
                                weight_decay=cfg.linear_weight_decay, batch_size=cfg.linear_batch_size, seed=cfg.seed)
        print(f"{source}: linear probe ({cfg.linear_epochs} epochs) top-1 {accuracy:.2f}% on {data.label} test")


@dataclass(frozen=True)
class RunPlan:
    """What one ``python -m image run`` trains and scores: its settings, objectives and scored epochs (no paths)."""

    cfg: ImageConfig
    profile: str
    objectives: tuple[Objective, ...]
    anneal_beta: bool = False
    eval_at: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if any(not 1 <= e <= self.cfg.epochs for e in self.eval_at):
            raise UserError(f"--eval-at epochs must lie in [1, {self.cfg.epochs}] (the run's --epochs), "
                            f"got {','.join(map(str, self.eval_at))}")


class PlannedRun(NamedTuple):
    """One run of a plan, before its data set is loaded."""

    objective: Objective | None  # None: the random-init encoder
    anneal_beta: bool
    config: dict[str, Any]  # the record's config but for the fields read from the data set (``report.DATA_FIELDS``)


def planned_runs(plan: RunPlan) -> list[PlannedRun]:
    """The runs ``plan`` records, in order: the random-init baseline (never scored along the way: it does not
    train), then each objective; beta is annealed only where the objective has one."""
    common = {**dataclasses.asdict(plan.cfg), "profile": plan.profile, "arch_label": arch_label(plan.cfg)}
    runs = [PlannedRun(None, False, {**common, "method": UNTRAINED})]
    for objective in plan.objectives:
        anneal = plan.anneal_beta and "beta" in dict(objective.params)
        config = {**common, "method": objective_tag(objective, anneal), "objective": objective.to_dict(),
                  "anneal_beta": anneal, **({"eval_at": sorted(plan.eval_at)} if plan.eval_at else {})}
        runs.append(PlannedRun(objective, anneal, config))
    return runs


def planned_keys(argv: list[str]) -> list[Hashable] | None:
    """The identity keys of the runs ``python -m image ARGV`` would record (None: ARGV is not ``run``); compare
    them with :func:`record_key` of the records. They read no data set, so the harness can ask without one."""
    from image.__main__ import build_parser, run_plan

    args = build_parser().parse_args(argv)
    if args.command != "run":
        return None
    return [identity(run.config) for run in planned_runs(run_plan(args))]


def record_key(config: dict[str, Any]) -> Hashable:
    """The key of a stored image record's config, equal to its command's :func:`planned_keys` entry."""
    return identity(config)


def run(plan: RunPlan, *, records: Path, out_dir: Path, download: bool, progress: bool) -> None:
    """``python -m image run``: every planned run not yet in ``records``, then the table of all of them.

    Pretraining resumes from its last checkpoint; under torchrun every rank pretrains and rank 0 alone scores and
    records.
    """
    cfg = plan.cfg
    check_outputs(out_dir, records)
    device = setup(cfg)
    from common.records import append_record, make_record
    from common.resume import recorded
    from image.data import load_dataset
    from image.evaluate import evaluate_encoder
    from image.train import augment_path, build_model, pretrain

    data = load_dataset(cfg.dataset, train_per_class=cfg.train_per_class, seed=cfg.seed, download=download)
    from_data = {"dataset_label": data.label, "pretrain_images": data.pretrain.shape[0],
                 "test_images": data.test_images.shape[0]}
    augmented_on = augment_path(cfg, device)
    done = {key: r["metrics"] for key, r in recorded(records, "image", identity, RECORD_NEEDS["image"]).items()}
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun

    def score(encoder: Any) -> dict[str, float]:
        return evaluate_encoder(encoder.to(device), data, cfg, device)

    rows = []
    for objective, anneal, planned in planned_runs(plan):
        config = {**planned, **from_data, "augment": augmented_on}  # the path that ran, not "auto" (a runtime field)
        label = UNTRAINED if objective is None else objective_label(objective, anneal)
        metrics = done.get(identity(config))
        if metrics is None:  # not finished yet: pretraining resumes from its last checkpoint
            started = time.perf_counter()
            if objective is None:
                if rank != 0:  # other torchrun ranks only help pretrain
                    continue
                metrics = score(build_model(cfg).encoder)
            else:
                state = pretrain(cfg, objective, data, run_dir(out_dir, cfg, config["method"], plan.eval_at),
                                 resume=True, anneal_beta=anneal, eval_at=plan.eval_at, progress=progress,
                                 score=lambda encoder: _monitored(score(encoder)))
                if rank != 0:
                    continue
                model = build_model(cfg)
                model.load_state_dict(state["model"])
                metrics = score(model.encoder) | _pretraining_metrics(state["history"], world)
                if plan.eval_at:
                    metrics |= _scored_along(state["history"], cfg.epochs, metrics)
            record = make_record(pipeline="image", config=config, metrics=metrics, seed=cfg.seed,
                                 wall_time_s=time.perf_counter() - started)
            if not append_record(records, record, key=identity, needs=RECORD_NEEDS["image"]):
                print(f"{label}: another run recorded it first, kept theirs", flush=True)
        rows.append((label, objective, metrics))
    if rank == 0:
        print(table(rows, cfg, plan.profile, data.label))
        print(f"records appended to {records}")


def _monitored(metrics: dict[str, float]) -> dict[str, float]:
    return {k: metrics[k] for k in ("knn_top1", "linear_top1")}


def _pretraining_metrics(history: list[dict[str, Any]], world: int) -> dict[str, Any]:
    seconds = sum(h["seconds"] for h in history)
    return {
        "pretrain_loss": history[-1]["loss"],
        "pretrain_s": seconds,
        "images_per_s": sum(h["seconds"] * h["images_per_s"] for h in history) / seconds,
        "peak_memory_mb": history[-1]["peak_memory_mb"],
        "epoch_s": [h["seconds"] for h in history],  # the first epoch holds warm-up and compilation
        "ranks": world,
    }


def _scored_along(history: list[dict[str, Any]], epochs: int, final: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``linear_top1_at`` and ``knn_top1_at``: epoch (a string, as JSON keys are) -> score, the last epoch included
    (graph's ``accuracy_at`` convention)."""
    out = {}
    for metric in ("linear_top1", "knn_top1"):
        along = {str(h["epoch"]): h["scored"][metric] for h in history if "scored" in h}
        out[f"{metric}_at"] = along | {str(epochs): final[metric]}
    return out


def table(rows: list[tuple[str, Objective | None, dict[str, Any]]], cfg: ImageConfig, profile: str, label: str) -> str:
    """The run's summary: one line per encoder, labelled as the pages label it."""
    lines = [
        f"{label}, {arch_label(cfg)}, profile {profile}: {cfg.epochs} epochs, batch {cfg.batch_size}, "
        f"kNN k={cfg.knn_k}, linear probe {cfg.linear_epochs} epochs",
        "| method | objective | kNN top-1 | linear top-1 | pretrain s | images/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, objective, m in rows:
        seconds = f"{m['pretrain_s']:.0f}" if "pretrain_s" in m else "-"
        rate = f"{m['images_per_s']:.0f}" if "images_per_s" in m else "-"
        lines.append(f"| {name} | {objective or '-'} | {m['knn_top1']:.2f} | {m['linear_top1']:.2f} | {seconds} | {rate} |")
    return "\n".join(lines)
