"""What ``python -m benchmarks`` does once its arguments are parsed: list the suites, run (or submit) a suite's
cells that have no record yet, compare one objective with the leaderboard's baseline. The CLI only parses."""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import re
import sys
from pathlib import Path

from benchmarks.harness import read_folder, recorded_cells, run_todo
from benchmarks.suites import PROFILES, SUITES, expand, shard
from common.errors import UserError

IMAGE_FLAGS = ("bf16", "channels_last", "compile")  # switches forwarded to image cells with --device


def list_suites() -> int:
    """``list``: every suite with its cell count per profile."""
    for name in SUITES:
        counts = ", ".join(f"{p}: {len(expand(name, p))} cells" for p in PROFILES)
        print(f"{name:11s} {counts}")
    return 0


def run_suite(args: argparse.Namespace) -> int:
    """``run SUITE``: its cells (``--only``, ``--shard``), run here or submitted (``--launcher``).

    Run here as one shard, it goes on until the suite asks for nothing new: the leaderboard's edge steps and
    temperature controls, and the robustness arms, are built from finished results, so one command runs them too.
    """
    check_gpus(args)
    try:
        cells = _matching(args)
    except ValueError as err:
        raise UserError(str(err)) from None
    if not cells:
        raise UserError(f"no cell of {args.suite} matches --only {' '.join(args.only)}; "
                        f"`python -m benchmarks run {args.suite} --dry-run` lists the keys")
    if args.suite == "leaderboard":  # a round changed after its fresh seeds ran must not gather more under a new digest
        from benchmarks.leaderboard import check_rounds

        check_rounds(read_folder(args.records))
    if args.suite == "robustness":  # say which columns wait for stage 1: their arms are not in the suite yet
        from benchmarks.robustness_cells import committed_plan, waiting_line

        if waiting := committed_plan().waiting:
            print(waiting_line(waiting), file=sys.stderr)
    cells = _with_image_flags(shard(cells, *args.shard), args)
    name = f"{args.suite}-{args.profile}"
    if args.launcher is not None and not args.dry_run:
        command = ["run", args.suite, "--profile", args.profile, *(a for p in args.only for a in ("--only", p))]
        return _launch(args, name, command, len(cells))
    code = run_cells(cells, args, name)
    seen = {c.key for c in cells}
    # Other shards' assignments would shift as the suite grows, so only an unsharded run follows it.
    while code == 0 and not args.dry_run and args.shard == (1, 1):
        _reread_results()
        more = [c for c in _with_image_flags(_matching(args), args) if c.key not in seen]
        if not more:
            break
        print(f"the finished cells call for {len(more)} more (edge steps, temperature controls or arms); running them")
        seen |= {c.key for c in more}
        code = run_cells(more, args, name)
    return code


def _matching(args: argparse.Namespace) -> list:
    """The suite's cells as of now, those matching ``--only`` (all without it)."""
    cells = expand(args.suite, args.profile)
    return [c for c in cells if not args.only or any(fnmatch.fnmatchcase(c.key, p) for p in args.only)]


def _reread_results() -> None:
    """Forget the committed scores read once per process, so the suite is built again from what has finished."""
    from benchmarks import robustness_cells, stage1

    stage1.committed_scores.cache_clear()
    robustness_cells.committed_plan.cache_clear()


