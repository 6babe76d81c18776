"""Command line of the image pipeline: ``python -m image pretrain|knn|linear|run``.

Only argument parsing and calls live here; torch is imported inside the subcommands so
that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from common.cli import Parser, at_least, objectives_arg, run_main
from common.errors import UserError
from common.io import check_output_dir
from common.objectives import Objective, parse_objective
from common.settings import add_config_flags, config_from_args, config_from_dict
from image.config import (
    DEFAULT_OBJECTIVES,
    PROFILES,
    RUNTIME_FIELDS,
    ImageConfig,
    check_anneal,
    objective_tag,
)

DEFAULT_OUT = Path("runs") / "image"


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``ImageConfig`` field; unset flags take the profile's value."""
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="quick: CPU-sized (compact ResNet-18, 10k-image subset); paper: the published setup")
    add_config_flags(parser, ImageConfig, PROFILES)
    parser.add_argument("--download", action="store_true",
                        help="let torchvision fetch cifar10/cifar100/stl10 into the cache (needs internet)")


def _config(args: argparse.Namespace, base: ImageConfig | None = None) -> ImageConfig:
    return config_from_args(args, base if base is not None else PROFILES[args.profile])


def _add_objective_flags(parser: argparse.ArgumentParser, default: tuple[str, ...]) -> None:
    objectives_arg(parser, default=default, what="pretraining loss")
    parser.add_argument("--anneal-beta", action="store_true",
                        help="anneal the objectives' beta to 0 in 9 steps over training (the released code's 'down' "
                        "schedule); objectives without beta run as given")


def _objectives(args: argparse.Namespace, default: tuple[str, ...]) -> list[Objective]:
    return list(dict.fromkeys(args.objectives or [parse_objective(spec) for spec in default]))


