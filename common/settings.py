"""Settings: config dataclasses whose fields are also command-line flags, checked in one place.

A field declared with :func:`option` carries its help and valid range beside its default; the
pipelines' configs (``graph/config.py``, ``image/config.py``, ``sentence/config.py``) use it, and
their command lines turn every such field into a flag (:func:`add_config_flags`,
:func:`config_from_args`). A checkpoint's stored settings are read back with the same checks
(:func:`config_from_dict`). No torch at import: ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from common.errors import UserError

#: Seeds are bounded where NumPy's are (``np.random.seed`` takes 0 .. 2**32 - 1).
MAX_SEED = 2**32 - 1


def comma_list(element: Callable[[str], Any], what: str) -> Callable[[str], list[Any]]:
    """argparse ``type=`` for ``a,b,c``: every element converted by ``element``; the error names the bad one."""

    def parse(text: str) -> list[Any]:
        values = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                values.append(element(item))
            except (ValueError, argparse.ArgumentTypeError) as err:
                raise argparse.ArgumentTypeError(f"{item!r} is not {what} ({err})") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        return values

    return parse


def option(default: Any, help: str, *, low: float | None = None, above: float | None = None,
           high: float | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A config dataclass field that is also a command-line flag: its help and valid range live beside the default.

    ``low``/``high`` are inclusive bounds, ``above`` an exclusive lower bound; every float must be finite.
    """
    return dataclasses.field(default=default, metadata={"help": help, "low": low, "above": above, "high": high, "choices": choices})


def _flag_fields(cls: type) -> list[Any]:
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def add_config_flags(parser: Any, cls: type, profiles: dict[str, Any], title: str = "settings") -> None:
    """One ``--flag`` per :func:`option` field of ``cls``, unset by default (the profile's value is kept).

    The help shows each profile's value and the valid range, so ``--help`` documents every default.
    """
    group = parser.add_argument_group(f"{title} (default: the --profile's value, shown as "
                                      f"{' / '.join(profiles)})")
    for f in _flag_fields(cls):
        values = [getattr(p, f.name) for p in profiles.values()]
        shown = " / ".join(",".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in values)
        meta = f.metadata
        bounds = [f">= {meta['low']:g}" if meta["low"] is not None else "", f"> {meta['above']:g}" if meta["above"] is not None else "",
                  f"<= {meta['high']:g}" if meta["high"] is not None else ""]
        text = f"{meta['help']} [{shown}]" + (f" ({', '.join(b for b in bounds if b)})" if any(bounds) else "")
        flag = "--" + f.name.replace("_", "-")
        if isinstance(values[0], bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif isinstance(values[0], tuple):
            element = type(values[0][0]) if values[0] else float
            group.add_argument(flag, type=comma_list(element, f"{element.__name__} values"), default=None, help=text)
        else:
            group.add_argument(flag, type=type(values[0]), default=None, choices=meta["choices"], help=text)


def config_from_args(args: Any, base: Any) -> Any:
    """``base`` with the flags that were given, validated by :func:`check_config`."""
    given = {f.name: getattr(args, f.name) for f in _flag_fields(type(base)) if getattr(args, f.name, None) is not None}
    given = {k: tuple(v) if isinstance(getattr(base, k), tuple) else v for k, v in given.items()}
    return check_config(dataclasses.replace(base, **given))


def config_from_dict(cls: type, values: object, source: str, *, ignore: tuple[str, ...] = ()) -> Any:
    """The ``cls`` a file stored as a dict (a checkpoint's settings), checked like flags: a ``UserError`` naming
    ``source`` for a non-dict, an unknown key or a value of the wrong type, never a ``TypeError`` later."""
    if not isinstance(values, dict):
        raise UserError(f"{source} stores its settings as {type(values).__name__}, not a dict; it is not a hardneg file")
    values = {k: v for k, v in values.items() if k not in ignore}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(values) - set(fields)))
    if unknown:
        raise UserError(f"{source} stores unknown settings ({', '.join(unknown)}); it was written by another program or version")
    for name, value in values.items():
        kind = type(fields[name].default)
        if type(value) is not kind and not (kind is float and type(value) is int) and not (kind is tuple and type(value) is list):
            raise UserError(f"{source} stores {name}={value!r}, expected {kind.__name__}; it was written by another "
                            "program or version")
    return check_config(cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}))


def check_config(config: Any) -> Any:
    """``UserError`` naming the first :func:`option` field outside its range (floats must be finite)."""
    for f in _flag_fields(type(config)):
        meta, value = f.metadata, getattr(config, f.name)
        name = "--" + f.name.replace("_", "-")
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, (bool, str)):
                if meta["choices"] and item not in meta["choices"]:
                    raise UserError(f"{name} must be one of {', '.join(meta['choices'])}, got {item!r}")
                continue
            if isinstance(item, float) and not math.isfinite(item):
                raise UserError(f"{name} must be a finite number, got {item}")
            if f.name == "seed" and not 0 <= item <= MAX_SEED:
                raise UserError(f"{name} must lie in [0, {MAX_SEED}], got {item}")
            if meta["low"] is not None and item < meta["low"]:
                raise UserError(f"{name} must be >= {meta['low']:g}, got {item}")
            if meta["above"] is not None and not item > meta["above"]:
                raise UserError(f"{name} must be > {meta['above']:g}, got {item}")
            if meta["high"] is not None and item > meta["high"]:
                raise UserError(f"{name} must be <= {meta['high']:g}, got {item}")
    return config


def check_device(name: str) -> str:
    """``name`` when torch can run on it here: ``cpu``, ``cuda``, ``cuda:N`` for an existing N, or ``mps``."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {name}: only {count} CUDA device(s) here (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name}: {device.type} is not supported; use cpu, cuda or cuda:N")
    return name
