"""python -m graph: InfoGraph with hard negatives on TU data sets, SVM evaluation, run records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import (
    Parser,
    at_least,
    check_seeds,
    eval_points,
    objectives_arg,
    progress_flag,
    run_main,
    seed_arg,
    show_progress,
)
from common.errors import UserError
from common.settings import add_config_flags, config_from_args

DEFAULT_RECORDS = Path("runs/graph/records.jsonl")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command's arguments, with ``settings`` (the profile with the flags' changes) checked."""
    from graph.config import PROFILES, STAGED, Profile

    p = Parser(
        prog="python -m graph",
        description="Train InfoGraph encoders with plain, debiased and hard-negative local-global objectives "
        "on TU data sets, score frozen embeddings with an SVM (10-fold CV, C by inner 5-fold search), append "
        "one run record per (data set, method, repeat), and print the summary table. Finished runs are skipped, "
        "so re-running the same command resumes.",
    )
    p.add_argument("--dataset", default="MUTAG", help=f"TU data set name(s), comma-separated, or 'all' for {', '.join(STAGED)}")
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help=f"quick: {PROFILES['quick'].epochs} epochs x {PROFILES['quick'].repeats} repeats; "
                   f"paper: the released protocol, {PROFILES['paper'].epochs} epochs x {PROFILES['paper'].repeats} repeats")
    objectives_arg(p, default=("the reproduction grid: infograph, jsd:tau_plus=0.5,convention=C and "
                               "jsd:tau_plus=0.5,beta=B,convention=C for C in paper, reference and the profile's betas B",),
                   what="training objective; 'jsd' objectives use InfoGraph's Jensen-Shannon estimator, every other "
                   "(contrastive) one the InfoNCE local-global estimator at the profile's temperature", graph=True)
    p.add_argument("--eval-at", type=eval_points("epochs"), default=(), metavar="EPOCHS",
                   help="comma-separated epochs after which the embeddings are also scored (recorded as accuracy_at; "
                   "the reported accuracy stays the final epoch's). Picking the best of these by its score selects "
                   "on the test folds, so it shows how optimistic such a choice is. Runs already recorded are not redone")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of repeat 0; repeat r uses seed+r for every method")
    p.add_argument("--data-dir", type=Path, default=None, help="root holding tu/NAME/raw (default: $DATA_DIR, ../shared/data, ./data)")
    p.add_argument("--records", type=Path, default=DEFAULT_RECORDS,
                   help=f"JSONL file the run records are appended to (default: {DEFAULT_RECORDS})")
    p.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)  # deprecated name of --records
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=at_least(0), default=0,
                   help="torch threads and SVM jobs (default 0: torch's choice, which honours OMP_NUM_THREADS)")
    p.add_argument("--no-download", action="store_true",
                   help="never try PyG's download when raw files are missing (also HARDNEG_OFFLINE=1)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training step (needs a C++ compiler on CPU; ~1 min once per run; "
                   "no faster than eager on our 2-core CPUs, see tables/graph_epoch_speed.md: meant for GPUs)")
    p.add_argument("--flush-denormal", action=argparse.BooleanOptionalAction, default=True,
                   help="flush subnormal floats to zero on CPU (default: on): about 1.3x faster REDDIT-BINARY "
                   "epochs, values below 1.2e-38 become 0 (see common/subnormal.py)")
    p.add_argument("--distinct-nodes", action=argparse.BooleanOptionalAction, default=True,
                   help="score each class of nodes that the GIN encoder cannot tell apart (Weisfeiler-Lehman colour "
                   "within a graph) once, weighted by its size (default: on): the same loss and gradients as scoring "
                   "every node, with fewer rows (REDDIT-BINARY: 2.5x fewer; see graph/wl.py)")
    p.add_argument("--retain-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="keep freed memory in the process instead of returning it to the kernel each step (glibc; "
                   "default: on): no page faults once training is under way, at the cost of keeping the peak "
                   "heap size (see common/allocator.py)")
    progress_flag(p)
    add_config_flags(p, Profile, PROFILES, "protocol")
    args = p.parse_args(argv)
    args.progress = show_progress(args)
    if args.out is not None:
        print("warning: --out is deprecated for the records file; use --records (--out is kept for old commands)",
              file=sys.stderr)
        args.records = args.out
    del args.out
    # Settings are checked here, before any import of torch: a bad command fails at once, and the harness's
    # dry run (graph.run.planned_keys) refuses what the run would refuse.
    args.settings = config_from_args(args, PROFILES[args.profile])
    check_seeds(args.seed, args.settings.repeats)
    if any(not 1 <= e <= args.settings.epochs for e in args.eval_at):
        raise UserError(f"--eval-at epochs must lie in [1, {args.settings.epochs}] (the run's --epochs), got {args.eval_at}")
    return args


def main(argv: list[str] | None = None) -> int:
    from graph.run import run

    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    run_main(main)
