"""``python -m sentence``: quick-thought training, transfer evaluation, MiniLM fine-tuning, full runs.

Only argument parsing lives here; the work is ``sentence.run``'s, whose functions import torch, sklearn and
sentence-transformers only when they run, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from common.cli import Parser, at_least, eval_points, objectives_arg, progress_flag, run_main, seed_arg, show_progress
from common.errors import UserError
from common.objectives import Objective, parse_objective
from common.settings import add_config_flags, config_from_args
from sentence import run
from sentence.config import (
    DEFAULT_OBJECTIVES,
    FINETUNE_OBJECTIVE,
    PROFILES,
    TASKS,
    FinetuneConfig,
    SentenceConfig,
    TrainConfig,
    get_config,
)
from sentence.run import DEFAULT_RECORDS

ENCODER_HELP = "minilm (shipped all-MiniLM-L6-v2), random (untrained quick-thought), or PATH of a checkpoint from train/st-finetune"


def _tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(t.strip().upper() for t in text.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise argparse.ArgumentTypeError(f"tasks must be a comma-separated subset of {','.join(TASKS)}")
    return tasks


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="settings profile: quick (sized for 2 CPU cores, ~1 h) or paper (Logeswaran & Lee sizes)")
    parser.add_argument("--seed", type=seed_arg, default=None, help="random seed (default: the profile's, 0)")
    parser.add_argument("--threads", type=at_least(0), default=0, help="torch CPU threads (default 0: torch's choice)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding books/gutenberg/ and senteval/ (default: DATA_DIR or ../shared/data)")
    progress_flag(parser)


def _training(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, TrainConfig, {name: p.train for name, p in PROFILES.items()}, "quick-thought training")


def _evaluation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=_tasks, default=TASKS, help=f"comma-separated transfer tasks (default {','.join(TASKS)})")
    parser.add_argument("--inner-kfold", type=at_least(1), default=None,
                        help="inner cross-validation folds that choose the L2 strength (profile default)")
    parser.add_argument("--jobs", type=at_least(1), default=None, help="parallel classifier fits (default: OMP_NUM_THREADS where set, else all usable cores)")


def _records(parser: argparse.ArgumentParser, default: Path | None) -> None:
    parser.add_argument("--records", type=Path, default=default,
                        help=f"JSONL file the run records are appended to (default {default or 'none: print only'})")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m sentence", description="Quick-thought training with hard negatives, an offline "
                     "SentEval for any encoder, and MiniLM fine-tuning with a hard-negative sentence-transformers loss.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("prepare", help="split, tokenise and cache the book corpus; print its size and build time")
    _common(p)

    p = sub.add_parser("train", help="train one quick-thought encoder (resumes from its checkpoint)")
    _common(p)
    _training(p)
    objectives_arg(p, default=("hard",), what="quick-thought loss (one)")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint file (default runs/sentence/PROFILE/qt-TAG-seedSEED.pt); an existing one is resumed")

    p = sub.add_parser("eval", help="evaluate any encoder on the transfer tasks or on one task folder")
    _common(p)
    _evaluation(p)
    _records(p, None)
    p.add_argument("--encoder", required=True, help=ENCODER_HELP)
    p.add_argument("--task-dir", type=Path, default=None,
                   help="evaluate on this folder instead of --tasks: SentEval's SST layout, sentiment-train, "
                        "sentiment-dev and sentiment-test with one 'sentence<TAB>label' per line (UTF-8, labels any "
                        "strings); C is chosen on dev, accuracy is on test")

    p = sub.add_parser("st-finetune", help="fine-tune all-MiniLM-L6-v2 on (sentence, next sentence) pairs, then eval")
    _common(p)
    _evaluation(p)
    _records(p, DEFAULT_RECORDS)
    objectives_arg(p, default=(FINETUNE_OBJECTIVE,), what="fine-tune loss (one); ntxent (alias mnrl) and hardness "
                   "run as sentence-transformers' MultipleNegativesRankingLoss (hardness: its in_batch_negatives mode, "
                   "hardness_strength = alpha), every other family through its masked form")
    add_config_flags(p, FinetuneConfig, {name: profile.finetune for name, profile in PROFILES.items()}, "MiniLM fine-tuning")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint file (default runs/sentence/PROFILE/minilm-TAG-seedSEED.pt); an existing one "
                        "is resumed when its settings and seed match")
    p.add_argument("--no-eval", action="store_true", help="only fine-tune")

    p = sub.add_parser("run", help="train plain/debiased/hard, evaluate them, a random encoder and MiniLM; record and print")
    _common(p)
    _training(p)
    _evaluation(p)
    _records(p, DEFAULT_RECORDS)
    objectives_arg(p, default=DEFAULT_OBJECTIVES, what="quick-thought losses")
    p.add_argument("--out-dir", type=Path, default=None, help="checkpoint folder (default runs/sentence/PROFILE)")
    p.add_argument("--no-random", action="store_true", help="skip the random-encoder row")
    p.add_argument("--no-minilm", action="store_true", help="skip the shipped-MiniLM row")
    p.add_argument("--eval-at", type=eval_points("optimiser steps"), default=(), metavar="STEPS",
                   help="comma-separated optimiser steps in [1, --steps] after which each quick-thought encoder is "
                        "also scored on the tasks (a snapshot is kept beside its checkpoint; recorded as avg_at)")

    p = sub.add_parser("table", help="print the markdown results table from run records")
    _records(p, DEFAULT_RECORDS)
    return parser


def settings_of(args: argparse.Namespace) -> SentenceConfig:
    """The profile with the command's flags (checked here, before torch is imported)."""
    config = get_config(args.profile, eval={"inner_kfold": getattr(args, "inner_kfold", None)})
    if args.command in ("train", "run"):
        config = dataclasses.replace(config, train=config_from_args(args, config.train))
    if args.command == "st-finetune":
        config = dataclasses.replace(config, finetune=config_from_args(args, config.finetune))
    return config if args.seed is None else dataclasses.replace(config, seed=args.seed)


