"""The two questions every pipeline asks before it runs: already recorded? and may this checkpoint be continued?"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

from common.errors import UserError


def recorded(
    paths: str | os.PathLike | Iterable[str | os.PathLike] | None,
    pipeline: str,
    key: Callable[[dict[str, Any]], Hashable],
    needs: Mapping[str, Any] | None = None,
) -> dict[Hashable, dict[str, Any]]:
    """Finished runs of ``pipeline`` in the records at ``paths``, by ``key(config)``; the latest record of each key.

    A re-run skips every cell whose key is here, so the key must hold every setting that
    changes the result and none that only changes speed. ``needs``: the dotted fields
    ``key`` and the caller read (``common.records.read_records``); a record without them is
    skipped with a warning, and that cell runs again. Only records of the pipeline's current
    protocol version count (``common.protocols``): one from an older version is history, and
    the same command today is another run, which the pages must get.
    """
    from common.protocols import PROTOCOL, protocol_of
    from common.records import read_records

    if paths is None:
        return {}
    current = PROTOCOL.get(pipeline)
    return {key(r["config"]): r for r in read_records(paths, {pipeline: needs or {}})
            if r.get("pipeline") == pipeline and (current is None or protocol_of(r) == current)}


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for name, value in config.items():
        if isinstance(value, dict) and value and name != "objective":
            flat |= _flat(value, f"{prefix}{name}.")
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _is_runtime(name: str, runtime: tuple[str, ...]) -> bool:
    """A dotted setting named in ``runtime``, itself or as part of a whole section."""
    return any(name == r or name.startswith(r + ".") for r in runtime)


def settings_digest(config: dict[str, Any], runtime: Iterable[str] = ()) -> str:
    """Eight hex digits of ``config`` without its ``runtime`` settings: runs that may not continue each other
    (:func:`changed_settings` non-empty) get different checkpoint paths, so a sweep never trips over its own runs."""
    kept = {k: v for k, v in _flat(config).items() if not _is_runtime(k, tuple(runtime))}
    return hashlib.sha1(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]


def changed_settings(saved: dict[str, Any], config: dict[str, Any], runtime: Iterable[str] = ()) -> list[str]:
    """Dotted names of the settings that differ, leaving out ``runtime`` ones (a name or a whole section)."""
    runtime = tuple(runtime)
    old, new = _flat(saved), _flat(config)
    return sorted(k for k in old.keys() | new.keys() if not _is_runtime(k, runtime) and old.get(k) != new.get(k))


def resume_checkpoint(
    path: str | os.PathLike,
    config: dict[str, Any],
    *,
    runtime: Iterable[str] = (),
    required: tuple[str, ...] = (),
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The checkpoint at ``path`` to continue, or None when there is none yet.

    A checkpoint written with other settings (its ``config``; seed and objective included) is
    refused with the settings that differ: continuing it would mix two runs in one result.
    ``runtime`` names settings that may change between the parts of a run (threads, device,
    the number of steps still to go). ``upgrade`` turns a checkpoint's ``config`` of an older format into today's
    (the same function that turns a record's), so a run begun before a format change still continues.
    """
    from common.checkpoint import load_checkpoint

    path = Path(path)
    if not path.exists():
        return None
    state = load_checkpoint(path, required=("config", *required))
    saved = upgrade(state["config"]) if upgrade is not None else state["config"]
    changed = changed_settings(saved, config, runtime)
    if changed:
        raise UserError(f"{path} was written with other settings ({', '.join(changed)}); "
                        "use another output path or delete it to start over")
    return state