def check_out_folder(out: Path) -> None:
    """``tables --out`` must be a folder this process can write, found before any table is computed."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give the folder the tables are written to")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"--out {out}: {existing} is a file, so the folder cannot be made; give another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: {existing} is not writable; give a folder you can write to")


def check_gpus(args: argparse.Namespace) -> None:
    """``--gpus-per-task`` follows ``--device``: a cuda device gets one GPU per task unless told otherwise."""
    cuda = (args.device or "").startswith("cuda")
    if args.gpus_per_task is None:
        args.gpus_per_task = 1 if cuda else 0
    elif cuda and args.gpus_per_task == 0 and args.launcher is not None:
        raise UserError(f"--device {args.device} with --gpus-per-task 0: the tasks would have no GPU to run on")
    if any(getattr(args, flag) for flag in IMAGE_FLAGS) and args.device is None:
        raise UserError("--bf16, --channels-last and --compile go with --device (e.g. --device cuda)")


def _image_flags(args: argparse.Namespace) -> list[str]:
    """``--device`` and the GPU switches as given, for image cells (and the array tasks that run them)."""
    return [*(("--device", args.device) if args.device else ()),
            *(f"--{flag.replace('_', '-')}" for flag in IMAGE_FLAGS if getattr(args, flag))]


def _with_image_flags(cells: list, args: argparse.Namespace) -> list:
    """The cells with the image flags appended to every image cell's command."""
    flags = _image_flags(args)
    return [dataclasses.replace(c, argv=(*c.argv, *flags)) if c.argv[0] == "image" and flags else c for c in cells]


def _launch(args: argparse.Namespace, name: str, command: list[str], cells: int) -> int:
    from benchmarks.launch import Launch, submit

    if args.shard != (1, 1):
        raise UserError("--launcher makes the shards itself: give --tasks, not --shard")
    launch = Launch(args.launcher, _tasks(args, cells), args.log_dir, args.partition, args.time, args.cpus_per_task,
                    args.gpus_per_task, args.array_parallelism)
    return submit([*command, *_image_flags(args)], name, args.records, launch, wait=_waits(args))


def _waits(args: argparse.Namespace) -> bool:
    """Whether a launch waits for its tasks: ``--wait``/``--no-wait``, else only the local launcher does."""
    return args.wait if args.wait is not None else args.launcher == "local"


def _tasks(args: argparse.Namespace, cells: int) -> int:
    return args.tasks if args.tasks is not None else max(1, min(cells, 64))


def compare(args: argparse.Namespace) -> int:
    """``compare SPEC``: run the cells that score SPEC against the baseline, then report the comparison."""
    from benchmarks import compare as comparison

    check_gpus(args)
    try:
        cells = comparison.cells(args.spec, tuple(args.modality), tuple(args.dataset))
    except ValueError as err:
        raise UserError(str(err)) from None
    spec = cells[0].yields.spec
    name = "compare-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec)
    cells = _with_image_flags(shard(cells, *args.shard), args)
    if args.launcher is not None and not args.dry_run:
        command = ["compare", spec, *(a for m in args.modality for a in ("--modality", m)),
                   *(a for d in args.dataset for a in ("--dataset", d))]
        code = _launch(args, name, command, len(cells))
        if not _waits(args):
            return code
    else:
        code = run_cells(cells, args, name)
        if args.dry_run:
            return code
    print("\n".join(comparison.report(spec, cells, read_folder(args.records))))
    return code


def run_cells(cells: list, args: argparse.Namespace, name: str) -> int:
    """Run, each in its own process, the cells with nothing recorded yet; with ``--dry-run`` only list them (and,
    with ``--launcher``, how they would be submitted)."""
    from common.records import runnable_command

    index, count = args.shard
    records = read_folder(args.records)
    path = args.records / f"{name}-shard{index}of{count}.jsonl"
    done = recorded_cells(cells, records)
    todo = [c for c in cells if c.key not in done]
    print(f"{name}, shard {index}/{count}: {len(cells)} cells, {len(cells) - len(todo)} done, {len(todo)} to run -> {path}")
    if args.dry_run:
        priced = any(c.yields is not None for c in todo)  # leaderboard and compare cells: CPU-hours from medians
        if priced:
            from benchmarks.stage1 import cell_hours, time_left

        hours = cell_hours(todo, records) if priced else {}
        for cell in todo:
            cost = f" [{hours[cell.key]:.2f} CPU-h]" if cell.key in hours else ""
            print(f"  {cell.key}:{cost} {runnable_command(['-m', *(a.replace('{records}', str(path)) for a in cell.argv)])}")
        if priced:
            print(time_left(todo, records))
        if args.launcher is not None:
            print(f"would submit {_tasks(args, len(todo))} {args.launcher} task(s); dry run: nothing submitted")
        return 0
    return run_todo(todo, path, progress=args.progress)
