"""Replay: re-adjudicate a bounded range of history without touching the live worker.

A replay reads a claims topic (or a JSON-lines export) with its own consumer that
has no group and commits nothing, decides every event with the current or a
pinned policy version, and writes the outputs to a topic of its own or to a
file. It does not need Faust's per-event machinery: a plain consumer, the same
`Processor` as the live worker, and a batching producer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from claims_contracts.v1 import SourcePosition
from worker import dead_letter
from worker.adjudication import PolicyBook
from worker.connection import KafkaConnection, end_offsets
from worker.files import write_private
from worker.headers import body_headers, output_headers, traceparent_of
from worker.processor import DeadLettered, Decided, Processor
from worker.replay.comparison import summarize
from worker.replay.progress import Progress
from worker.replay.seeking import (
    BATCH_RECORDS,
    offsets_for_time,
    partitions_of,
    scan_for_time,
    timestamp_at,
)
from worker.replay.sinks import FileSink, Output, Sink, TopicSink


@dataclass
class ReplayPlan:
    """What to replay and where to; saved in the state file so a stopped run can resume."""

    run_id: str
    bootstrap_servers: str | None
    source_topic: str | None = None
    source_file: str | None = None
    partitions: list[int] | None = None
    start_offset: int | None = None
    end_offset: int | None = None
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    policy_version: str | None = None
    policy_dir: str | None = None
    output_topic: str | None = None
    output_file: str | None = None
    history_from_offset: int | None = None
    """Warm the claim history from this offset (line, for a file) up to the range, deciding nothing out."""
    history_from_time_ms: int | None = None
    """Warm the claim history from the first record at or after this time up to the range."""
    next_offsets: dict[str, int] = field(default_factory=dict)
    """Resume point: partition (or "file") -> next offset (or line) to read."""
    end_offsets: dict[str, int] = field(default_factory=dict)
    """Upper bounds (exclusive), captured when the run started."""
    processed: int = 0
    finished: bool = False

    def save(self, path: Path, *, group: str | None = None) -> None:
        """Write the plan and progress atomically, private (`worker.files`)."""
        tmp = path.with_suffix(".tmp")
        write_private(tmp, json.dumps(asdict(self), indent=2, sort_keys=True), group=group)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ReplayPlan:
        """Read a saved plan."""
        return cls(**json.loads(path.read_text()))


def new_run_id() -> str:
    """A short, sortable run id: UTC time and a random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(moment.timestamp() * 1000)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """How a replay ended."""

    plan: ReplayPlan
    processed: int
    outputs: int
    dead_letters: int
    seek_method: str
    stopped_early: bool
    summaries: dict[str, dict[str, Any]]
    """source_event_id -> what was decided (for the comparison report)."""
    history_warmed: int | None = None
    """Events read to warm the claim history before the range (None: the run had no history before it)."""


