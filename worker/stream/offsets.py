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
`GapCheck` does this per batch; `GapReader` reads a range back; the Faust side (the
guarded consumer that will not commit across unconfirmed jumps) is in
`worker.stream.faust_quirks`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from worker import audit
from worker.connection import KafkaConnection, end_offsets
from worker.stream.batch import Incoming
from worker.stream.faust_quirks import committed_offset, confirm_gap
from worker.stream.metrics import Metrics


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


class GapReader:
    """Reads the records of a suspected gap back from the broker, with a group-less consumer."""

    def __init__(
        self, connection: KafkaConnection, topic: str, *, read_committed: bool, timeout_seconds: float = 30.0
    ) -> None:
        self.connection = connection
        self.topic = topic
        self.read_committed = read_committed
        self.timeout_seconds = timeout_seconds
        self._consumer: Any = None

    async def read(self, gap: Gap) -> list[Any]:
        """The records at offsets [gap.start, gap.end) of the input partition (none: a true gap).

        Raises:
            TimeoutError: the broker did not return the range in time (the gap stays unconfirmed).
        """
        consumer = await self._started()
        tp = TopicPartition(self.topic, gap.partition)
        consumer.assign([tp])
        consumer.seek(tp, gap.start)
        records: list[Any] = []
        deadline = time.monotonic() + self.timeout_seconds
        while await consumer.position(tp) < gap.end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"partition {gap.partition} offsets {gap.start}-{gap.end} not read back in time")
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=max(gap.end - gap.start, 1))
            records.extend(r for r in batch.get(tp, []) if gap.start <= r.offset < gap.end)
        return records

    async def end_offsets(self, partitions: list[int]) -> dict[int, int]:
        """The end offsets of some of the topic's partitions, checked against the fetch high watermark."""
        consumer = await self._started()
        tps = [TopicPartition(self.topic, partition) for partition in partitions]
        consumer.assign(tps)  # `read` assigns its own partition again
        ends = await asyncio.wait_for(end_offsets(consumer, tps), self.timeout_seconds)
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def _started(self) -> Any:
        if self._consumer is None:
            consumer = self.connection.consumer(
                group_id=None,
                enable_auto_commit=False,
                # As Faust reads the input: committed records only when transactions are in use.
                isolation_level="read_committed" if self.read_committed else "read_uncommitted",
            )
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()  # a consumer that could not start still holds its client
                raise
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        """Stop the reader's consumer."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await asyncio.shield(consumer.stop())


class GapCheck:
    """Finds offsets the stream skipped, reads them back, and confirms them once decided."""

    def __init__(self, app: Any, topic: str, reader: GapReader, metrics: Metrics) -> None:
        self.app = app
        self.topic = topic
        self.metrics = metrics
        self.tracker = OffsetTracker(lambda partition: committed_offset(app, topic, partition))
        self.reader = reader
        self.unconfirmed: list[Gap] = []
        """Gaps not read back yet (the broker did not answer): retried with the next batch."""

    def forget(self) -> None:
        """The assignment changed: the stream restarts at the committed offsets."""
        self.tracker.forget()
        self.unconfirmed.clear()

    async def read_back(self, batch: list[Incoming]) -> tuple[list[Incoming], list[Gap]]:
        """The records of the gaps before this batch's offsets, and the gaps they fill."""
        found = self.tracker.observe_all((item.partition, item.offset) for item in batch if item.topic == self.topic)
        todo, self.unconfirmed = self.unconfirmed + found, []
        recovered: list[Incoming] = []
        readable: list[Gap] = []
        for gap in todo:
            try:
                records = await self.reader.read(gap)
            except (TimeoutError, KafkaError) as error:
                self.unconfirmed.append(gap)
                audit.lifecycle(
                    "worker.offset_gap_unread",
                    partition=gap.partition,
                    start_offset=gap.start,
                    end_offset=gap.end,
                    error=type(error).__name__,
                )
                continue
            recovered += [
                Incoming(
                    value=r.value or b"",
                    key=r.key,
                    topic=self.topic,
                    partition=gap.partition,
                    offset=r.offset,
                    headers=tuple(r.headers or ()),
                )
                for r in records
            ]
            readable.append(gap)
            self.metrics.offset_gaps.inc()
            self.metrics.gap_records.inc(len(records))
            audit.lifecycle(
                "worker.offset_gap",
                partition=gap.partition,
                start_offset=gap.start,
                end_offset=gap.end,
                records=len(records),
            )
        return recovered, readable

    async def confirm(self, gaps: list[Gap]) -> None:
        """Let Faust commit past gaps whose records are decided and delivered."""
        for gap in gaps:
            await confirm_gap(self.app, self.topic, gap.partition, gap.start, gap.end)

    async def close(self) -> None:
        """Stop the read-back consumer."""
        await self.reader.close()
