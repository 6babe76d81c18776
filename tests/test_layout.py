"""Imports run benchmarks -> pipelines -> common and never back up; importing a module has no side effects."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from common.paths import REPO_ROOT

PIPELINES = ("graph", "image", "sentence")
PACKAGES = ("common", "benchmarks", *PIPELINES)


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


def _modules() -> dict[str, Path]:
    """Every module of the project by dotted name (``common.records``; a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def _runs_at_import(tree: ast.Module) -> list[ast.stmt]:
    """The statements that run when the module is imported: the module's body and the blocks inside it
    (``if``, ``try``, ``with``, class bodies), not function bodies, ``if TYPE_CHECKING:`` or ``if __name__ == ...``."""
    statements, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "__name__ == '__main__'"):
            todo.extend(node.orelse)
            continue
        statements.append(node)
        for field in ("body", "orelse", "finalbody", "handlers"):
            todo.extend(getattr(node, field, []))
    return statements


def _imported(node: ast.stmt, module: str, modules: dict[str, Path]) -> set[str]:
    """The project's modules an import statement loads (``from common import families`` loads common.families)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        assert not node.level, f"{module}: a relative import; the project imports by absolute name"
        base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    else:
        return set()
    found = set()
    for name in names:
        parts = name.split(".")
        found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(modules)  # packages load first
    return found - {module}


def _import_graph() -> dict[str, set[str]]:
    """Each module of the project -> the project's modules it imports when it is itself imported."""
    modules = _modules()
    return {name: set().union(*(_imported(node, name, modules) for node in _runs_at_import(ast.parse(path.read_text()))))
            for name, path in modules.items()}


def test_module_imports_form_no_cycle() -> None:
    """Importing any module never meets a half-initialised one: the import graph is acyclic.

    Lazy imports inside functions are left out (they run after every module is loaded). The registry
    is one-way: the catalogue imports the machinery, the public module both, and never back.
    """
    graph = _import_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None
    assert {"common.registry", "common.families"} <= graph["common.objectives"]  # the graph sees real edges
    assert "common.registry" in graph["common.families"] and "common.records" in graph["common.cli"]
    assert order.index("common.registry") < order.index("common.families") < order.index("common.objectives")


def _is_entry_point(path: Path) -> bool:
    """A ``__main__.py``, or a script that ends in ``if __name__ == "__main__": run_main(main)``."""
    if path.stem == "__main__":
        return True
    return any(isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
               and "run_main(" in ast.unparse(node) for node in ast.parse(path.read_text()).body)


def test_only_entry_points_import_the_cli_module() -> None:
    """``common.cli`` is what command lines need (parser, ``run_main``, flag types); the rest of the code
    raises ``common.errors.UserError`` and declares settings with ``common.settings`` (lazy imports count too)."""
    importers = sorted(name for name, path in _modules().items() if "common.cli" in _imports_anywhere(path))
    entry_points = {name for name, path in _modules().items() if _is_entry_point(path)}
    assert {"graph.__main__", "image.__main__", "sentence.__main__", "benchmarks.__main__"} <= entry_points
    assert [name for name in importers if name not in entry_points] == []


def _imports_anywhere(path: Path) -> set[str]:
    """Dotted modules (and ``module.name`` of from-imports) a file imports anywhere, lazy imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


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
                ["benchmarks.graph_epoch_speed"], ["benchmarks.senteval_speed"], ["benchmarks.augment_speed"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", *cli, "--help"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "--" in result.stdout, result.stderr
        imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert not imported & {"torch", "numpy", "sklearn", "torch_geometric", "sentence_transformers"}, cli
