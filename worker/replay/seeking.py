"""Finding where a replay starts and ends: by offset and by time (its true end: `worker.connection.end_offsets`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiokafka import TopicPartition

from worker.connection import KafkaConnection

BATCH_RECORDS = 2000


class OffsetsConsumer(Protocol):
    """The part of the consumer that seeking by time needs."""

    async def offsets_for_times(self, timestamps: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
        """The broker's offset-for-time lookup."""
        ...


async def offsets_for_time(
    consumer: OffsetsConsumer,
    tps: Iterable[TopicPartition],
    when_ms: int,
    *,
    bounds: dict[TopicPartition, tuple[int, int]],
    scan: Callable[[TopicPartition, int, int, int], Awaitable[int]],
    timestamp_at: Callable[[TopicPartition, int], Awaitable[int | None]],
) -> tuple[dict[TopicPartition, int], str]:
    """The first offset of each partition whose record timestamp is at or after `when_ms`.

    Asks the broker first (ListOffsets by timestamp), then checks its answer against
    the records: the record at the answer must be at or after the time and the one
    before it earlier (an empty answer: the last record must be earlier). Where the
    answer fails the check (the embedded broker answers offset 0 whatever is asked),
    the records' timestamps are scanned instead.

    Returns:
        The offsets, and which method found them: "broker" or "scan".
    """
    wanted = list(tps)
    try:
        answer = await consumer.offsets_for_times(dict.fromkeys(wanted, when_ms))
    except Exception:  # noqa: BLE001 - an unsupported lookup falls back to scanning
        answer = None
    if answer is not None:
        found: dict[TopicPartition, int] = {}
        for tp in wanted:
            begin, end = bounds[tp]
            entry = answer.get(tp)
            offset = end if entry is None else int(entry.offset)
            if await _answer_holds(tp, offset, when_ms, begin, end, timestamp_at):
                found[tp] = offset
        if len(found) == len(wanted):
            return found, "broker"
    scanned = {}
    for tp in wanted:
        begin, end = bounds[tp]
        scanned[tp] = await scan(tp, when_ms, begin, end)
    return scanned, "scan"


async def _answer_holds(
    tp: TopicPartition,
    offset: int,
    when_ms: int,
    begin: int,
    end: int,
    timestamp_at: Callable[[TopicPartition, int], Awaitable[int | None]],
) -> bool:
    if not begin <= offset <= end:
        return False
    if offset < end:
        at = await timestamp_at(tp, offset)
        if at is None or at < when_ms:
            return False
    if offset > begin:
        before = await timestamp_at(tp, offset - 1)
        if before is None or before >= when_ms:
            return False
    return True


async def partitions_of(connection: KafkaConnection, topic: str) -> set[int]:
    """The partitions of a topic (none: it does not exist), asked before any consumer starts.

    Asking all topics' metadata creates nothing on a broker that auto-creates the topics a
    client names, and a consumer stopped before it was assigned anything would fail to stop.
    """
    client = connection.client()
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
        return set(metadata.partitions_for_topic(topic) or ())
    finally:
        await client.close()


async def timestamp_at(connection: KafkaConnection, tp: TopicPartition, offset: int) -> int | None:
    """The timestamp of the record at an offset, or None when there is none."""
    consumer = connection.consumer(group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for _ in range(3):
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
            for message in batch.get(tp, []):
                return int(message.timestamp) if message.offset == offset else None
        return None
    finally:
        await consumer.stop()


async def scan_for_time(connection: KafkaConnection, tp: TopicPartition, when_ms: int, begin: int, end: int) -> int:
    """Read a partition from `begin` to the first record with a timestamp at or after `when_ms`.

    Linear, because CreateTime need not be monotonic within a partition: this is the
    same answer Kafka's own lookup gives (the earliest offset at or after the time).
    """
    if begin >= end:
        return end
    consumer = connection.consumer(group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, begin)
        while True:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=BATCH_RECORDS)
            for message in batch.get(tp, []):
                if message.offset >= end:
                    return end
                if message.timestamp >= when_ms:
                    return int(message.offset)
            if not batch and await consumer.position(tp) >= end:
                return end
    finally:
        await consumer.stop()
