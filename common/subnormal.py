"""Flush subnormal floats to zero for a block of CPU work.

Arithmetic on subnormal floats (magnitudes below 1.2e-38) is many times slower on x86
CPUs. InfoGraph's local-global scores reach -1e5 and beyond early in training, and the
softplus and sigmoid of such scores land in that range for a small share of entries, enough
to slow a REDDIT-BINARY epoch about 1.3x (tables/graph_epoch_speed.md). Flushing them changes
values only below 1.2e-38.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def flush_denormal(enabled: bool = True) -> Iterator[bool]:
    """Yields whether flushing is on (False where the CPU cannot); switched off again on exit.

    Enter it before the first parallel torch op of the process: the intra-op worker threads
    take the floating-point mode of the thread that starts them, and keep it.
    """
    active = enabled and torch.set_flush_denormal(True)
    try:
        yield active
    finally:
        if active:
            torch.set_flush_denormal(False)
