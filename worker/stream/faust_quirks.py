"""Every Faust private the worker touches, and every Faust behaviour it works around, in one place.

faust-streaming 0.15.x. Each entry names what Faust does and why the worker cannot
live with it; when an upgrade changes Faust, this module is what to read again.

- `guard_consumer`: Faust commits across offset jumps it made itself, and one offset
  past the committed one (see `worker.stream.offsets`); it also fixes the fetch wait at
  1,500 ms with no setting.
- `guard_consumer`'s drain loop, `subscribe`, `track`, `release`: Faust's fetcher hands
  each record to the agent through four tasks, the conductor, a channel and a stream; the
  worker takes whole fetches instead (`worker.stream.intake`), so it subscribes to the topics,
  counts messages in process and acknowledges them itself. (The stream path also acked
  events never delivered: `take_events` acks its batch in a `finally`.)
- `TableView`: Faust picks a table's partition (its RocksDB database and changelog partition)
  from the event being iterated, one per batch, and asserts there is one. Under at-least-once
  the view also sends the changelog itself, a batch at a time (`worker.stream.changelog`), and
  `persist_changelog_offset` writes the store's persisted offset as Faust's send callback did.
- `BoundedWorker`: a worker whose agent keeps crashing ignored SIGTERM for over an hour.
- `let_batches_queue`, `wait_for_producer_buffer`: the producer buffer of table changelog
  writes (under exactly-once) is checked before each batch, as the conductor checked it before each event; at
  Faust's 100 pending messages it would stop the agent every few claims, warning each time.
- `serve_only_own_pages`: Faust's web server serves its own pages beside ours: `/` (status),
  `/router/` and `/table/<name>/<key>/`, which shows a table's value for any key (whether a
  claim exists, and its decision) to anyone who reaches the port.
- `committed_offset`, `confirm_gap`: no public accessor for the committed offset.
- The agent runs with `concurrency=1`: more than one can commit past an event still in
  flight (faust-streaming issue #606; `worker.stream.agent`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Collection, Iterator, MutableMapping, Sequence
from typing import Any

import faust
import orjson
import rocksdict
from faust.exceptions import ConsumerNotStarted
from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import TP

from worker import audit
from worker.stream.changelog import Changelog, TableWrite
from worker.stream.intake import Intake


def guard_consumer(
    app: Any,
    guarded: str | Collection[str],
    *,
    fetch_max_wait_ms: int | None = None,
    intake: Intake | None = None,
) -> None:
    """Install the guarded consumer class on the app's transport (before the consumer exists).

    The guarded consumer stops treating jumps in the input topic's offsets as acknowledged,
    and refuses to commit past an offset that is neither acknowledged nor a confirmed gap.
    With an intake, it hands each fetch of the guarded topics to it whole (`worker.stream.intake`).

    Args:
        app: the Faust app.
        guarded: the topic(s) whose offsets are guarded: the input, and the repartition topic.
        fetch_max_wait_ms: the longest a fetch waits on the broker for data; Faust fixes it at
            1,500 ms. A broker that does not answer a waiting fetch when data arrives (the
            embedded one) then adds up to that much latency to every claim.
        intake: where fetched messages of the guarded topics go, a fetch at a time, instead of
            through the conductor to the agent's stream one at a time.
    """
    base: Any = app.transport.Consumer
    topics = frozenset((guarded,) if isinstance(guarded, str) else guarded)

    class GuardedConsumer(base):  # type: ignore[misc]  # a class chosen at run time
        """Faust's consumer, strict about the input topic's offsets."""

        async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
            # Faust calls this for every jump it sees, including jumps over records it dropped
            # itself; for the input topic the agent verifies the jump and calls `confirm_gap`.
            if tp.topic not in topics:
                await super()._add_gap(tp, offset_from, offset_to)

        async def confirm_gap(self, tp: Any, start: int, end: int) -> None:
            """Acknowledge offsets [start, end): each was decided or holds no record."""
            if end > start:
                await super()._add_gap(tp, start, end - 1)

        def _new_offset(self, tp: Any) -> int | None:
            # Faust commits when the first acknowledged offset is at most one past the committed
            # one, so a single missing offset there is committed past. Require it to be exact.
            if tp.topic in topics:
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
                create = thread._create_worker_consumer

                def create_with_wait(transport: Any) -> Any:
                    consumer = create(transport)
                    consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts
                    return consumer

                thread._create_worker_consumer = create_with_wait
            return thread

        async def _drain_messages(self, fetcher: Any) -> None:
            if intake is None:
                await super()._drain_messages(fetcher)
            else:
                await _drain_to_intake(self, fetcher, topics, intake)

    app.transport.Consumer = GuardedConsumer


async def _drain_to_intake(consumer: Any, fetcher: Any, topics: frozenset[str], intake: Intake) -> None:
    """Faust's `Consumer._drain_messages` (faust-streaming 0.15.x), a fetch at a time.

    Faust's loop awaits `wait_first(callback(message), suspend_flow.wait())` for every record:
    four tasks started and three cancelled a record, then the conductor, a channel queue and the
    stream. This loop keeps Faust's bookkeeping as it is (read offsets, gaps of other topics,
    `commit_every`, flow and generation checks, the fetching flag) and offers the guarded topics'
    records of one fetch to the intake in one call; records of other topics (changelogs read for
    standbys, the assignor's topic) still go to Faust's callback one by one.
    """
    callback = consumer.callback
    stopping = consumer._stopped.is_set
    fetcher_stopping = fetcher._stopped.is_set
    try:
        while not (stopping() or fetcher_stopping()):
            consumer.diag.set_flag(CONSUMER_FETCHING)
            records, active = await consumer._wait_next_records(1.0)
            await consumer.sleep(0)  # as Faust's loop: a fetch that returns at once still yields
            if records is None or consumer.should_stop:
                continue
            if not consumer.flow_active:
                # Fetched across a rebalance: Faust seeks back to the committed offsets.
                try:
                    await consumer.perform_seek()
                except Exception as error:  # noqa: BLE001 - as Faust: the next rebalance seeks again
                    consumer.log.warning("exception performing seek when flow not active %r", error)
                continue
            batch = await _read_fetch(consumer, records, active, topics, callback)
            if batch:
                await consumer.wait_first(intake.offer(batch), consumer.suspend_flow.wait())
            consumer.diag.unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if not consumer.transport.app.should_stop:
            raise
    except asyncio.CancelledError:
        if not consumer.transport.app.should_stop:
            raise
    finally:
        consumer.diag.unset_flag(CONSUMER_FETCHING)


async def _read_fetch(consumer: Any, records: Any, active: Any, topics: frozenset[str], callback: Any) -> list[Any]:
    """One fetch's records as messages: the guarded topics' returned, the others delivered one by one."""
    read_offset = consumer._read_offset
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    to_message = consumer._to_message
    generation = consumer.app.consumer_generation_id
    batch: list[Any] = []
    for tp, tp_records in records.items():
        if active is not None and tp not in active and tp not in consumer._buffered_partitions:
            continue
        consumer.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
        guarded = tp.topic in topics
        for record in tp_records:
            if not consumer.flow_active or consumer.app.consumer_generation_id != generation:
                return []  # a rebalance began: all is read again after it, from the committed offsets
            message = to_message(tp, record)
            offset = message.offset
            last = read_offset[tp]
            if last is not None and offset < last:
                continue  # already read (Faust drops these too)
            if last and offset - last > 1 and not guarded and acks_enabled_for(message.topic):
                await consumer._add_gap(tp, last + 1, offset)  # the guarded topics' gaps: offsets.GapCheck
            if consumer._commit_every is not None and consumer._n_acked >= consumer._commit_every:
                consumer._n_acked = 0
                await consumer.commit()
            if guarded:
                batch.append(message)
            else:
                await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
            read_offset[tp] = offset
    return batch


async def confirm_gap(app: Any, topic: str, partition: int, start: int, end: int) -> None:
    """Let the guarded consumer commit past offsets [start, end) (`guard_consumer`)."""
    await app.consumer.confirm_gap(TP(topic, partition), start, end)


def committed_offset(app: Any, topic: str, partition: int) -> int | None:
    """The consumer's committed offset of an input partition, as Faust knows it (no public accessor)."""
    value: int | None = app.consumer._committed_offset.get(TP(topic, partition))
    return value


def assigned_partitions(app: Any, topic: str) -> list[int]:
    """The partitions of a topic assigned to the consumer now (none before its thread starts)."""
    try:
        assignment = app.consumer.assignment()
    except ConsumerNotStarted:  # only in Faust's test context, where no consumer thread runs
        return []
    return [tp.partition for tp in assignment if tp.topic == topic]


def subscribe(app: Any, source: Any) -> None:
    """Have the consumer subscribe to the agent's topics, which no stream iterates (`worker.stream.intake`).

    Faust subscribes to a topic when a stream first iterates it (`Topic.__aiter__` adds it to
    the conductor); the agent takes fetches from the intake instead, so the topic is added here,
    from the agent's first step on the running loop (the conductor's futures belong to it).
    """
    app.topics.add(source)


def track(app: Any, messages: list[Any]) -> None:
    """Count a batch's messages as in process: a rebalance's `wait_empty` waits for their acks.

    The stream did this as it yielded each event; the intake's batches bypass the stream.
    """
    track_message = app.consumer.track_message
    for message in messages:
        track_message(message)


def release(app: Any, messages: list[Any]) -> None:
    """Acknowledge a batch's messages, once its outputs are acknowledged: their offsets may be committed."""
    consumer = app.consumer
    for message in messages:
        message.ack(consumer)


async def wait_for_producer_buffer(app: Any) -> None:
    """Wait while the producer's buffer of table changelog writes is over its size (`let_batches_queue`)."""
    await app.producer.buffer.wait_until_ebb()


def let_batches_queue(app: Any, batch_size: int) -> None:
    """Let a whole batch's table writes queue in the producer's buffer.

    About one table write per claim: Faust's default (100 pending) makes the stream wait for
    the buffer to ebb every few claims, warning each time.
    """
    app.producer.buffer.max_messages = batch_size * 4


def serve_only_own_pages(app: Any) -> None:
    """Keep Faust's built-in pages (index, router, tables, graph, statistics) off the app's web server.

    Faust offers no setting for its index page, so the app's web driver is replaced by a
    subclass that lists no built-in pages; the worker's own (`app.page`) are served as before.
    """
    from faust.web import drivers

    driver: Any = drivers.by_url(app.conf.web)

    class OwnPagesOnly(driver):  # type: ignore[misc]  # a class chosen at run time
        default_blueprints = ()
        production_blueprints = ()
        debug_blueprints = ()
        optional_blueprints = ()

    app._new_web = lambda: OwnPagesOnly(app)


def persist_changelog_offset(table: Any, partition: int, offset: int) -> None:
    """Write the store's persisted offset of a changelog partition, as Faust's changelog send callback does.

    Recovery reads the changelog from the offset after it; the memory store keeps none.
    """
    table.data.set_persisted_offset(TP(table.changelog_topic.get_topic_name(), partition), offset)


_NOT_QUEUED = object()
"""What `TableView` finds for a key with no queued write (None is a queued deletion)."""


class TableView(MutableMapping[str, Any]):
    """A Faust table of JSON records, seen as a mapping whose partition is set by the caller.

    Faust picks the partition a table reads and writes (its RocksDB database, its changelog
    partition) from the event being iterated; a batch has many events, from two topics, so the
    partition is set explicitly (`partition`) before each access, and the store is reached per
    partition: the partition's own RocksDB database, or the memory store's dict. Keys and values
    are stored as the changelog carries them (UTF-8 key, JSON value), so recovery writes them as
    they are.
    """

    def __init__(self, table: Any, changelog: Changelog | None = None) -> None:
        self.table = table
        self.partition = 0
        self.changelog = changelog
        """Where writes queue for the stream handler to send (None: Faust sends each, as under exactly-once)."""
        self._queued: dict[tuple[int, bytes], bytes | None] = {}
        """Writes queued in the changelog that the store has not taken yet, by partition and key (None: deleted)."""
        if changelog is not None:
            changelog.on_take = self.store_writes

    def _get_raw(self, key: bytes) -> bytes | None:
        if self._queued:
            queued = self._queued.get((self.partition, key), _NOT_QUEUED)
            if queued is not _NOT_QUEUED:
                return queued  # type: ignore[return-value]  # bytes or None: not the sentinel
        store = self.table.data
        if hasattr(store, "_db_for_partition"):  # RocksDB: one database per partition
            value: bytes | None = store._db_for_partition(self.partition).get(key)
            return value
        found: bytes | None = store.data.get(key)
        return found

    def __getitem__(self, key: str) -> Any:
        raw = self._get_raw(key.encode())
        if raw is None:
            raise KeyError(key)
        return orjson.loads(raw)

    def get(self, key: str, default: Any = None) -> Any:
        """The record of a key, or `default`: without `Mapping.get`'s KeyError for every new member."""
        raw = self._get_raw(key.encode())
        return orjson.loads(raw) if raw is not None else default

    def __setitem__(self, key: str, value: Any) -> None:
        self._write(key.encode(), orjson.dumps(value))

    def __delitem__(self, key: str) -> None:
        raw_key = key.encode()
        if self._get_raw(raw_key) is None:
            raise KeyError(key)
        self._write(raw_key, None)

    def _write(self, raw_key: bytes, raw: bytes | None) -> None:
        if self.changelog is not None:
            # Queued: the store takes it with the batch's other writes (`store_writes`).
            self._queued[(self.partition, raw_key)] = raw
            self.changelog.add(self.partition, raw_key, raw)
            return
        self.store_writes([TableWrite(self.partition, raw_key, raw)])
        self.table.send_changelog(self.partition, raw_key, raw, key_serializer="raw", value_serializer="raw")

    def store_writes(self, writes: Sequence[TableWrite]) -> None:
        """Write to the store, in order: one RocksDB write batch a partition (or the memory store's dict)."""
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            batches: dict[int, Any] = {}
            for write in writes:
                batch = batches.get(write.partition)
                if batch is None:
                    batch = batches[write.partition] = rocksdict.WriteBatch(raw_mode=True)
                if write.value is None:
                    batch.delete(write.key)
                else:
                    batch.put(write.key, write.value)
            for partition, batch in batches.items():
                store._db_for_partition(partition).write(batch)
        else:
            for write in writes:
                if write.value is None:
                    store.data.pop(write.key, None)
                    store._key_partition.pop(write.key, None)
                else:
                    store.data[write.key] = write.value
                    store._key_partition[write.key] = write.partition  # what the memory store drops on revocation
        self._queued.clear()

    def __iter__(self) -> Iterator[str]:
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            database = store._db_for_partition(self.partition)
            keys = (key for key in database.keys() if key != store.offset_key)  # noqa: SIM118 - an Rdict
        else:
            keys = iter(store.data)
        return (key.decode() for key in keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class BoundedWorker(faust.Worker):
    """A Faust worker whose shutdown cannot outlast the grace period.

    On the first SIGTERM or SIGINT, Faust stops fetching, lets the agent finish the
    batch in hand (its outputs acknowledged), commits and leaves the group. A
    watchdog bounds it: past `grace_seconds` the process exits with status 70, so a
    stuck agent can never hold a pod past its termination grace period. The
    uncommitted input is redelivered to the group, and outputs are idempotent.
    """

    grace_seconds: float = 20.0

    def _schedule_shutdown(self, signal: Any) -> None:
        if not self._signal_stop_time:
            audit.lifecycle("worker.stopping", duration_s=self.grace_seconds)
            timer = threading.Timer(self.grace_seconds, _hard_exit, args=(self.grace_seconds,))
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signal)


def _hard_exit(grace: float) -> None:
    audit.lifecycle("worker.stop_timed_out", duration_s=grace, error="shutdown exceeded the grace period")
    sys.stdout.flush()
    os._exit(70)
