"""Suites beyond one machine: one Slurm array job (or local processes) through submitit, a shard per task.

Every array task runs ``python -m benchmarks run SUITE --shard I/N`` in the repository, so it
skips cells already recorded and writes its own records file; the records of all tasks merge
as any others do (``make tables`` reads the folder). ``local`` runs the same path with
submitit's local executor, on this machine.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.cli import UserError
from common.paths import REPO_ROOT


@dataclass(frozen=True)
class Launch:
    """Where and how the array runs (Slurm fields are ignored by the local executor)."""

    launcher: str  # "slurm" or "local"
    tasks: int  # array tasks = shards
    folder: Path  # submitit's logs and pickles
    partition: str | None = None
    time_min: int = 24 * 60
    cpus_per_task: int = 2
    gpus_per_task: int = 0
    parallelism: int = 64  # array tasks running at once


def run_shard(argv: list[str]) -> None:
    """The body of one array task: the harness on one shard, in the repository (a failure fails the task)."""
    result = subprocess.run([sys.executable, "-m", "benchmarks", *argv], cwd=REPO_ROOT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"python -m benchmarks {' '.join(argv)} exited with code {result.returncode}")


def submit(suite: str, profile: str, records: Path, launch: Launch, *, wait: bool, only: tuple[str, ...] = ()) -> int:
    """Submit the suite (its cells matching ``only``, if given) as ``launch.tasks`` shards; with ``wait``, block
    until all finish and report failures."""
    try:
        import submitit
    except ImportError:
        raise UserError("--launcher needs the package submitit (pip install submitit)") from None
    executor = submitit.AutoExecutor(folder=launch.folder, cluster=launch.launcher)
    executor.update_parameters(
        name=f"hardneg-{suite}-{profile}", timeout_min=launch.time_min, cpus_per_task=launch.cpus_per_task,
        gpus_per_node=launch.gpus_per_task, slurm_array_parallelism=launch.parallelism,
        **({"slurm_partition": launch.partition} if launch.partition else {}),
    )
    records = records.resolve()
    shards = [["run", suite, "--profile", profile, "--shard", f"{i}/{launch.tasks}", "--records", str(records),
               *(arg for pattern in only for arg in ("--only", pattern))] for i in range(1, launch.tasks + 1)]
    with executor.batch():
        jobs = [executor.submit(run_shard, argv) for argv in shards]
    print(f"{suite} ({profile}): {len(jobs)} {launch.launcher} task(s), job {jobs[0].job_id.split('_')[0]}; "
          f"logs in {launch.folder}, records in {records}")
    if not wait:
        return 0
    failed = []
    for shard, job in zip(shards, jobs, strict=True):
        try:
            job.result()
        except Exception as err:  # submitit re-raises the task's failure here, whatever it was
            failed.append(f"{shard[5]}: {str(err).strip().splitlines()[-1]}")
    if failed:
        print(f"{len(failed)} shard(s) failed ({'; '.join(failed)}); submit again to rerun what is not recorded")
        return 1
    print(f"all {len(jobs)} shard(s) finished")
    return 0
