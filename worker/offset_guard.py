"""Faust glue for offset continuity (see `worker.continuity` for why it exists).

`guard_consumer` makes the app's consumer stop treating jumps in the input
topic's offsets as acknowledged, and refuse to commit past an offset that is
neither acknowledged nor a confirmed gap. `GapReader` reads a suspected gap back
from the broker with a group-less consumer of its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from worker.continuity import Gap
from worker.settings import Settings


def guard_consumer(app: Any, input_topic: str, *, fetch_max_wait_ms: int | None = None) -> None:
    """Install the guarded consumer class on the app's transport (before the consumer exists).

    Args:
        app: the Faust app.
        input_topic: the topic whose offsets are guarded.
        fetch_max_wait_ms: the longest a fetch waits on the broker for data; Faust fixes it at
            1,500 ms. A broker that does not answer a waiting fetch when data arrives (the
            embedded one) then adds up to that much latency to every claim.
    """
    base: Any = app.transport.Consumer

    class GuardedConsumer(base):  # type: ignore[misc]  # a class chosen at run time
        """Faust's consumer, strict about the input topic's offsets."""

        async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
            # Faust calls this for every jump it sees, including jumps over records it dropped
            # itself; for the input topic the agent verifies the jump and calls `confirm_gap`.
            if tp.topic != input_topic:
                await super()._add_gap(tp, offset_from, offset_to)

        async def confirm_gap(self, tp: Any, start: int, end: int) -> None:
            """Acknowledge offsets [start, end): each was decided or holds no record."""
            if end > start:
                await super()._add_gap(tp, start, end - 1)

        def _new_offset(self, tp: Any) -> int | None:
            # Faust commits when the first acknowledged offset is at most one past the committed
            # one, so a single missing offset there is committed past. Require it to be exact.
            if tp.topic == input_topic:
                committed = self._committed_offset[tp]
                acked = self._acked[tp]
                if (
                    committed is not None
                    and acked
                    and min(acked) != committed
                    and not self._gap[tp].overlaps_point(committed)
                ):
                    return None
            result: int | None = super()._new_offset(tp)
            return result

        def _new_consumer_thread(self) -> Any:
            thread = super()._new_consumer_thread()
            if fetch_max_wait_ms is not None:
                create = thread._create_worker_consumer  # noqa: SLF001 - Faust offers no setting for it

                def create_with_wait(transport: Any) -> Any:
                    consumer = create(transport)
                    consumer._fetch_max_wait_ms = fetch_max_wait_ms  # noqa: SLF001 - read when the consumer starts
                    return consumer

                thread._create_worker_consumer = create_with_wait  # noqa: SLF001
            return thread

    app.transport.Consumer = GuardedConsumer


def committed_offset(app: Any, topic: str, partition: int) -> int | None:
    """The consumer's committed offset of an input partition, as Faust knows it."""
    from faust.types import TP

    value: int | None = app.consumer._committed_offset.get(TP(topic, partition))  # noqa: SLF001 - no public accessor
    return value


class GapReader:
    """Reads the records of a suspected gap back from the broker."""

    def __init__(self, settings: Settings, topic: str, *, timeout_seconds: float = 30.0) -> None:
        self.settings = settings
        self.topic = topic
        self.timeout_seconds = timeout_seconds
        self._consumer: AIOKafkaConsumer | None = None

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

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.broker_list,
                group_id=None,
                enable_auto_commit=False,
                # As Faust reads the input: committed records only when transactions are in use.
                isolation_level="read_committed"
                if self.settings.processing_guarantee == "exactly_once"
                else "read_uncommitted",
                **self.settings.client_security(),
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        """Stop the reader's consumer."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await asyncio.shield(consumer.stop())
