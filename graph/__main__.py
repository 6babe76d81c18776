"""python -m graph: InfoGraph with hard negatives on TU data sets, SVM evaluation, run records."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

from common.cli import Parser, at_least, check_seeds, objectives_arg, run_main, seed_arg
from common.errors import UserError
from common.io import check_output_dir
from common.settings import add_config_flags, check_device, comma_list, config_from_args

DEFAULT_RECORDS = Path("runs/graph/records.jsonl")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    p.add_argument("--eval-at", type=comma_list(int, "whole numbers"), default=(),
                   help="comma-separated epochs after which the embeddings are also scored (recorded as accuracy_at; "
                   "the reported accuracy stays the final epoch's). Picking the best of these by its score selects "
                   "on the test folds, so it shows how optimistic such a choice is. Runs already recorded are not redone")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of repeat 0; repeat r uses seed+r for every method")
    p.add_argument("--data-dir", type=Path, default=None, help="root holding tu/NAME/raw (default: $DATA_DIR, ../shared/data, ./data)")
    p.add_argument("--records", type=Path, default=DEFAULT_RECORDS,
                   help=f"JSONL file the run records are appended to (default: {DEFAULT_RECORDS})")
    p.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)  # deprecated name of --records
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=at_least(1), default=os.cpu_count(), help="torch threads and SVM jobs")
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
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_config_flags(p, Profile, PROFILES, "protocol")
    args = p.parse_args(argv)
    if args.out is not None:
        print("warning: --out is deprecated for the records file; use --records (--out is kept for old commands)",
              file=sys.stderr)
        args.records = args.out
    del args.out
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)  # raised by PyG's import
    import torch

    from common.allocator import retain_freed_memory
    from common.paths import cache_dir
    from common.records import check_records_file
    from common.subnormal import flush_denormal
    from graph.config import PROFILES, STAGED, expand_cells, reproduction_objectives

    args.device = check_device(args.device) if args.device else "cuda" if torch.cuda.is_available() else "cpu"
    settings = config_from_args(args, PROFILES[args.profile])
    check_seeds(args.seed, settings.repeats)
    check_records_file(args.records, "--records")
    check_output_dir(cache_dir(), "HARDNEG_CACHE")
    datasets = list(STAGED) if args.dataset == "all" else [d for d in args.dataset.split(",") if d]
    objectives = args.objectives or reproduction_objectives(settings)
    if any(not 1 <= e <= settings.epochs for e in args.eval_at):
        raise UserError(f"--eval-at epochs must lie in [1, {settings.epochs}] (the run's --epochs), got {args.eval_at}")
    cells = expand_cells(datasets, objectives, profile=args.profile, seed=args.seed, settings=settings)
    retained = args.retain_memory and retain_freed_memory()
    with flush_denormal(args.flush_denormal) as flushing:  # before the first parallel op
        torch.set_num_threads(args.threads)
        _run(args, cells, {"flush_denormal": flushing, "retain_freed_memory": retained})
    return 0


def _run(args: argparse.Namespace, cells: list, process_settings: dict) -> None:
    """Run and record the cells not recorded yet, then print the summary of all of them."""
    from common.records import append_record, make_record, read_records
    from common.resume import recorded
    from graph.config import cell_of
    from graph.data import load_tu
    from graph.evaluate import check_labels
    from graph.report import RECORD_NEEDS, format_table, summarize
    from graph.train import cell_config, train_and_evaluate

    # Only what the key reads: a diverged run (accuracy null) is recorded, not run again on every resume.
    needs = {k: v for k, v in RECORD_NEEDS["graph"].items() if k.startswith("config.")}
    done = recorded(args.records, "graph", lambda config: cell_of(config).key, needs)
    todo = [c for c in cells if c.key not in done]
    print(f"{len(cells)} runs, {len(cells) - len(todo)} already recorded in {args.records}, {len(todo)} to do")
    loaded = {}
    for cell in todo:
        if cell.dataset not in loaded:
            loaded = {cell.dataset: load_tu(cell.dataset, args.data_dir, download=False if args.no_download else None)}  # keep one data set in memory
            check_labels(loaded[cell.dataset].labels.numpy(), f"data set {cell.dataset}")
        data = loaded[cell.dataset]
        start = time.perf_counter()
        metrics = train_and_evaluate(cell, data, device=args.device, n_jobs=args.threads, progress=not args.no_progress,
                                     compile=args.compile, eval_at=args.eval_at, distinct_nodes=args.distinct_nodes)
        config = {**cell_config(cell, data, args.device), "compile": args.compile, "eval_at": list(args.eval_at),
                  "distinct_nodes": args.distinct_nodes, **process_settings}
        record = make_record(pipeline="graph", config=config, metrics=metrics,
                             seed=cell.seed, wall_time_s=time.perf_counter() - start)
        appended = append_record(args.records, record, key=lambda config: cell_of(config).key, needs=RECORD_NEEDS["graph"])
        print(f"{cell.dataset:14s} {cell.label:28s} repeat {cell.repeat}: {metrics['accuracy']:.2f}% "
              f"({metrics['seconds_per_epoch']:.3f} s/epoch, {record['wall_time_s']:.1f} s)"
              + ("" if appended else "; another run recorded it first, kept theirs"), flush=True)
    wanted = {c.key for c in cells}
    records = [r for r in read_records(args.records, RECORD_NEEDS) if r.get("pipeline") == "graph" and cell_of(r["config"]).key in wanted]
    print(format_table(summarize(records)))


if __name__ == "__main__":
    run_main(main)
