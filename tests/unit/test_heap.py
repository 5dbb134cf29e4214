"""Heap settings for a long run: the collector's generations and the C allocator's threshold."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys
from collections.abc import Iterator

import pytest

from worker.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_is_loaded_and_raises_the_young_threshold() -> None:
    loaded = [{"code": n} for n in range(1_000)]
    settle_heap()
    assert gc.get_freeze_count() >= len(loaded)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


PROBE = """
import ctypes, sys
from worker.heap import pin_mmap_threshold

class MallInfo2(ctypes.Structure):  # all ten fields: the struct is returned by value
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
bytearray(16 << 20)  # freeing a mapped 16 MiB block raises glibc's moving threshold to 16 MiB
pinned = sys.argv[1] == "pinned" and pin_mmap_threshold()
size = 4 << 20  # more than the heap of a fresh interpreter has free, less than 16 MiB
before = mallinfo2().hblkhd
block = bytearray(size)
mapped = mallinfo2().hblkhd - before >= size
del block
print(pinned, mapped, mallinfo2().hblkhd == before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's threshold is glibc's")
@pytest.mark.parametrize("mode", ["pinned", "moving"])
def test_a_large_block_is_mapped_and_given_back_once_the_threshold_is_pinned(mode: str) -> None:
    """Mapped blocks are the ones `free` gives back to the system (glibc's `mallinfo2`).

    In a fresh interpreter, so the heap's free space is small and known. The "moving" case
    is glibc left alone: the same block then comes from the heap.
    """
    probe = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    pinned, mapped, given_back = probe.stdout.split()
    if mode == "pinned":
        assert (pinned, mapped, given_back) == ("True", "True", "True")
    else:
        assert (pinned, mapped) == ("False", "False")
