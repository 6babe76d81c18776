"""Objectives from outside the repository (HARDNEG_PLUGINS, the hardneg.objectives entry points): every command sees
them, the harness's children included, and a broken plugin is one line and exit code 2.

The plugin is the README's example, written into the test's folder: the file users copy is the file tested.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.paths import REPO_ROOT, data_dir
from common.records import read_records

needs_mutag = pytest.mark.skipif(not (data_dir() / "tu" / "MUTAG" / "raw").is_dir(), reason="staged MUTAG not present")


def readme_plugin() -> str:
    """The plugin file shown in the README's "Evaluate your own objective"."""
    section = (REPO_ROOT / "README.md").read_text().split("## Evaluate your own objective", 1)[1]
    return re.search(r"```python\n(# my_objectives\.py.*?)```", section, re.S).group(1)


def cli(*args: str, env: dict[str, str], cwd: Path = REPO_ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARDNEG_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "plugin" / "my_objectives.py"
    path.parent.mkdir()
    path.write_text(readme_plugin())
    return path


def test_the_readme_plugin_is_listed_and_validated(plugin):
    env = {"HARDNEG_PLUGINS": str(plugin)}
    listed = cli("benchmarks", "objectives", env=env)
    assert listed.returncode == 0 and re.search(r"^scaled\s", listed.stdout, re.M), listed.stdout + listed.stderr
    bad = cli("benchmarks", "compare", "scaled:scale=11", "--dry-run", env=env)
    assert bad.returncode == 2 and "scale must be in (0, 10]" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_an_installed_entry_point_is_loaded_without_hardneg_plugins(tmp_path, plugin):
    """A package declaring the hardneg.objectives group (here a bare dist-info on PYTHONPATH, as pip leaves it)."""
    site = tmp_path / "site"
    (site / "scaled_objectives-1.0.dist-info").mkdir(parents=True)
    (site / "scaled_objectives.py").write_text(plugin.read_text())
    (site / "scaled_objectives-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: scaled-objectives\nVersion: 1.0\n")
    (site / "scaled_objectives-1.0.dist-info" / "entry_points.txt").write_text("[hardneg.objectives]\nscaled = scaled_objectives\n")
    listed = cli("benchmarks", "objectives", env={"PYTHONPATH": str(site), "HARDNEG_PLUGINS": ""})
    assert listed.returncode == 0 and re.search(r"^scaled\s", listed.stdout, re.M), listed.stderr


@needs_mutag
def test_a_graph_run_a_harness_cell_compare_and_tables_all_see_the_plugin(tmp_path, plugin):
    env = {"HARDNEG_PLUGINS": str(plugin), "HARDNEG_CACHE": str(tmp_path / "cache")}
    records = tmp_path / "records"
    run = cli("graph", "--dataset", "MUTAG", "--epochs", "1", "--repeats", "1", "--objective", "scaled:scale=2",
              "--records", str(records / "by-hand.jsonl"), "--no-progress", env=env)
    assert run.returncode == 0, run.stderr
    trained = [r for r in read_records(records) if r["config"]["objective"]]
    assert [r["config"]["objective"] for r in trained] == [{"name": "scaled", "params": {"scale": 2.0}}]

    # compare --dry-run expands the plugin's cells on the leaderboard protocol (nothing runs, nothing is written)
    before = sorted(records.iterdir())
    dry = cli("benchmarks", "compare", "scaled:scale=2", "--dataset", "MUTAG", "--records", str(records), "--dry-run",
              env=env)
    assert dry.returncode == 0, dry.stderr
    assert "leaderboard/graph/MUTAG/scaled:scale=2" in dry.stdout and "--objective scaled:scale=2" in dry.stdout
    assert sorted(records.iterdir()) == before

    # tables read the records that name the plugin's family
    tables = cli("benchmarks", "tables", "--records", str(records), "--out", str(tmp_path / "tables"), env=env)
    assert tables.returncode == 0, tables.stdout + tables.stderr
    assert "Traceback" not in tables.stderr


@needs_mutag
def test_a_harness_child_started_elsewhere_loads_a_plugin_given_by_relative_path(tmp_path, plugin, monkeypatch, capsys):
    """The harness runs each cell in its own process; the plugin named relative to where the harness started must
    still load there (submitit tasks start in the repository, not here)."""
    from benchmarks.harness import run_todo
    from benchmarks.suites import SuiteCell

    monkeypatch.chdir(plugin.parent.parent)
    monkeypatch.setenv("HARDNEG_PLUGINS", "plugin/my_objectives.py")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cell = SuiteCell("smoke", "smoke/MUTAG/scaled", ("graph", "--dataset", "MUTAG", "--objective", "scaled", "--epochs",
                                                      "1", "--repeats", "1", "--records", "{records}", "--no-progress"))
    path = tmp_path / "records" / "smoke.jsonl"
    assert run_todo([cell], path, progress=False) == 0
    assert "[1/1] smoke/MUTAG/scaled: done in " in capsys.readouterr().out  # no bar in a log: one line per cell
    records = read_records(path)
    assert {r["pipeline"] for r in records} == {"graph", "harness"}
    assert any((r["config"].get("objective") or {}).get("name") == "scaled" for r in records)


BROKEN = {
    "syntax": ("def broken(:\n", "SyntaxError"),
    "raises": ("raise RuntimeError('no GPU library here')\n", "RuntimeError: no GPU library here"),
    "taken": ("from common.objectives import Family, register\nregister(Family('hard', 's', 'c', masked='m:f'))\n",
              "'hard' is registered already"),
    "no-function": ("from common.objectives import Family, register\n"
                    "register(Family('nofn', 's', 'c', masked=f'{__name__}:missing'))\n", "has no function missing"),
    "not-a-path": ("from common.objectives import Family, register\nregister(Family('nopath', 's', 'c', masked='loss'))\n",
                   "is not 'module:function'"),
    "bad-default": ("from common.objectives import Family, Param, register\n"
                    "register(Family('baddef', 's', 'c', params={'k': Param(-1.0, 'h', low=0.0)}, masked='m:f'))\n",
                    "k must be in [0, inf)"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_plugin_is_one_line_naming_it_and_exit_2(tmp_path, kind):
    source, message = BROKEN[kind]
    path = tmp_path / f"{kind}.py"
    path.write_text(source)
    for command in (("benchmarks", "objectives"), ("graph", "--dataset", "MUTAG", "--records", str(tmp_path / "r.jsonl"))):
        result = cli(*command, env={"HARDNEG_PLUGINS": str(path)}, timeout=60)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1 and str(path) in result.stderr and message in result.stderr, result.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_a_missing_plugin_module_or_file_is_one_line(tmp_path):
    for name, message in (("no_such_module_here", "No module named 'no_such_module_here'"),
                          (str(tmp_path / "absent.py"), "does not exist")):
        result = cli("benchmarks", "objectives", env={"HARDNEG_PLUGINS": name}, timeout=60)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_plugin_environment_names_plugins_so_they_load_from_any_folder(tmp_path, monkeypatch):
    from common.plugins import plugin_environment

    monkeypatch.chdir(tmp_path)
    env = plugin_environment({"HARDNEG_PLUGINS": " rel/p.py, some_module ", "PYTHONPATH": "/x"})
    assert env["HARDNEG_PLUGINS"] == f"{tmp_path / 'rel' / 'p.py'},some_module"
    assert env["PYTHONPATH"] == f"{tmp_path}{os.pathsep}/x"
    assert plugin_environment({"PATH": "/bin"}) == {"PATH": "/bin"}
