"""Objectives from outside the repository: modules named in ``HARDNEG_PLUGINS`` or installed under the
``hardneg.objectives`` entry-point group register their families when the registry is first imported.

Loading at registry import (rather than in each CLI) is what lets every process see a plugin: the
entry points, the harness's per-cell subprocesses, submitit tasks and ``tables`` all import the registry.
Child processes may start elsewhere (submitit runs in the repository), so the harness hands them
:func:`plugin_environment`, in which every plugin is named so that it loads from any folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path

from common.errors import UserError
from common.registry import REGISTRY, make_objective

ENV = "HARDNEG_PLUGINS"
GROUP = "hardneg.objectives"
_LOADED: set[str] = set()


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def _import(name: str) -> None:
    """Import a module by dotted name, or a ``.py`` file by path (its stem becomes the module name)."""
    if name.endswith(".py"):
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise UserError(f"{ENV}: plugin file {name} does not exist")
        spec = importlib.util.spec_from_file_location(f"hardneg_plugin_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        importlib.import_module(name)


def _check_families(new: list[str]) -> None:
    """``ValueError`` for a family a plugin registered that could never run: no implementation, a path that is not
    ``module:function`` (or names a function missing from an already imported module), defaults out of range.

    A module not imported yet is not imported here: that would load torch before ``--help`` is parsed.
    """
    for name in new:
        family = REGISTRY[name]
        paths = [p for p in (family.masked, family.two_view, family.local_global) if p is not None]
        if not paths:
            raise ValueError(f"family {name!r} names no implementation (masked=, two_view= or local_global=)")
        for path in paths:
            module, sep, function = path.partition(":")
            if not (sep and module and function):
                raise ValueError(f"family {name!r}: implementation {path!r} is not 'module:function'")
            if module in sys.modules and not callable(getattr(sys.modules[module], function, None)):
                raise ValueError(f"family {name!r}: {module} has no function {function}")
        make_objective(name)  # every default inside its own range, and the cross-parameter check passes


def load_plugins() -> None:
    """Import every plugin once; a plugin that fails to import or registers a bad family is one ``UserError``
    naming it (the command exits 2 before doing anything)."""
    entries = {f"{e.name} ({e.value})": e for e in metadata.entry_points(group=GROUP)}
    for name in [*_names(os.environ.get(ENV, "")), *entries]:
        if name in _LOADED:
            continue
        _LOADED.add(name)
        before = set(REGISTRY)
        try:
            entries[name].load() if name in entries else _import(name)
            _check_families([n for n in REGISTRY if n not in before])
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure inside foreign code is the plugin's, named as such
            detail = (str(err).strip().splitlines() or [""])[0]
            raise UserError(f"objective plugin {name} failed to load: {type(err).__name__}: {detail}") from None


def plugin_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a child that may start in another folder: ``.py`` plugins by absolute
    path, and this folder on ``PYTHONPATH`` when a plugin is a module name (``python -m`` found it here)."""
    env = dict(os.environ if env is None else env)
    names = _names(env.get(ENV, ""))
    if not names:
        return env
    env[ENV] = ",".join(str(Path(n).expanduser().resolve()) if n.endswith(".py") else n for n in names)
    if any(not n.endswith(".py") for n in names):
        env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return env
