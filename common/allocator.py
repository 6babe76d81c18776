"""Keep freed heap memory in the process, so that training steps reuse pages instead of faulting in new ones.

glibc's malloc serves blocks above a threshold (at most 32 MiB) with fresh ``mmap`` calls and
hands them back to the kernel on ``free``, and it trims the top of the heap as soon as it is
free. A training step allocates and frees the same large tensors every batch (InfoGraph's
node-by-graph score matrix on REDDIT-BINARY is 28-32 MiB), so every step faults in new,
kernel-zeroed pages: about 150,000 page faults and 0.3-0.4 s of system time per REDDIT-BINARY
epoch on our 2-core AMD machine, none once freed memory is kept. PyTorch's CPU tuning guide
suggests swapping in jemalloc or tcmalloc for the same reason; two ``mallopt`` settings do it
with the allocator already loaded. The process keeps its peak heap size until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_KEEP_BYTES = 1 << 30  # free memory at the heap's top kept before any is returned to the kernel


def _mallopt():
    """glibc's ``mallopt``, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or one without mallopt
        return None


def retain_freed_memory() -> bool:
    """Serve every block from the heap and keep freed memory (process-wide, for the rest of the process).

    Returns whether it took effect: False where the C library is not glibc. Allocations the
    heap cannot grow for still fall back to ``mmap``.
    """
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))


def mmap_threshold(size: int) -> bool:
    """Give every block of ``size`` bytes or more its own ``mmap``, returned to the kernel when freed (process-wide).

    A fixed threshold also stops glibc from raising it after a free. At 64 KiB the resident size
    follows the tensors alive at once, so its high-water mark is their peak (for measuring); at
    32 MiB, glibc's largest automatic threshold, blocks are served as in a long-running process.
    Returns whether it took effect.
    """
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, size))
