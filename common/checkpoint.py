"""Checkpoints shared by all pipelines: atomic saves, loads that cannot run code."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from common.errors import UserError
from common.io import atomic_write_bytes


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, numbers, strings, lists, dicts) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no pickled code runs).

    Raises ``UserError`` with what to do when the file is missing, corrupt, not a
    checkpoint of ours, or lacks one of the ``required`` keys.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder; give the checkpoint file (a .pt file) inside it")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist" if not path.exists() else
                        f"checkpoint {path} is not a regular file (a FIFO, socket or device)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only runs no code; any failure to parse means "not a checkpoint"
        reason = str(err).splitlines()[0].split(". ")[0][:120] if str(err) else type(err).__name__  # torch's run on
        raise UserError(f"checkpoint {path} is corrupt or not a hardneg checkpoint ({reason}); delete it to start over") from None
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {path} holds a {type(state).__name__}, not a checkpoint dict; delete it to start over")
    missing = [key for key in required if key not in state]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}; it was written by another program or version")
    return state