def _run_dir(out_dir: Path, cfg: ImageConfig, tag: str) -> Path:
    """Folder of one pretraining run; the hash keeps runs with different settings apart."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUNTIME_FIELDS}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return out_dir / f"{cfg.dataset}-{cfg.arch}-w{cfg.width}-{digest}" / tag


def _arch_label(cfg: ImageConfig) -> str:
    return cfg.arch if cfg.width == 64 else f"{cfg.arch} (width {cfg.width})"


def _setup(cfg: ImageConfig) -> Any:
    """Import torch, apply the thread setting, return the device."""
    import torch

    from image.train import check_memory, resolve_device

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    check_memory(cfg, device)
    return device


def cmd_pretrain(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.objectives and len(args.objectives) > 1:
        raise UserError("pretrain takes one --objective; `python -m image run` takes several")
    (objective,) = _objectives(args, ("hard",))
    check_anneal(objective, args.anneal_beta)
    _check_outputs(args)
    _setup(cfg)
    from image.data import load_dataset
    from image.train import CHECKPOINT, pretrain

    data = load_dataset(cfg.dataset, train_per_class=cfg.train_per_class, seed=cfg.seed, download=args.download)
    run_dir = _run_dir(args.out_dir, cfg, objective_tag(objective, args.anneal_beta))
    state = pretrain(cfg, objective, data, run_dir, resume=args.resume, stop_after=args.stop_after,
                     anneal_beta=args.anneal_beta)
    last = state["history"][-1]
    print(f"pretrained {objective} to epoch {state['epoch']}: loss {last['loss']:.4f}; checkpoint {run_dir / CHECKPOINT}")
    return 0


def _encoder_for_eval(args: argparse.Namespace) -> tuple[ImageConfig, Any, str]:
    """(config, encoder, description) from ``--checkpoint`` or ``--random-init``."""
    from common.checkpoint import load_checkpoint
    from image.train import build_model

    if (args.checkpoint is None) == (not args.random_init):
        raise UserError("give exactly one of --checkpoint PATH or --random-init")
    if args.random_init:
        cfg = _config(args)
        return cfg, build_model(cfg).encoder, "random-init"
    state = load_checkpoint(args.checkpoint, required=("model", "config"))
    saved = config_from_dict(ImageConfig, state["config"], str(args.checkpoint), ignore=("method", "objective", "anneal_beta"))
    cfg = _config(args, saved)
    model = build_model(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise UserError(f"{args.checkpoint} does not fit {cfg.arch} at width {cfg.width}: {str(err).splitlines()[0]}") from None
    return cfg, model.encoder, str(args.checkpoint)


def cmd_evaluate(args: argparse.Namespace) -> int:
    cfg, encoder, source = _encoder_for_eval(args)
    device = _setup(cfg)
    from image.data import load_dataset
    from image.evaluate import encode, knn_accuracy, linear_probe

    data = load_dataset(cfg.dataset, train_per_class=cfg.train_per_class, seed=cfg.seed, download=args.download)
    encoder.to(device)
    options = {"batch_size": cfg.eval_batch_size, "device": device, "bf16": cfg.bf16}
    train_features, test_features = encode(encoder, data.train_images, **options), encode(encoder, data.test_images, **options)
    if args.command == "knn":
        accuracy = knn_accuracy(train_features, data.train_labels, test_features, data.test_labels,
                                num_classes=data.num_classes, k=cfg.knn_k, temperature=cfg.knn_temperature)
        print(f"{source}: kNN (k={cfg.knn_k}) top-1 {accuracy:.2f}% on {data.label} test")
    else:
        accuracy = linear_probe(train_features, data.train_labels, test_features, data.test_labels,
                                num_classes=data.num_classes, epochs=cfg.linear_epochs, lr=cfg.linear_lr,
                                weight_decay=cfg.linear_weight_decay, batch_size=cfg.linear_batch_size, seed=cfg.seed)
        print(f"{source}: linear probe ({cfg.linear_epochs} epochs) top-1 {accuracy:.2f}% on {data.label} test")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Random-init baseline, then pretrain + kNN + linear probe per method; one record each."""
    cfg = _config(args)
    _check_outputs(args)
    runs = [(o, args.anneal_beta and "beta" in dict(o.params)) for o in _objectives(args, DEFAULT_OBJECTIVES)]
    device = _setup(cfg)
    from common.records import append_record, make_record
    from common.resume import recorded
    from image.data import load_dataset
    from image.evaluate import evaluate_encoder
    from image.report import RECORD_NEEDS, identity
    from image.train import build_model, pretrain

    data = load_dataset(cfg.dataset, train_per_class=cfg.train_per_class, seed=cfg.seed, download=args.download)
    common = {**dataclasses.asdict(cfg), "profile": args.profile, "dataset_label": data.label,
              "arch_label": _arch_label(cfg), "pretrain_images": data.pretrain.shape[0],
              "test_images": data.test_images.shape[0]}
    done = {key: r["metrics"] for key, r in recorded(args.records, "image", identity, RECORD_NEEDS["image"]).items()}
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    rows = []

    def finish(config: dict, started: float, metrics: dict) -> None:
        if not append_record(args.records, make_record(pipeline="image", config=config, metrics=metrics, seed=cfg.seed,
                                                       wall_time_s=time.perf_counter() - started),
                             key=identity, needs=RECORD_NEEDS["image"]):
            print(f"{config['method']}: another run recorded it first, kept theirs", flush=True)

    config = {**common, "method": "random-init"}
    metrics = done.get(identity(config))
    if metrics is None and rank == 0:  # other torchrun ranks only help pretrain; rank 0 evaluates and records
        started = time.perf_counter()
        metrics = evaluate_encoder(build_model(cfg).encoder.to(device), data, cfg, device)
        finish(config, started, metrics)
    rows.append(("random-init", None, metrics))
    for objective, anneal in runs:
        tag = objective_tag(objective, anneal)
        config = {**common, "method": tag, "objective": objective.to_dict(), "anneal_beta": anneal}
        metrics = done.get(identity(config))
        if metrics is None:  # not finished yet: pretraining resumes from its last checkpoint
            started = time.perf_counter()
            state = pretrain(cfg, objective, data, _run_dir(args.out_dir, cfg, tag), resume=True, anneal_beta=anneal)
            if rank != 0:
                continue
            model = build_model(cfg)
            model.load_state_dict(state["model"])
            metrics = evaluate_encoder(model.encoder.to(device), data, cfg, device)
            history = state["history"]
            metrics |= {
                "pretrain_loss": history[-1]["loss"],
                "pretrain_s": sum(h["seconds"] for h in history),
                "images_per_s": sum(h["seconds"] * h["images_per_s"] for h in history)
                / sum(h["seconds"] for h in history),
                "peak_memory_mb": history[-1]["peak_memory_mb"],
                "epoch_s": [h["seconds"] for h in history],  # the first epoch holds warm-up and compilation
                "ranks": world,
            }
            finish(config, started, metrics)
        rows.append((tag, objective, metrics))
    if rank != 0:
        return 0
    print(_table(rows, cfg, args.profile, data.label))
    print(f"records appended to {args.records}")
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Records file, its lock, run folders and cache writable with free space, before any data loads or training."""
    from common.paths import cache_dir
    from common.records import check_records_file

    if getattr(args, "records", None) is not None:
        check_records_file(args.records, "--records")
    check_output_dir(args.out_dir, "--out-dir")
    check_output_dir(cache_dir(), "HARDNEG_CACHE")


def _table(rows: list[tuple[str, Objective | None, dict[str, Any]]], cfg: ImageConfig, profile: str, label: str) -> str:
    lines = [
        f"{label}, {_arch_label(cfg)}, profile {profile}: {cfg.epochs} epochs, batch {cfg.batch_size}, "
        f"kNN k={cfg.knn_k}, linear probe {cfg.linear_epochs} epochs",
        "| method | objective | kNN top-1 | linear top-1 | pretrain s | images/s |",
        "|---|---|---|---|---|---|",
    ]
    for tag, objective, m in rows:
        seconds = f"{m['pretrain_s']:.0f}" if "pretrain_s" in m else "-"
        rate = f"{m['images_per_s']:.0f}" if "images_per_s" in m else "-"
        lines.append(f"| {tag} | {objective or '-'} | {m['knn_top1']:.2f} | {m['linear_top1']:.2f} | {seconds} | {rate} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m image",
        description="SimCLR with hard negative samples (Robinson et al., ICLR 2021) on CIFAR-10/100 and STL-10.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    pretrain = sub.add_parser("pretrain", help="pretrain with one objective; checkpoint after every epoch")
    _add_objective_flags(pretrain, ("hard",))
    pretrain.add_argument("--resume", action="store_true", help="continue the checkpoint of the same settings")
    pretrain.add_argument("--stop-after", type=at_least(1), default=None, metavar="EPOCH",
                          help="stop after this epoch (continue later with --resume), e.g. to fit a job time limit")
    pretrain.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help=f"root of the run folders (default: {DEFAULT_OUT})")
    _add_config_flags(pretrain)
    pretrain.set_defaults(func=cmd_pretrain)

    for name, what in (("knn", "weighted kNN top-1 of the encoder"), ("linear", "linear-probe top-1 on frozen features")):
        evaluate = sub.add_parser(name, help=what)
        evaluate.add_argument("--checkpoint", type=Path, default=None,
                              help="checkpoint.pt written by pretrain (its settings are the defaults)")
        evaluate.add_argument("--random-init", action="store_true", help="evaluate the encoder at its seeded initialisation")
        _add_config_flags(evaluate)
        evaluate.set_defaults(func=cmd_evaluate)

    run = sub.add_parser("run", help="random-init baseline + pretrain, kNN and linear probe for each objective; records")
    _add_objective_flags(run, DEFAULT_OBJECTIVES)
    run.add_argument("--records", type=Path, default=DEFAULT_OUT / "records.jsonl",
                     help=f"JSONL file the run records are appended to (default: {DEFAULT_OUT / 'records.jsonl'})")
    run.add_argument("--out-dir", type=Path, default=DEFAULT_OUT,
                     help=f"root of the run folders; finished or partial runs there are resumed (default: {DEFAULT_OUT})")
    _add_config_flags(run)
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
