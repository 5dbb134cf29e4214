"""Keep the collector off long-lived data, and the C allocator from holding on to freed memory."""

from __future__ import annotations

import ctypes
import gc

YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default is 700).

Deciding one claim allocates a few hundred container objects (models, dicts, lists) that
die with the batch; at 700 the collector ran several times per claim and, through the
middle generation, started full collections every few thousand claims. At 10,000 each
young collection still takes a few milliseconds at most (docs/benchmarks-notes.md).
"""

M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter number for the mmap threshold (malloc.h)."""

MMAP_THRESHOLD = 128 * 1024
"""Blocks at least this large are mapped on their own and unmapped when freed.

It is glibc's starting value. Left alone, glibc raises it each time a mapped block is
freed, up to 32 MiB, and from then on serves large blocks from the heap, where a freed
block in the middle cannot be given back. The claim history's tables are such blocks
(several MiB each, replaced when they grow or are compacted): with the threshold moving,
the heap keeps growing with free space it cannot return while the memory in use stays the
same. Setting it turns the moving threshold off.
"""


def settle_heap() -> None:
    """Prepare the heap for a long run; call once the code set and the policy book are loaded.

    Freezes what is loaded so far out of the collector (`freeze_long_lived`) and fixes the
    C allocator's mmap threshold (`pin_mmap_threshold`).
    """
    freeze_long_lived()
    pin_mmap_threshold()


def freeze_long_lived() -> None:
    """Move everything allocated so far out of the garbage collector's generations.

    The code set and the policy book live as long as the process, and without this every
    full collection walks the whole ICD-10-CM tree, a pause long enough to be the stream's
    latency tail. Also sets the young-generation threshold
    (`YOUNG_THRESHOLD`).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; False where the C library has no `mallopt`.

    Other C libraries (macOS, musl) manage large blocks their own way; there this does nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
