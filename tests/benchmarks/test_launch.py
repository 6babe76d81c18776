"""The submitit path: a two-cell suite as two local array tasks, real processes, records merged, plugins loaded in
every task and cell; what cannot be submitted is refused before anything is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common.paths import REPO_ROOT, data_dir
from common.records import read_records


@pytest.mark.skipif(not (data_dir() / "tu" / "MUTAG" / "raw").is_dir(), reason="staged MUTAG not present")
def test_local_launcher_runs_each_shard_as_its_own_task_and_the_records_merge(tmp_path):
    # A plugin named relative to where the command starts (tmp_path); tasks start in the repository, and each
    # process that loads the plugin leaves its pid.
    (tmp_path / "probe.py").write_text(f"import os\nwith open({str(tmp_path / 'loads')!r}, 'a') as f:\n"
                                       "    f.write(f'{os.getpid()}\\n')\n")
    env = {**os.environ, "HARDNEG_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "HARDNEG_PLUGINS": "probe.py",
           "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "benchmarks", "run", "smoke", "--launcher", "local", "--tasks", "2",
               "--records", str(tmp_path / "records"), "--log-dir", str(tmp_path / "logs")]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    # the two shard harnesses and the two graph cells each loaded the plugin
    assert len(set((tmp_path / "loads").read_text().split())) >= 4
    assert "all 2 shard(s) finished" in result.stdout
    files = sorted(p.name for p in (tmp_path / "records").glob("*.jsonl"))
    assert files == ["smoke-quick-shard1of2.jsonl", "smoke-quick-shard2of2.jsonl"]
    records = read_records(tmp_path / "records")
    assert sorted(r["config"]["cell"] for r in records if r["pipeline"] == "harness") == [
        "smoke/MUTAG/infograph", "smoke/MUTAG/jsd:tau_plus=0.5,beta=1"]
    graph = [r for r in records if r["pipeline"] == "graph"]
    assert len(graph) == 4 and all(0 <= r["metrics"]["accuracy"] <= 100 for r in graph)  # untrained + trained, each
    # Submitting again finds every cell recorded: the tasks run nothing.
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and len(read_records(tmp_path / "records")) == len(records)


def test_bad_launcher_settings_exit_2_with_one_line(tmp_path):
    for extra, message in ((["--tasks", "0"], "--tasks: must be >= 1"), (["--shard", "1/2"], "give --tasks, not --shard"),
                           (["--launcher", "pbs"], "invalid choice")):
        args = ["--launcher", "local", *extra] if extra[0] != "--launcher" else extra
        result = subprocess.run([sys.executable, "-m", "benchmarks", "run", "smoke", *args, "--records", str(tmp_path)],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def test_slurm_off_a_cluster_and_an_unmakeable_log_dir_stop_before_anything_is_submitted(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no sbatch/srun on this PATH
    for args, message in ((["--launcher", "slurm", "--log-dir", str(tmp_path / "logs")], "needs Slurm's sbatch and srun"),
                          (["--launcher", "local", "--log-dir", str(blocker / "logs")], "cannot create the folder")):
        result = subprocess.run([sys.executable, "-m", "benchmarks", "run", "smoke", *args, "--records", str(tmp_path / "r")],
                                cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert not (tmp_path / "logs").exists() and not (tmp_path / "r").exists()
