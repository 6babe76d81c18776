"""What ``python -m graph`` runs, and the one identity of a run: a command's planned cells and a record's cell
share :attr:`graph.config.Cell.key`, which answers both "already recorded?" and "may this run resume?"."""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Hashable
from typing import Any

from graph.config import STAGED, Cell, cell_of, expand_cells, reproduction_objectives


def planned_cells(args: argparse.Namespace) -> list[Cell]:
    """Every run of the command (``graph.__main__.parse_args``), recorded or not, in the order it runs them."""
    datasets = list(STAGED) if args.dataset == "all" else [d for d in args.dataset.split(",") if d]
    return expand_cells(datasets, args.objectives or reproduction_objectives(args.settings), profile=args.profile,
                        seed=args.seed, settings=args.settings, eval_at=tuple(args.eval_at))


def planned_keys(argv: list[str]) -> list[Hashable] | None:
    """Keys of the runs ``python -m graph ARGV`` records; without torch, so a dry run over many commands is quick.

    Never None here: every graph command trains. The type is the harness's contract with every pipeline
    (an image or sentence subcommand that records no run answers None).
    """
    from graph.__main__ import parse_args

    return [cell.key for cell in planned_cells(parse_args(argv))]


def record_key(config: dict[str, Any]) -> Hashable:
    """The key of the run a stored record's config describes (any format ``common.records.upgrade`` reads)."""
    return cell_of(config).key


def run(args: argparse.Namespace) -> None:
    """Run and record the command's cells not recorded yet, then print the summary of all of them."""
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)  # raised by PyG's import
    import torch

    from common.allocator import retain_freed_memory
    from common.io import check_output_dir
    from common.paths import cache_dir
    from common.records import check_records_file
    from common.settings import check_device
    from common.subnormal import flush_denormal

    device = check_device(args.device) if args.device else "cuda" if torch.cuda.is_available() else "cpu"
    check_records_file(args.records, "--records")
    check_output_dir(cache_dir(), "HARDNEG_CACHE")
    cells = planned_cells(args)
    retained = args.retain_memory and retain_freed_memory()
    with flush_denormal(args.flush_denormal) as flushing:  # before the first parallel op
        if args.threads:  # 0 keeps torch's choice, so a one-thread queue (OMP_NUM_THREADS=1) is not oversubscribed
            torch.set_num_threads(args.threads)
        _run_cells(args, cells, device, {"flush_denormal": flushing, "retain_freed_memory": retained})


def _run_cells(args: argparse.Namespace, cells: list[Cell], device: str, process_settings: dict[str, bool]) -> None:
    import torch

    from common.records import append_record, make_record, read_records
    from common.resume import recorded
    from graph.data import load_tu
    from graph.evaluate import check_labels
    from graph.report import RECORD_NEEDS, format_table, summarize
    from graph.train import cell_config, train_and_evaluate

    # Only what the key reads: a diverged run (accuracy null) is recorded, not run again on every resume.
    needs = {k: v for k, v in RECORD_NEEDS["graph"].items() if k.startswith("config.")}
    done = recorded(args.records, "graph", record_key, needs)
    todo = [c for c in cells if c.key not in done]
    print(f"{len(cells)} runs, {len(cells) - len(todo)} already recorded in {args.records}, {len(todo)} to do")
    loaded = {}
    for cell in todo:
        if cell.dataset not in loaded:  # keep one data set in memory
            loaded = {cell.dataset: load_tu(cell.dataset, args.data_dir, download=False if args.no_download else None)}
            check_labels(loaded[cell.dataset].labels.numpy(), f"data set {cell.dataset}")
        data = loaded[cell.dataset]
        start = time.perf_counter()
        metrics = train_and_evaluate(cell, data, device=device, n_jobs=torch.get_num_threads(), progress=args.progress,
                                     compile=args.compile, eval_at=args.eval_at, distinct_nodes=args.distinct_nodes)
        config = {**cell_config(cell, data, device), "compile": args.compile, "eval_at": list(args.eval_at),
                  "distinct_nodes": args.distinct_nodes, **process_settings}
        record = make_record(pipeline="graph", config=config, metrics=metrics,
                             seed=cell.seed, wall_time_s=time.perf_counter() - start)
        appended = append_record(args.records, record, key=record_key, needs=RECORD_NEEDS["graph"])
        print(f"{cell.dataset:14s} {cell.label:44s} repeat {cell.repeat}: {metrics['accuracy']:.2f}% "
              f"({metrics['seconds_per_epoch']:.3f} s/epoch, {record['wall_time_s']:.1f} s)"
              + ("" if appended else "; another run recorded it first, kept theirs"), flush=True)
    wanted = {c.key for c in cells}
    records = [r for r in read_records(args.records, RECORD_NEEDS)
               if r.get("pipeline") == "graph" and record_key(r["config"]) in wanted]
    print(format_table(summarize(records)))
