"""The harness: which cells of a suite are already done (by any record in the folder, through each pipeline's own
resume key), and running the others, each in its own process, with a harness record per finished cell."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Hashable
from pathlib import Path

from common.errors import UserError
from common.protocols import PROTOCOL, protocol_of


def read_folder(folder: Path) -> list[dict]:
    """Every usable record in the folder (what the tables read), or none when there is no folder yet."""
    from benchmarks.tables import NEEDS
    from common.records import read_records

    if folder.exists() and not folder.is_dir():
        raise UserError(f"--records {folder} is a file; give the folder the shard's records file goes in")
    return read_records(folder, NEEDS) if folder.is_dir() else []


def recorded_cells(cells: list, records: list[dict]) -> set[str]:
    """Keys of the cells with nothing left to run. A pipeline cell: every run of its command in the records at the
    pipeline's current protocol version, by the pipeline's own resume key (a run made by hand, on another machine or
    into another file of the folder counts as much as one made by this harness; one of an older version is history,
    not this run); a leaderboard cell: its scores all in at the current version (the only runs the board pairs).
    A harness record marks a finished cell that neither can check: a leaderboard cell whose run diverged (no score),
    or a command that is no pipeline run."""
    marked = {r.get("config", {}).get("cell") for r in records if r.get("pipeline") == "harness"}
    done: set[str] = set()
    if any(c.yields is not None for c in cells):
        from benchmarks.stage1 import done as scored

        done |= {c.key for c in scored(cells, records)}
    keys: dict[str, set[Hashable]] = {}
    for cell in cells:
        if cell.key in done:
            continue
        planned = None
        if cell.yields is None and cell.argv[0] in PIPELINES:
            pipeline = importlib.import_module(f"{cell.argv[0]}.run")
            planned = pipeline.planned_keys([a.replace("{records}", os.devnull) for a in cell.argv[1:]])
        if planned is None:
            if cell.key in marked:
                done.add(cell.key)
            continue
        if cell.argv[0] not in keys:
            keys[cell.argv[0]] = {pipeline.record_key(r["config"]) for r in records if r.get("pipeline") == cell.argv[0]
                                  and protocol_of(r) == PROTOCOL[cell.argv[0]]}
        if all(k in keys[cell.argv[0]] for k in planned):
            done.add(cell.key)
    return done


#: The pipelines whose ``run`` module answers "which runs would this command record?" (``planned_keys``) with the
#: same identity their own resume check gives a stored record (``record_key``).
PIPELINES = ("graph", "image", "sentence")


def run_todo(todo: list, path: Path, *, progress: bool) -> int:
    """Run each cell's command in its own process (a crash loses that cell only); mark each finished one.

    Without a bar (``progress`` off: a log, not a terminal) each finished cell gets one line instead."""
    from tqdm.auto import tqdm

    from common.plugins import plugin_environment
    from common.records import append_record, make_record, runnable_command

    if not todo:
        return 0
    env = plugin_environment()
    failed = []
    for number, cell in enumerate(tqdm(todo, desc=path.stem, unit="cell", disable=not progress), 1):
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
        if not progress:
            print(f"[{number}/{len(todo)}] {cell.key}: done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; run the same command again to retry them")
        return 1
    return 0


