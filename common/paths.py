"""Where data and caches live.

``DATA_DIR`` (environment) wins; otherwise ``../shared/data`` beside the checkout when it
exists (the staged, read-only copies), else ``./data``. Processed files never go next
to the raw data: they go to ``HARDNEG_CACHE`` (default ``./.cache`` in the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    if os.environ.get("DATA_DIR"):
        return Path(os.environ["DATA_DIR"]).expanduser()
    staged = REPO_ROOT.parent / "shared" / "data"
    return staged if staged.is_dir() else REPO_ROOT / "data"


def cache_dir() -> Path:
    """The cache folder, created when missing; a ``UserError`` naming ``HARDNEG_CACHE`` when it cannot be."""
    path = Path(os.environ.get("HARDNEG_CACHE") or REPO_ROOT / ".cache").expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        what = "a file, not a folder" if isinstance(err, FileExistsError) else err.strerror
        raise UserError(f"cache folder {path} cannot be created ({what}); point HARDNEG_CACHE at a writable folder") from None
    return path
