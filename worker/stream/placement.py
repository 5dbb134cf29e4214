"""Deciding in place: when an input already on its member's partition can skip the re-keying hop.

Every topic the worker reads has the same partition count (`worker.stream.topics.ensure`), and
Faust's assignor gives one worker partition q of all of them, the history table's included. An
input read from partition q whose member lives on partition q (`member_partition`) is therefore
already with the worker that owns its member: forwarding it through the member topic would bring
it back to the same place. It is decided where it was read instead, which saves a send, a fetch
and a decode a claim for input keyed by member id with the Java partitioner.

What must not change is the order of a member's claims within one input partition. All of a
member's claims on input partition q are decided in place, in offset order, once partition q of
the member topic holds nothing forwarded *from input partition q* that is still to be decided.
Until then (after a rebalance, when an earlier worker or an earlier release may have forwarded
such claims; or after this worker forwarded one itself) they keep being forwarded, behind what
is already there. `Placement` keeps that fence for each partition:

- learnt, for every partition the worker holds, with the first batch after a revocation: the
  member topic's end offset, unless the group's committed offset is already there;
- raised to just past each such claim this worker forwards, once the broker acknowledges it;
- cleared when every offset below it is decided, or read back and found to hold no record
  (transaction markers), with nothing forwarded in flight.

Claims of a member that arrive on other input partitions still go through the member topic, as
before: their order against the member's in-place claims was never defined (partitions are read
concurrently), and it is the same order a forwarded claim would have taken.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka.errors import KafkaError

from worker import audit

TAIL_READ_BACK = 16
"""Offsets short of the fence that are read back to see whether they hold records: with
transactions the last offsets are commit markers, which the stream never delivers."""

PROBE_SECONDS = 1.0
"""Least time between two read-backs of one partition's tail."""


class Placement:
    """Per member-topic partition: may an input of that partition be decided where it was read?"""

    def __init__(
        self,
        end_offsets: Callable[[list[int]], Awaitable[dict[int, int]]],
        committed: Callable[[int], int | None],
        read_back: Callable[[int, int, int], Awaitable[list[Any]]],
        *,
        assigned: Callable[[], Iterable[int]] = tuple,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Ask the broker and the group through the callables given.

        Args:
            end_offsets: the member topic's end offsets of some partitions (from the broker).
            committed: the group's committed offset of a member-topic partition (None: unknown).
            read_back: the records of a member-topic partition's offsets [start, end)
                (`worker.stream.offsets.GapReader.read`).
            assigned: the member-topic partitions this worker holds, all learnt with the first
                batch after an assignment (before the worker forwards anything to them).
            clock: seconds, for spacing the read-backs.
        """
        self._end_offsets = end_offsets
        self._committed = committed
        self._read_back = read_back
        self._assigned = assigned
        self._clock = clock
        self._clear: set[int] = set()
        """Partitions whose inputs are decided in place."""
        self._fence: dict[int, int] = {}
        """Partition -> the offset below which the member topic may hold claims forwarded from it."""
        self._decided: dict[int, int] = {}
        """Partition -> the offset after the last member-topic record decided since the assignment."""
        self._in_flight: dict[int, int] = {}
        """Partition -> claims forwarded from it to itself whose sends are not acknowledged yet."""
        self._probed: dict[int, float] = {}

    def forget(self) -> None:
        """The assignment changed: what was known of each partition's member topic is learnt again.

        Forwards in flight stay counted: their acknowledgements raise the fences learnt next.
        """
        self._clear.clear()
        self._fence.clear()
        self._decided.clear()
        self._probed.clear()

    def fenced(self) -> bool:
        """Some partition forwards what it could decide in place, until what it forwarded is decided."""
        return bool(self._fence)

    def in_place(self, partition: int) -> bool:
        """An input of this partition, whose member is on it, is decided where it was read."""
        return partition in self._clear

    async def learn(self, partitions: Iterable[int]) -> None:
        """Learn the fences of partitions seen for the first time, and lift those that hold nothing.

        A broker that does not answer leaves a partition fenced (its inputs are forwarded, as
        they always may be) until a later batch asks again.
        """
        seen = set(partitions)
        unknown = sorted(p for p in seen | set(self._assigned()) if p not in self._clear and p not in self._fence)
        if unknown:
            try:
                ends = await self._end_offsets(unknown)
            except (TimeoutError, KafkaError) as error:
                audit.lifecycle("worker.placement_unknown", partitions=unknown, error=type(error).__name__)
                ends = {}
            for partition, end in ends.items():
                self._fence[partition] = end
                self._decided[partition] = max(self._decided.get(partition, 0), self._committed(partition) or 0)
                self._lift(partition)
        for partition in sorted(seen & set(self._fence)):
            await self._probe(partition)

    async def _probe(self, partition: int) -> None:
        """Read back a short tail below the fence: offsets without records (markers) hold nothing to wait for."""
        start, end = self._decided.get(partition, 0), self._fence[partition]
        if self._in_flight.get(partition) or not 0 < end - start <= TAIL_READ_BACK:
            return
        now = self._clock()
        if now - self._probed.get(partition, -PROBE_SECONDS) < PROBE_SECONDS:
            return
        self._probed[partition] = now
        try:
            records = await self._read_back(partition, start, end)
        except (TimeoutError, KafkaError):
            return
        if not records:
            self._decided[partition] = end
            self._lift(partition)

    def forwarding(self, partition: int) -> None:
        """A claim of this partition's member is being forwarded from this partition to itself."""
        self._in_flight[partition] = self._in_flight.get(partition, 0) + 1

    def forwarded(self, partition: int, offset: int | None) -> None:
        """The broker acknowledged such a claim at `offset` of the member topic (None: abandoned)."""
        self._in_flight[partition] = max(self._in_flight.get(partition, 0) - 1, 0)
        known = partition in self._clear or partition in self._fence
        # Unknown since an assignment: the end offset `learn` asks for next is past this one.
        if offset is not None and known:
            self._clear.discard(partition)
            self._fence[partition] = max(self._fence.get(partition, 0), offset + 1)
        self._lift(partition)

    def decided(self, partition: int, offset: int) -> None:
        """A member-topic record of this partition was decided (it is in the claim history)."""
        self._decided[partition] = max(self._decided.get(partition, 0), offset + 1)
        self._lift(partition)

    def _lift(self, partition: int) -> None:
        fence = self._fence.get(partition)
        if fence is None or self._in_flight.get(partition):
            return
        if self._decided.get(partition, 0) >= fence:
            del self._fence[partition]
            self._clear.add(partition)
