"""Offset continuity: no input offset is committed unless it was decided or proven empty.

Faust marks any jump in a partition's offsets as acknowledged ("a gap"), because
compaction and transaction markers leave offsets without records. But Faust also
makes jumps itself: when flow stops (shutdown, rebalance) it drops records it has
already fetched, and the next record it reads opens a gap over them, which it then
commits. Its commit rule also lets a single missing offset just after the committed
one through. Both lose claims; the SIGTERM integration test caught them.

So the worker checks continuity itself. Every input offset the agent receives is
compared with the next one expected for its partition; a jump is a *suspected* gap.
A suspected gap is read back from the broker by a consumer of our own: records found
there are decided like any other input, and only then is the range handed to Faust
as acknowledged. Offsets with no record (markers, compaction) pass the same way.
This module holds the bookkeeping; `worker.app` wires it to Faust.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Gap:
    """Offsets [start, end) of a partition that the stream skipped."""

    partition: int
    start: int
    end: int


class OffsetTracker:
    """The next offset expected on each input partition."""

    def __init__(self, start_of: Callable[[int], int | None]) -> None:
        """Track offsets from the committed ones.

        Args:
            start_of: the committed offset of a partition (None: unknown), asked the first
                time a partition is seen after `forget`.
        """
        self._start_of = start_of
        self._next: dict[int, int | None] = {}

    def forget(self) -> None:
        """Start over: the assignment changed, and the stream restarts at committed offsets."""
        self._next.clear()

    def observe(self, partition: int, offset: int) -> Gap | None:
        """Record an offset received; return the gap before it, if offsets were skipped.

        An offset below the next one expected is a redelivery, not a gap.
        """
        expected = self._next[partition] if partition in self._next else self._start_of(partition)
        if expected is not None and offset < expected:
            return None
        self._next[partition] = offset + 1
        if expected is not None and offset > expected:
            return Gap(partition, expected, offset)
        return None

    def observe_all(self, offsets: Iterable[tuple[int, int]]) -> list[Gap]:
        """`observe` each (partition, offset) in order; the gaps found."""
        gaps = []
        for partition, offset in offsets:
            gap = self.observe(partition, offset)
            if gap is not None:
                gaps.append(gap)
        return gaps
