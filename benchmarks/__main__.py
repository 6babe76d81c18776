"""python -m benchmarks: list and run the experiment suites, regenerate the tables."""

from __future__ import annotations

import argparse
import fnmatch
import subprocess
import sys
import time
from pathlib import Path

from common.cli import Parser, UserError, at_least, run_main

RECORDS = Path(__file__).resolve().parent.parent / "tables" / "records"


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 1/4, got {text!r}") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N, got {text}")
    return index, count


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m benchmarks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("list", help="show the suites and their cell counts")
    sub.add_parser("objectives", help="list the registered objectives: parameters with defaults and ranges, citations")
    run = sub.add_parser("run", help="run every cell of a suite that has no record yet")
    run.add_argument("suite", help="a suite name: `python -m benchmarks list` shows them with their cell counts")
    run.add_argument("--profile", default="quick", help="quick (CPU-sized) or paper (published protocol)")
    run.add_argument("--shard", type=_shard, default=(1, 1),
                     help="I/N: run the I-th of N deterministic slices (machines or GPUs share a suite)")
    run.add_argument("--records", type=Path, default=RECORDS, help="folder of JSONL run records")
    run.add_argument("--only", action="append", default=[], metavar="GLOB",
                     help="run only the cells whose key matches (shell-style, repeatable; keys as --dry-run lists them), "
                     "e.g. 'leaderboard/confirm/*' or 'leaderboard/graph/MUTAG/*'; shards split the matching cells")
    run.add_argument("--dry-run", action="store_true", help="list the cells that would run, run nothing")
    cluster = run.add_argument_group("beyond one machine (submitit; without --launcher the cells run here, in order)")
    cluster.add_argument("--launcher", choices=("slurm", "local"), default=None,
                         help="slurm: one array job, a shard per task; local: the same through submitit's local "
                         "executor on this machine (for testing the path)")
    cluster.add_argument("--tasks", type=at_least(1), default=None, help="array tasks (shards; default: one per cell, at most 64)")
    cluster.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    cluster.add_argument("--time", type=at_least(1), default=24 * 60, help="minutes per task before Slurm stops it (default: 1440)")
    cluster.add_argument("--cpus-per-task", type=at_least(1), default=2, help="CPUs per task (default: 2)")
    cluster.add_argument("--gpus-per-task", type=at_least(0), default=0, help="GPUs per task (default: 0)")
    cluster.add_argument("--array-parallelism", type=at_least(1), default=64, help="tasks running at once (default: 64)")
    cluster.add_argument("--wait", action=argparse.BooleanOptionalAction, default=None,
                         help="wait for every task and report failures (default: yes for local, no for slurm)")
    cluster.add_argument("--log-dir", type=Path, default=Path("runs/submitit"), help="submitit's logs (default: runs/submitit)")
    tables = sub.add_parser("tables", help="regenerate tables/ from the run records")
    tables.add_argument("--records", type=Path, default=RECORDS, help="folder of JSONL run records (default: tables/records)")
    tables.add_argument("--out", type=Path, default=RECORDS.parent, help="folder the tables are written to (default: tables)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "objectives":
        from common.objectives import listing

        print(listing())
        return 0
    from benchmarks.suites import PROFILES, SUITES, expand, shard

    if args.command == "list":
        for name in SUITES:
            counts = ", ".join(f"{p}: {len(expand(name, p))} cells" for p in PROFILES)
            print(f"{name:11s} {counts}")
        return 0
    if args.command == "tables":
        from benchmarks.tables import main as tables_main

        return tables_main(["--records", str(args.records), "--out", str(args.out)])
    try:
        cells = expand(args.suite, args.profile)
    except ValueError as err:
        raise UserError(str(err)) from None
    if args.only:
        cells = [c for c in cells if any(fnmatch.fnmatchcase(c.key, pattern) for pattern in args.only)]
        if not cells:
            raise UserError(f"no cell of {args.suite} matches --only {' '.join(args.only)}; "
                            f"`python -m benchmarks run {args.suite} --dry-run` lists the keys")
    cells = shard(cells, *args.shard)
    if args.launcher is not None:
        return _launch(args, len(cells))
    return run_cells(cells, args)


def _launch(args: argparse.Namespace, cells: int) -> int:
    from benchmarks.launch import Launch, submit

    if args.shard != (1, 1):
        raise UserError("--launcher makes the shards itself: give --tasks, not --shard")
    tasks = args.tasks if args.tasks is not None else max(1, min(cells, 64))
    launch = Launch(args.launcher, tasks, args.log_dir, args.partition, args.time, args.cpus_per_task,
                    args.gpus_per_task, args.array_parallelism)
    wait = args.wait if args.wait is not None else args.launcher == "local"
    return submit(args.suite, args.profile, args.records, launch, wait=wait, only=tuple(args.only))


def run_cells(cells: list, args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from common.records import append_record, make_record, runnable_command
    from common.resume import recorded

    index, count = args.shard
    if args.records.exists() and not args.records.is_dir():
        raise UserError(f"--records {args.records} is a file; give the folder the shard's records file goes in")
    records = args.records / f"{args.suite}-{args.profile}-shard{index}of{count}.jsonl"
    done = set(recorded(args.records, "harness", lambda config: config["cell"]))
    if any(c.yields is not None for c in cells):  # leaderboard cells are done once their scores are in, however run
        from benchmarks.leaderboard import done as scored
        from benchmarks.tables import NEEDS
        from common.records import read_records

        done |= {c.key for c in scored(cells, read_records(args.records, NEEDS) if args.records.is_dir() else [])}
    todo = [c for c in cells if c.key not in done]
    print(f"{args.suite} ({args.profile}), shard {index}/{count}: {len(cells)} cells, {len(cells) - len(todo)} done, "
          f"{len(todo)} to run -> {records}")
    if args.dry_run:
        for cell in todo:
            print(f"  {cell.key}: {runnable_command(['-m', *(a.replace('{records}', str(records)) for a in cell.argv)])}")
        return 0
    failed = []
    for cell in tqdm(todo, desc=args.suite, unit="cell"):
        argv = [a.replace("{records}", str(records)) for a in cell.argv]
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", *argv], check=False)
        if result.returncode != 0:
            failed.append(cell.key)
            tqdm.write(f"cell {cell.key} failed with exit code {result.returncode}; the others go on")
            continue
        append_record(records, make_record(pipeline="harness", config={"cell": cell.key, "suite": cell.suite},
                                           metrics={}, seed=0, wall_time_s=time.perf_counter() - start,
                                           command=runnable_command(["-m", *argv])))
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; run the same command again to retry them")
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
