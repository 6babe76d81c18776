"""The harness: which cells of a suite are already done (by any record in the folder, through each pipeline's own
resume key), and running the others, each in its own process, with a harness record per finished cell."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.settings import config_from_args


def read_folder(folder: Path) -> list[dict]:
    """Every usable record in the folder (what the tables read), or none when there is no folder yet."""
    from benchmarks.tables import NEEDS
    from common.records import read_records

    if folder.exists() and not folder.is_dir():
        raise UserError(f"--records {folder} is a file; give the folder the shard's records file goes in")
    return read_records(folder, NEEDS) if folder.is_dir() else []


def recorded_cells(cells: list, records: list[dict]) -> set[str]:
    """Keys of the cells with nothing left to run: marked by a harness record; for a leaderboard cell, its scores
    all in at the current protocol version (the only runs the board pairs); for any other cell, every run of its
    command already in the records by the pipeline's own resume key (a run made by hand, on another machine or
    into another file of the folder counts as much as one made by this harness)."""
    done = {r.get("config", {}).get("cell") for r in records if r.get("pipeline") == "harness"}
    if any(c.yields is not None for c in cells):
        from benchmarks.stage1 import done as scored

        done |= {c.key for c in scored(cells, records)}
    checks = {"graph": _graph_runs, "image": _image_runs, "sentence": _sentence_runs}
    keys: dict[str, set[Hashable]] = {}
    for cell in cells:
        check = checks.get(cell.argv[0])
        if cell.key in done or check is None or cell.yields is not None:
            continue
        argv = [a.replace("{records}", os.devnull) for a in cell.argv[1:]]
        planned, key = check(argv)
        if planned is None:
            continue
        if cell.argv[0] not in keys:
            keys[cell.argv[0]] = {key(r["config"]) for r in records if r.get("pipeline") == cell.argv[0]}
        if all(k in keys[cell.argv[0]] for k in planned):
            done.add(cell.key)
    return done


KeyFn = Callable[[dict[str, Any]], Hashable]


def _graph_runs(argv: list[str]) -> tuple[list[Hashable] | None, KeyFn]:
    """The runs ``python -m graph ARGV`` makes and the key its resume check compares (``graph.__main__._run``)."""
    from graph.__main__ import parse_args as graph_args
    from graph.config import PROFILES, STAGED, cell_of, expand_cells, reproduction_objectives

    args = graph_args(argv)
    settings = config_from_args(args, PROFILES[args.profile])
    datasets = list(STAGED) if args.dataset == "all" else [d for d in args.dataset.split(",") if d]
    cells = expand_cells(datasets, args.objectives or reproduction_objectives(settings), profile=args.profile,
                         seed=args.seed, settings=settings)
    return [c.key for c in cells], lambda config: cell_of(config).key


#: Image config fields read from the data set, not the command; a function of the settings that are in the key.
_IMAGE_DATA_FIELDS = ("dataset_label", "pretrain_images", "test_images")


def _image_runs(argv: list[str]) -> tuple[list[Hashable] | None, KeyFn]:
    """The runs ``python -m image run ARGV`` makes and the key its resume check compares (``image.report.identity``,
    less the fields it reads from the loaded data)."""
    from image.__main__ import DEFAULT_OBJECTIVES, _arch_label, _config, _objectives, build_parser
    from image.config import objective_tag
    from image.report import identity

    def key(config: dict[str, Any]) -> Hashable:
        return identity({k: v for k, v in config.items() if k not in _IMAGE_DATA_FIELDS})

    args = build_parser().parse_args(argv)
    if args.command != "run":
        return None, key
    cfg = _config(args)
    common = {**dataclasses.asdict(cfg), "profile": args.profile, "arch_label": _arch_label(cfg)}
    runs = [{**common, "method": "random-init"}]
    for objective in _objectives(args, DEFAULT_OBJECTIVES):
        anneal = args.anneal_beta and "beta" in dict(objective.params)
        runs.append({**common, "method": objective_tag(objective, anneal), "objective": objective.to_dict(),
                     "anneal_beta": anneal})
    return [key(r) for r in runs], key


def _sentence_runs(argv: list[str]) -> tuple[list[Hashable] | None, KeyFn]:
    """The rows ``python -m sentence run ARGV`` evaluates and the key its resume check compares
    (``sentence.__main__._already_recorded``)."""
    from sentence.__main__ import DEFAULT_OBJECTIVES, _objectives, build_parser
    from sentence.config import get_config, objective_tag
    from sentence.report import identity as key
    from sentence.senteval import EVALUATOR

    args = build_parser().parse_args(argv)
    if args.command != "run":
        return None, key
    config = get_config(args.profile, eval={"inner_kfold": getattr(args, "inner_kfold", None)})
    config = dataclasses.replace(config, train=config_from_args(args, config.train))
    config = config if args.seed is None else dataclasses.replace(config, seed=args.seed)
    rows = [f"qt-{objective_tag(o)}" for o in _objectives(args, DEFAULT_OBJECTIVES)]
    rows += ([] if args.no_random else ["random"]) + ([] if args.no_minilm else ["minilm"])
    return [key({"row": row, "settings": config.to_dict(), "tasks": list(args.tasks), "evaluator": EVALUATOR})
            for row in rows], key


def run_todo(todo: list, path: Path) -> int:
    """Run each cell's command in its own process (a crash loses that cell only); mark each finished one."""
    from tqdm.auto import tqdm

    from common.plugins import plugin_environment
    from common.records import append_record, make_record, runnable_command

    if not todo:
        return 0
    env = plugin_environment()
    failed = []
    for cell in tqdm(todo, desc=path.stem, unit="cell"):
        argv = [a.replace("{records}", str(path)) for a in cell.argv]
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", *argv], env=env, check=False)
        if result.returncode != 0:
            failed.append(cell.key)
            tqdm.write(f"cell {cell.key} failed with exit code {result.returncode}; the others go on")
            continue
        append_record(path, make_record(pipeline="harness", config={"cell": cell.key, "suite": cell.suite,
                                                                   **({"round": cell.round} if cell.round else {})},
                                        metrics={}, seed=0, wall_time_s=time.perf_counter() - start,
                                        command=runnable_command(["-m", *argv])))
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; run the same command again to retry them")
        return 1
    return 0