def objectives_of(args: argparse.Namespace, default: tuple[str, ...]) -> list[Objective]:
    """The ``--objective`` values, or ``default``; each once."""
    return list(dict.fromkeys(args.objectives or [parse_objective(spec) for spec in default]))




def _one(args: argparse.Namespace, default: str) -> Objective:
    if args.objectives and len(args.objectives) > 1:
        raise UserError(f"{args.command} takes one --objective; `python -m sentence run` takes several")
    return objectives_of(args, (default,))[0]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is fetched from a hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.command == "table":
        run.table(args.records)
        return 0
    config = settings_of(args)
    if args.command == "run":
        run.check_eval_at(args.eval_at, config.train.steps)
    encoder = getattr(args, "encoder", None)
    run.check_inputs(records=getattr(args, "records", None), out=getattr(args, "out", None),
                     out_dir=getattr(args, "out_dir", None), data_dir=args.data_dir, encoder=encoder,
                     books=args.command != "eval" or encoder == "random", task_dir=getattr(args, "task_dir", None),
                     tasks=None if getattr(args, "no_eval", False) else getattr(args, "tasks", None))
    run.set_threads(args.threads)
    progress = show_progress(args)
    where = {"data_dir": args.data_dir, "jobs": getattr(args, "jobs", None)}
    if args.command == "prepare":
        run.prepare(config, args.data_dir)
    elif args.command == "train":
        run.train_encoder(config, _one(args, "hard"), out=args.out, data_dir=args.data_dir, progress=progress)
    elif args.command == "eval":
        run.evaluate_encoder(encoder, config, args.tasks, task_dir=args.task_dir, records=args.records, **where)
    elif args.command == "st-finetune":
        run.finetune_minilm(config, _one(args, FINETUNE_OBJECTIVE), args.tasks, out=args.out, records=args.records,
                            evaluate=not args.no_eval, progress=progress, **where)
    else:
        run.run(config, objectives_of(args, DEFAULT_OBJECTIVES), args.tasks, random=not args.no_random,
                minilm=not args.no_minilm, eval_at=args.eval_at, records=args.records, out_dir=args.out_dir,
                progress=progress, **where)
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
