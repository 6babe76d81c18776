"""Suites beyond one machine: one Slurm array job (or local processes) through submitit, a shard per task.

Every array task runs ``python -m benchmarks run SUITE --shard I/N`` (or ``compare SPEC --shard I/N``) in the
repository, so it skips cells already recorded and writes its own records file; the records of all tasks
merge as any others do (``make tables`` reads the folder). ``local`` runs the same path with submitit's
local executor, on this machine. Everything that can be refused (no Slurm here, a log folder that cannot
be made) is refused before the first task is submitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
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


def run_shard(argv: list[str], env: dict[str, str]) -> None:
    """The body of one array task: the harness on one shard, in the repository, with the submitting process's
    plugin settings (``env``) over the task's own environment; a failure fails the task."""
    result = subprocess.run([sys.executable, "-m", "benchmarks", *argv], cwd=REPO_ROOT, env={**os.environ, **env},
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"python -m benchmarks {' '.join(argv)} exited with code {result.returncode}")


def check_launch(launch: Launch) -> None:
    """Refuse, before anything is submitted, what submitit would only fail on later (or with a traceback)."""
    if launch.launcher == "slurm" and not (shutil.which("sbatch") and shutil.which("srun")):
        raise UserError("--launcher slurm needs Slurm's sbatch and srun on PATH, and they are not here: submit from "
                        "the cluster's login node, or run on this machine with --launcher local (or no --launcher)")
    folder = launch.folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--log-dir {folder}: cannot create the folder ({err.strerror}); give a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--log-dir {folder} is not writable; give a writable folder")


def submit(command: list[str], name: str, records: Path, launch: Launch, *, wait: bool) -> int:
    """Submit ``python -m benchmarks COMMAND --shard I/N --records RECORDS`` as ``launch.tasks`` array tasks; with
    ``wait``, block until all finish and report failures."""
    from common.plugins import ENV, plugin_environment

    check_launch(launch)
    try:
        import submitit
    except ImportError:
        raise UserError("--launcher needs the package submitit (pip install submitit)") from None
    executor = submitit.AutoExecutor(folder=launch.folder, cluster=launch.launcher)
    executor.update_parameters(
        name=f"hardneg-{name}", timeout_min=launch.time_min, cpus_per_task=launch.cpus_per_task,
        gpus_per_node=launch.gpus_per_task, slurm_array_parallelism=launch.parallelism,
        **({"slurm_partition": launch.partition} if launch.partition else {}),
    )
    records = records.resolve()
    env = {k: v for k, v in plugin_environment().items() if k in (ENV, "PYTHONPATH")}
    shards = [f"{i}/{launch.tasks}" for i in range(1, launch.tasks + 1)]
    with executor.batch():
        jobs = [executor.submit(run_shard, [*command, "--shard", shard, "--records", str(records)], env)
                for shard in shards]
    print(f"{name}: {len(jobs)} {launch.launcher} task(s), job {jobs[0].job_id.split('_')[0]}; "
          f"logs in {launch.folder}, records in {records}")
    if not wait:
        return 0
    failed = []
    for shard, job in zip(shards, jobs, strict=True):
        try:
            job.result()
        except Exception as err:  # submitit re-raises the task's failure here, whatever it was
            failed.append(f"{shard}: {str(err).strip().splitlines()[-1]}")
    if failed:
        print(f"{len(failed)} shard(s) failed ({'; '.join(failed)}); submit again to rerun what is not recorded")
        return 1
    print(f"all {len(jobs)} shard(s) finished")
    return 0
