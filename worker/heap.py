"""Keep the collector off the data that lives as long as the process, and out of the hot path."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default is 700).

Deciding one claim allocates a few hundred container objects (models, dicts, lists) that
die with the batch; at 700 the collector ran several times per claim and, through the
middle generation, started full collections every few thousand claims. At 10,000 the
stream worker spent about half as long collecting (measured with `gc.callbacks`, 20,000
claims), and each young collection still takes a few milliseconds at most.
"""


def freeze_long_lived() -> None:
    """Move everything allocated so far out of the garbage collector's generations.

    Call once the code set and the policy book are loaded. They live as long as the
    process, and without this every full collection walks the whole ICD-10-CM tree:
    a pause of about 200 ms in the stream, which was the worker's latency tail. Also
    sets the young-generation threshold (`YOUNG_THRESHOLD`).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
