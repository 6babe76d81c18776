"""python -m benchmarks: list and run the experiment suites, compare one objective with the leaderboard's
baseline, regenerate the tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.suites import MODALITIES
from common.cli import Parser, at_least, progress_flag, run_main, show_progress

RECORDS = Path(__file__).resolve().parent.parent / "tables" / "records"


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
    progress_flag(p)
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
                     "e.g. 'leaderboard/fresh/*' (stage 2) or 'leaderboard/graph/MUTAG/*'; shards split the matching cells")
    _harness_flags(run)
    compare = sub.add_parser(
        "compare", help="one objective on the leaderboard's stage-1 protocol, paired with the committed baseline runs",
        description="Run the leaderboard's stage-1 cells of one objective that have no record yet (graph: paper "
        "protocol, repeats 0-9; image: quick profile, seeds 0-3; sentence: quick-thought quick profile, seeds 0-2), "
        "then print per column its paired difference to the baseline: mean ± s.e., p, the minimum detectable effect "
        "and a verdict. Judged alone: the committed board's correction families are left as they are.")
    compare.add_argument("spec", help="objective spec, NAME or NAME:key=value,... (a plugin's too: HARDNEG_PLUGINS)")
    compare.add_argument("--modality", action="append", choices=MODALITIES, default=[],
                         help="only these modalities' columns (repeatable; default: all)")
    compare.add_argument("--dataset", action="append", default=[], metavar="NAME",
                         help="only these graph data sets' columns (repeatable; implies --modality graph)")
    _harness_flags(compare)
    chosen = sub.add_parser("selections", help="stage 1's selected configuration of every family per column, "
                            "from the committed records (tab-separated: modality, column, family, spec, "
                            "temperature, stage-1 mean; a family still waiting says why)")
    chosen.add_argument("--modality", action="append", choices=MODALITIES, default=[],
                        help="only these modalities (repeatable; default: all)")
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
        from benchmarks.run import check_out_folder
        from benchmarks.tables import main as tables_main

        check_out_folder(args.out)
        return tables_main(["--records", str(args.records), "--out", str(args.out)])
    if args.command == "selections":
        from benchmarks.stage1 import committed_scores, selected_rows

        for modality in args.modality or MODALITIES:
            for row in selected_rows(list(committed_scores()), modality):
                print("\t".join(row))
        return 0
    if args.command == "list":
        from benchmarks.run import list_suites

        return list_suites()
    from benchmarks.run import compare, run_suite

    args.progress = show_progress(args)
    return compare(args) if args.command == "compare" else run_suite(args)


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
