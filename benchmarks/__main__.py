"""python -m benchmarks: list and run the experiment suites, compare one objective with the leaderboard's
baseline, regenerate the tables."""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import re
from pathlib import Path

from benchmarks.harness import read_folder, recorded_cells, run_todo
from common.cli import Parser, at_least, run_main
from common.errors import UserError

RECORDS = Path(__file__).resolve().parent.parent / "tables" / "records"
IMAGE_FLAGS = ("bf16", "channels_last", "compile")  # switches forwarded to image cells with --device


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 1/4, got {text!r}") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N, got {text}")
    return index, count


def _harness_flags(p: argparse.ArgumentParser) -> None:
    """What ``run`` and ``compare`` share: records, shards, dry run, the image cells' device, the launcher."""
    p.add_argument("--shard", type=_shard, default=(1, 1),
                   help="I/N: run the I-th of N deterministic slices (machines or GPUs share the cells)")
    p.add_argument("--records", type=Path, default=RECORDS,
                   help="folder of JSONL run records: every record there counts as done, however it was made; "
                   "new ones go to a file of this shard in it (default: tables/records)")
    p.add_argument("--dry-run", action="store_true", help="list the cells that would run; run or submit nothing")
    gpu = p.add_argument_group("image cells on a GPU (appended to every image cell's command; runtime settings, "
                               "so recorded runs still count as done)")
    gpu.add_argument("--device", default=None, help="torch device of the image cells, e.g. cuda (default: the profile's)")
    gpu.add_argument("--bf16", action="store_true", help="image cells: bfloat16 autocast (GPU)")
    gpu.add_argument("--channels-last", action="store_true", help="image cells: channels-last memory format (GPU)")
    gpu.add_argument("--compile", action="store_true", help="image cells: torch.compile the model")
    cluster = p.add_argument_group("beyond one machine (submitit; without --launcher the cells run here, in order)")
    cluster.add_argument("--launcher", choices=("slurm", "local"), default=None,
                         help="slurm: one array job, a shard per task; local: the same through submitit's local "
                         "executor on this machine (for testing the path)")
    cluster.add_argument("--tasks", type=at_least(1), default=None, help="array tasks (shards; default: one per cell, at most 64)")
    cluster.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    cluster.add_argument("--time", type=at_least(1), default=24 * 60, help="minutes per task before Slurm stops it (default: 1440)")
    cluster.add_argument("--cpus-per-task", type=at_least(1), default=2, help="CPUs per task (default: 2)")
    cluster.add_argument("--gpus-per-task", type=at_least(0), default=None,
                         help="GPUs per task (default: 1 with --device cuda..., else 0)")
    cluster.add_argument("--array-parallelism", type=at_least(1), default=64, help="tasks running at once (default: 64)")
    cluster.add_argument("--wait", action=argparse.BooleanOptionalAction, default=None,
                         help="wait for every task and report failures (default: yes for local, no for slurm)")
    cluster.add_argument("--log-dir", type=Path, default=Path("runs/submitit"), help="submitit's logs (default: runs/submitit)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m benchmarks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("list", help="show the suites and their cell counts")
    objectives = sub.add_parser("objectives", help="list the registered objectives: parameters with defaults and "
                                "ranges, citations, reference code and deviations")
    objectives.add_argument("--where", action="store_true",
                            help="print each family's implementation as file:line instead (imports the loss code)")
    run = sub.add_parser("run", help="run every cell of a suite that has no record yet")
    run.add_argument("suite", help="a suite name: `python -m benchmarks list` shows them with their cell counts")
    run.add_argument("--profile", default="quick", help="quick (CPU-sized) or paper (published protocol)")
    run.add_argument("--only", action="append", default=[], metavar="GLOB",
                     help="run only the cells whose key matches (shell-style, repeatable; keys as --dry-run lists them), "
                     "e.g. 'leaderboard/confirm/*' or 'leaderboard/graph/MUTAG/*'; shards split the matching cells")
    _harness_flags(run)
    compare = sub.add_parser(
        "compare", help="one objective on the leaderboard's stage-1 protocol, paired with the committed baseline runs",
        description="Run the leaderboard's stage-1 cells of one objective that have no record yet (graph: paper "
        "protocol, repeats 0-9; image: quick profile, seeds 0-3; sentence: quick-thought quick profile, seeds 0-2), "
        "then print per column its paired difference to the baseline: mean ± s.e., p, the minimum detectable effect "
        "and a verdict. Judged alone: the committed board's correction families are left as they are.")
    compare.add_argument("spec", help="objective spec, NAME or NAME:key=value,... (a plugin's too: HARDNEG_PLUGINS)")
    compare.add_argument("--modality", action="append", choices=("image", "sentence", "graph"), default=[],
                         help="only these modalities' columns (repeatable; default: all)")
    compare.add_argument("--dataset", action="append", default=[], metavar="NAME",
                         help="only these graph data sets' columns (repeatable; implies --modality graph)")
    _harness_flags(compare)
    tables = sub.add_parser("tables", help="regenerate tables/ from the run records")
    tables.add_argument("--records", type=Path, default=RECORDS, help="folder of JSONL run records (default: tables/records)")
    tables.add_argument("--out", type=Path, default=RECORDS.parent, help="folder the tables are written to (default: tables)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "objectives" and args.where:
        from common.objectives import REGISTRY, where

        for name, family in REGISTRY.items():
            print(f"{name:10s} " + "  ".join(f"{form} {place}" for form, place in where(family).items()))
        return 0
    if args.command == "objectives":
        from common.objectives import listing

        print(listing())
        return 0
    if args.command == "tables":
        from benchmarks.tables import main as tables_main

        _check_out_folder(args.out)
        return tables_main(["--records", str(args.records), "--out", str(args.out)])
    from benchmarks.suites import PROFILES, SUITES, expand, shard

    if args.command == "list":
        for name in SUITES:
            counts = ", ".join(f"{p}: {len(expand(name, p))} cells" for p in PROFILES)
            print(f"{name:11s} {counts}")
        return 0
    _check_gpus(args)
    if args.command == "compare":
        return _compare(args)
    try:
        cells = expand(args.suite, args.profile)
    except ValueError as err:
        raise UserError(str(err)) from None
    if args.only:
        cells = [c for c in cells if any(fnmatch.fnmatchcase(c.key, pattern) for pattern in args.only)]
        if not cells:
            raise UserError(f"no cell of {args.suite} matches --only {' '.join(args.only)}; "
                            f"`python -m benchmarks run {args.suite} --dry-run` lists the keys")
    cells = _with_image_flags(shard(cells, *args.shard), args)
    name = f"{args.suite}-{args.profile}"
    if args.launcher is not None and not args.dry_run:
        command = ["run", args.suite, "--profile", args.profile, *(a for p in args.only for a in ("--only", p))]
        return _launch(args, name, command, len(cells))
    return run_cells(cells, args, name)


def _check_out_folder(out: Path) -> None:
    """``tables --out`` must be a folder this process can write, found before any table is computed."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give the folder the tables are written to")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"--out {out}: {existing} is a file, so the folder cannot be made; give another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: {existing} is not writable; give a folder you can write to")


def _check_gpus(args: argparse.Namespace) -> None:
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
    wait = args.wait if args.wait is not None else args.launcher == "local"
    return submit([*command, *_image_flags(args)], name, args.records, launch, wait=wait)


def _tasks(args: argparse.Namespace, cells: int) -> int:
    return args.tasks if args.tasks is not None else max(1, min(cells, 64))


def _compare(args: argparse.Namespace) -> int:
    from benchmarks import compare
    from benchmarks.suites import shard

    try:
        cells = compare.cells(args.spec, tuple(args.modality), tuple(args.dataset))
    except ValueError as err:
        raise UserError(str(err)) from None
    spec = cells[0].yields.spec
    name = "compare-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec)
    cells = _with_image_flags(shard(cells, *args.shard), args)
    if args.launcher is not None and not args.dry_run:
        command = ["compare", spec, *(a for m in args.modality for a in ("--modality", m)),
                   *(a for d in args.dataset for a in ("--dataset", d))]
        code = _launch(args, name, command, len(cells))
        waited = args.wait if args.wait is not None else args.launcher == "local"
        if not waited:
            return code
    else:
        code = run_cells(cells, args, name)
        if args.dry_run:
            return code
    print("\n".join(compare.report(spec, cells, read_folder(args.records))))
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
    return run_todo(todo, path)


def _script(package: str) -> None:
    """A console script (``pip install .``) that runs ``python -m PACKAGE`` with the script's arguments."""
    import runpy

    runpy.run_module(package, run_name="__main__", alter_sys=True)


def graph_script() -> None:
    _script("graph")


def image_script() -> None:
    _script("image")


def sentence_script() -> None:
    _script("sentence")


def bench_script() -> None:
    run_main(main)  # this very module: runpy would import it a second time


if __name__ == "__main__":
    run_main(main)