class Replayer:
    """Runs one replay plan."""

    def __init__(
        self,
        plan: ReplayPlan,
        policies: PolicyBook,
        *,
        connection: KafkaConnection | None = None,
        dead_letter_max_bytes: int | None = None,
        state_path: Path | None = None,
        file_group: str | None = None,
        progress_stream: Any = None,
        keep_summaries: bool = True,
    ) -> None:
        self.plan = plan
        self.connection = connection
        """How to reach the brokers (None: a file-to-file replay needs none)."""
        self.processor = Processor(
            policies, pinned_version=plan.policy_version, dead_letter_max_bytes=dead_letter_max_bytes
        )
        self.state_path = state_path
        self.file_group = file_group
        """Group allowed to read the files the replay writes (0640); 0600 without one."""
        self.progress_stream = progress_stream
        self.keep_summaries = keep_summaries
        self.stop = asyncio.Event()
        self.summaries: dict[str, dict[str, Any]] = {}
        self.outputs = 0
        self.dead_letters = 0
        self._already_done = 0
        """Events a resumed run had processed before it stopped."""
        self.history_warmed: int | None = None

    def _warm(self, raw: bytes, position: SourcePosition) -> None:
        """Decide an event before the range into the claim history only, as the live worker had."""
        result = self.processor.process(raw, position)
        if isinstance(result, Decided):
            self.processor.remember(result, emitted=True)
        self.history_warmed = (self.history_warmed or 0) + 1

    def _decide(self, raw: bytes, position: SourcePosition, trace: str | None = None) -> Output | None:
        result = self.processor.process(raw, position)
        source = f"/claims-worker/replay/{self.plan.run_id}"
        if isinstance(result, Decided):
            self.processor.remember(result, emitted=True)
            body = result.body
            if self.keep_summaries:
                self.summaries[body["source_event_id"]] = summarize(body)
            headers = body_headers(body, source=source, traceparent=trace)
            return result.claim.claim_id.encode(), result.payload, headers
        if isinstance(result, DeadLettered):
            self.dead_letters += 1
            record = result.record
            headers = output_headers(record, source=source, traceparent=trace)
            return dead_letter.message_key(position.key), record.model_dump_json().encode(), headers
        return None  # the same event id earlier in the range: decided once, as the live worker does

    async def run(self) -> ReplayResult:
        """Replay until the end of the range or a stop request."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            sink = await self._open_sink()
            try:
                if self.plan.source_file is not None:
                    method = await self._from_file(sink)
                else:
                    method = await self._from_topic(sink)
            finally:
                await sink.close()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        self.plan.finished = not self.stop.is_set()
        self._save()
        return ReplayResult(
            self.plan,
            self.plan.processed,
            self.outputs,
            self.dead_letters,
            method,
            self.stop.is_set(),
            self.summaries,
            self.history_warmed,
        )

    async def _open_sink(self) -> Sink:
        if self.plan.output_file is not None:
            return FileSink(Path(self.plan.output_file), group=self.file_group)
        assert self.plan.output_topic is not None  # noqa: S101 - the command line requires one output
        sink = TopicSink(self._connection(), self.plan.output_topic)
        await sink.start()
        return sink

    def _connection(self) -> KafkaConnection:
        if self.connection is None:
            raise RuntimeError("replaying from or to a topic needs a broker connection")
        return self.connection

    def _save(self) -> None:
        if self.state_path is not None:
            self.plan.save(self.state_path, group=self.file_group)

    async def _from_file(self, sink: Sink) -> str:
        assert self.plan.source_file is not None  # noqa: S101
        lines = Path(self.plan.source_file).read_bytes().splitlines()
        start = self.plan.next_offsets.get("file", self.plan.start_offset or 0)
        end = min(self.plan.end_offset if self.plan.end_offset is not None else len(lines), len(lines))
        self.plan.end_offsets = {"file": end}
        # The history before what is decided: the --history-from lines, and on a resume the lines
        # this run decided before it stopped (so a resumed run decides as an unbroken one).
        warm_from = self.plan.history_from_offset
        if warm_from is None and "file" in self.plan.next_offsets:
            warm_from = self.plan.start_offset or 0
        if warm_from is not None:
            self.history_warmed = 0
            for number in range(max(warm_from, 0), min(start, len(lines))):
                if lines[number].strip():
                    self._warm(lines[number], SourcePosition(file_line=number + 1))
        progress = Progress(max(end - start, 0), "replay", stream=self.progress_stream)
        done = 0
        for chunk_start in range(start, end, BATCH_RECORDS):
            if self.stop.is_set():
                break
            items = []
            for number in range(chunk_start, min(chunk_start + BATCH_RECORDS, end)):
                raw = lines[number]
                if raw.strip():
                    out = self._decide(raw, SourcePosition(file_line=number + 1))
                    if out is not None:
                        items.append(out)
            await sink.write(items)
            self.outputs += len(items)
            done = min(chunk_start + BATCH_RECORDS, end) - start
            self.plan.next_offsets["file"] = start + done
            self.plan.processed += min(chunk_start + BATCH_RECORDS, end) - chunk_start
            self._save()
            progress.update(done)
        progress.update(done, force=True)
        return "lines"

    async def _from_topic(self, sink: Sink) -> str:
        assert self.plan.source_topic is not None  # noqa: S101
        connection = self._connection()
        known = await partitions_of(connection, self.plan.source_topic)
        if not known:
            raise RuntimeError(f"topic {self.plan.source_topic} does not exist or has no partitions")
        chosen = sorted(known) if self.plan.partitions is None else sorted(self.plan.partitions)
        missing = sorted(set(chosen) - known)
        if missing:
            raise RuntimeError(f"topic {self.plan.source_topic} has no partition(s) {missing}")
        consumer = connection.consumer(
            group_id=None,  # no group: nothing is committed, the live group is untouched
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await consumer.start()
        method = "offsets"
        try:
            tps = [TopicPartition(self.plan.source_topic, p) for p in chosen]
            consumer.assign(tps)
            begin = await consumer.beginning_offsets(tps)
            end = await end_offsets(consumer, tps)
            bounds = {tp: (begin[tp], end[tp]) for tp in tps}
            resuming = bool(self.plan.next_offsets)
            starts, ends, method = await self._range(consumer, tps, bounds, connection)
            await self._warm_topic(consumer, tps, bounds, starts, connection, resuming=resuming)
            total = sum(max(ends[tp] - starts[tp], 0) for tp in tps)
            progress = Progress(total, "replay", stream=self.progress_stream)
            position = dict(starts)
            active = [tp for tp in tps if position[tp] < ends[tp]]
            for tp in active:
                consumer.seek(tp, position[tp])
            done = 0
            while active and not self.stop.is_set():
                batch = await consumer.getmany(*active, timeout_ms=500, max_records=BATCH_RECORDS)
                items = []
                for tp, messages in batch.items():
                    for message in messages:
                        if message.offset >= ends[tp]:
                            break
                        out = self._decide(
                            message.value or b"",
                            SourcePosition.of_record(
                                tp.topic, tp.partition, message.offset, message.key, keep=dead_letter.KEY_KEPT
                            ),
                            traceparent_of(message.headers),
                        )
                        if out is not None:
                            items.append(out)
                        position[tp] = message.offset + 1
                        done += 1
                    # The consumer is never behind what was decided; it is ahead past gaps in the
                    # offsets (compaction, transaction markers) or past the end of the range.
                    position[tp] = min(await consumer.position(tp), ends[tp])
                if items:
                    await sink.write(items)
                    self.outputs += len(items)
                self.plan.next_offsets = {str(tp.partition): position[tp] for tp in tps}
                self.plan.processed = done + self._already_done
                self._save()
                progress.update(done)
                active = [tp for tp in active if position[tp] < ends[tp]]
            progress.update(done, force=True)
        finally:
            await consumer.stop()
        return method

    async def _warm_topic(
        self,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        bounds: dict[TopicPartition, tuple[int, int]],
        starts: dict[TopicPartition, int],
        connection: KafkaConnection,
        *,
        resuming: bool,
    ) -> None:
        """Read [history start, range start) of each partition into the claim history only."""
        plan = self.plan
        if plan.history_from_time_ms is not None:

            async def scan(tp: TopicPartition, when: int, begin: int, end: int) -> int:
                return await scan_for_time(connection, tp, when, begin, end)

            async def stamp(tp: TopicPartition, offset: int) -> int | None:
                return await timestamp_at(connection, tp, offset)

            froms, _ = await offsets_for_time(
                consumer, tps, plan.history_from_time_ms, bounds=bounds, scan=scan, timestamp_at=stamp
            )
        elif plan.history_from_offset is not None:
            froms = {tp: min(max(plan.history_from_offset, bounds[tp][0]), bounds[tp][1]) for tp in tps}
        elif resuming:
            # The part of the range decided before the stop: so a resumed run decides as an unbroken one.
            froms = {tp: min(max(plan.start_offset or 0, bounds[tp][0]), bounds[tp][1]) for tp in tps}
            if plan.start_time_ms is not None:
                froms = {tp: bounds[tp][0] for tp in tps}
        else:
            return
        self.history_warmed = 0
        position = {tp: froms[tp] for tp in tps}
        active = [tp for tp in tps if position[tp] < starts[tp]]
        for tp in active:
            consumer.seek(tp, position[tp])
        while active and not self.stop.is_set():
            batch = await consumer.getmany(*active, timeout_ms=500, max_records=BATCH_RECORDS)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset >= starts[tp]:
                        break
                    position_of = SourcePosition.of_record(
                        tp.topic, tp.partition, message.offset, message.key, keep=dead_letter.KEY_KEPT
                    )
                    self._warm(message.value or b"", position_of)
                position[tp] = min(await consumer.position(tp), starts[tp])
            active = [tp for tp in active if position[tp] < starts[tp]]

    async def _range(
        self,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        bounds: dict[TopicPartition, tuple[int, int]],
        connection: KafkaConnection,
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int], str]:
        plan = self.plan
        method = "offsets"

        async def scan(tp: TopicPartition, when: int, begin: int, end: int) -> int:
            return await scan_for_time(connection, tp, when, begin, end)

        async def stamp(tp: TopicPartition, offset: int) -> int | None:
            return await timestamp_at(connection, tp, offset)

        if plan.end_offsets:
            ends = {tp: plan.end_offsets[str(tp.partition)] for tp in tps}
        elif plan.end_time_ms is not None:
            # Exclusive end: the first record after the end time.
            ends, method = await offsets_for_time(
                consumer, tps, plan.end_time_ms + 1, bounds=bounds, scan=scan, timestamp_at=stamp
            )
        elif plan.end_offset is not None:
            ends = {tp: min(max(plan.end_offset, bounds[tp][0]), bounds[tp][1]) for tp in tps}
        else:
            ends = {tp: bounds[tp][1] for tp in tps}
        if plan.next_offsets:
            starts = {tp: plan.next_offsets[str(tp.partition)] for tp in tps}
            self._already_done = plan.processed
        elif plan.start_time_ms is not None:
            starts, method = await offsets_for_time(
                consumer, tps, plan.start_time_ms, bounds=bounds, scan=scan, timestamp_at=stamp
            )
        elif plan.start_offset is not None:
            starts = {tp: min(max(plan.start_offset, bounds[tp][0]), bounds[tp][1]) for tp in tps}
        else:
            starts = {tp: bounds[tp][0] for tp in tps}
        plan.end_offsets = {str(tp.partition): ends[tp] for tp in tps}
        return starts, ends, method
