"""Command line of the image pipeline: ``python -m image pretrain|knn|linear|run``.

Only argument parsing lives here; :mod:`image.run` does the work with explicit settings. torch is imported
there, inside the commands, so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import Parser, at_least, eval_points, objectives_arg, progress_flag, run_main, show_progress
from common.errors import UserError
from common.objectives import Objective, parse_objective
from common.settings import add_config_flags, config_from_args
from image.config import DEFAULT_OBJECTIVES, PROFILES, ImageConfig
from image.run import DEFAULT_OUT, RunPlan, pretrain_one, run, score_one


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


def cmd_pretrain(args: argparse.Namespace) -> int:
    if args.objectives and len(args.objectives) > 1:
        raise UserError("pretrain takes one --objective; `python -m image run` takes several")
    (objective,) = _objectives(args, ("hard",))
    pretrain_one(_config(args), objective, anneal_beta=args.anneal_beta, out_dir=args.out_dir, resume=args.resume,
                 stop_after=args.stop_after, download=args.download, progress=show_progress(args))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    score_one(args.command, checkpoint=args.checkpoint, random_init=args.random_init,
              profile_config=PROFILES[args.profile], settings=lambda base: _config(args, base), download=args.download)
    return 0


def run_plan(args: argparse.Namespace) -> RunPlan:
    """The runs a parsed ``run`` command asks for (``image.run.planned_keys`` reads the same)."""
    return RunPlan(_config(args), args.profile, tuple(_objectives(args, DEFAULT_OBJECTIVES)), args.anneal_beta,
                   args.eval_at)


def cmd_run(args: argparse.Namespace) -> int:
    """Random-init baseline, then pretrain + kNN + linear probe per method; one record each."""
    run(run_plan(args), records=args.records, out_dir=args.out_dir, download=args.download,
        progress=show_progress(args))
    return 0


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
    progress_flag(pretrain)
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
    progress_flag(run)
    run.add_argument("--eval-at", type=eval_points("epochs"), default=(), metavar="EPOCHS",
                     help="comma-separated epochs (in [1, --epochs]) after which the encoder is also scored by kNN and "
                     "the linear probe (recorded as knn_top1_at and linear_top1_at with the last epoch; the reported "
                     "scores stay the last epoch's); a run scored along the way is a run of its own")
    _add_config_flags(run)
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
