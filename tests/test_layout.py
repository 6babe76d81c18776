"""Imports run benchmarks -> pipelines -> common and never back up; importing a module has no side effects."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from common.paths import REPO_ROOT

PIPELINES = ("graph", "image", "sentence")


def _imports(path: Path) -> set[str]:
    """Top-level packages a module imports (anywhere in it, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_imports_never_point_back_up() -> None:
    allowed = {"common": {"common"}, **{p: {p, "common"} for p in PIPELINES}}
    ours = {"common", "benchmarks", *PIPELINES}
    wrong = []
    for package, may in allowed.items():
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            bad = (_imports(path) & ours) - may
            if bad:
                wrong.append(f"{path.relative_to(REPO_ROOT)} imports {', '.join(sorted(bad))}")
    assert not wrong, wrong


def test_importing_modules_runs_no_git_and_leaves_the_environment_alone() -> None:
    """Records ask git for the commit when a record is made, not at import; encoders set no variables."""
    code = ("import os, subprocess; calls = []; real = subprocess.run\n"
            "subprocess.run = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
            "before = dict(os.environ)\n"
            "import common.records, common.objectives, sentence.encoders, graph.config, image.config\n"
            "assert not calls, calls; assert dict(os.environ) == before, set(os.environ) ^ set(before)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_help_of_every_cli_imports_no_torch() -> None:
    """``--help`` answers at once: nothing heavy is imported before the arguments are parsed."""
    for cli in (["graph"], ["image", "run"], ["sentence", "train"], ["benchmarks", "run"], ["benchmarks.loss_speed"],
                ["benchmarks.graph_epoch_speed"], ["benchmarks.senteval_speed"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", *cli, "--help"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "--" in result.stdout, result.stderr
        imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert not imported & {"torch", "numpy", "sklearn", "torch_geometric", "sentence_transformers"}, cli
