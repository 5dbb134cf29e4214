"""The composition root: settings in, a Faust app with its agent, tables and pages out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from aiohttp import web
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker import audit
from worker.adjudication import PolicyBook
from worker.continuity import Gap, OffsetTracker
from worker.heap import settle_heap
from worker.history import ClaimHistory
from worker.metrics import Metrics
from worker.offset_guard import GapReader, committed_offset, guard_consumer
from worker.policy_files import load_policy_book
from worker.processor import Processor
from worker.settings import Settings
from worker.stream import Incoming, Outgoing, StreamHandler, TableView, Topics
from worker.topics import TABLES


class FaustPublisher:
    """Publishes through the Faust app's producer (keyed, default partitioner)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        """Enqueue one message; the result completes on the broker's acknowledgement."""
        fut: Awaitable[Any] = await self.app.producer.send(topic, key, value, None, None, None)
        return fut


@dataclass
class Runtime:
    """What the app's pages and hooks read: readiness, progress and metrics."""

    metrics: Metrics
    handler: StreamHandler | None = None
    agent: Any = None
    """The adjudication agent (component tests drive it with `test_context()`)."""
    assigned: set[tuple[str, int]] = field(default_factory=set)
    joined: bool = False
    last_offsets: dict[int, int] = field(default_factory=dict)
    broker_answers: bool = True
    """The last broker probe was answered in time."""
    stall_seconds: float = 10.0
    """A batch whose delivery takes longer than this means the worker is cut off."""

    def not_ready_because(self) -> list[str]:
        """Why the worker is not ready; empty when it is."""
        reasons = []
        if not self.joined:
            reasons.append("not joined to the consumer group")
        if not self.broker_answers:
            reasons.append("brokers not answering")
        if self.handler is not None and self.handler.send_failures:
            reasons.append("outputs failing to send")
        if self.handler is not None and self.handler.delivering_for(time.monotonic()) > self.stall_seconds:
            reasons.append("outputs not acknowledged")
        return reasons

    def ready(self) -> bool:
        """Ready when the group is joined, the brokers answer and outputs are being delivered."""
        return not self.not_ready_because()


def _credentials(settings: Settings) -> Any:
    context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
    if settings.security_protocol in ("SASL_SSL", "SASL_PLAINTEXT"):
        assert settings.sasl_password is not None  # noqa: S101 - checked by Settings
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context if settings.security_protocol == "SASL_SSL" else None,
        )
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(context)
    return None


def build_app(settings: Settings, policies: PolicyBook | None = None) -> tuple[faust.App, Runtime]:
    """Build the Faust app: topics, tables, the adjudication agent, health and metrics pages.

    Args:
        settings: the worker's settings.
        policies: the policy book, when the caller has loaded it already (start-up checks it).
    """
    if policies is None:
        policies = load_policy_book(settings.policy_dir)
    metrics = Metrics()
    runtime = Runtime(metrics, stall_seconds=settings.ready_timeout_seconds * 2)
    datadir = Path(tempfile.gettempdir()) / "claims-worker" / settings.group_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.group_id,
        broker=settings.broker_url,
        broker_credentials=_credentials(settings),
        store="memory://",
        autodiscover=False,
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        broker_rebalance_timeout=settings.rebalance_timeout_seconds,
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_request_size=3 * 1024 * 1024,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
    )
    source = app.topic(settings.input_topic, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    # Before anything creates the consumer: the input topic's offsets are checked by us, not Faust.
    guard_consumer(app, settings.input_topic, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    (table_name,) = TABLES
    table = app.Table(
        table_name,
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    view = TableView(table)
    history = ClaimHistory(view, max_claims=settings.history_max_claims)

    @table.on_recover
    async def rebuild_indexes() -> None:
        # Recovery (after every rebalance) replaced the table's contents underneath us.
        history.rebuild()

    processor = Processor(policies, history=history, max_input_bytes=settings.max_input_bytes)
    topics = Topics(settings.adjudicated_topic, settings.pended_topic, settings.dead_letter_topic)

    def progress(incoming: Incoming) -> None:
        runtime.last_offsets[incoming.partition] = incoming.offset

    handler = StreamHandler(
        processor,
        FaustPublisher(app),
        topics,
        metrics,
        scope=view,  # the claim table's changelog partition follows the input's
        on_progress=progress,
    )
    runtime.handler = handler
    gaps = GapCheck(app, settings, metrics)

    async def prepare(events: list[Any]) -> tuple[list[Outgoing], list[Gap]]:
        incoming = [
            Incoming(
                value=event.message.value or b"",
                key=event.message.key,
                topic=event.message.topic,
                partition=event.message.partition,
                offset=event.message.offset,
            )
            for event in events
        ]
        recovered, confirmed = await gaps.read_back(incoming)
        return handler.prepare(recovered + incoming), confirmed

    async def deliver(events: list[Any], outgoing: list[Outgoing], confirmed: list[Gap]) -> None:
        await handler.deliver(outgoing)
        await gaps.confirm(confirmed)
        for event in events:
            # Release our reference with an ack, not a bare decref: take_events has usually acked
            # the batch already (it does when the next batch is asked for), and only the ack that
            # brings the count to zero marks the offset safe to commit.
            event.ack()

    @app.agent(source, concurrency=1)  # concurrency 1: >1 can commit past in-flight events (faust #606)
    async def adjudicate(stream: Any) -> None:
        # Faust acknowledges events we never finished: take_events acks its batch in a `finally`
        # (also when a shutdown cancels us mid-batch), and once it exits the stream's passive
        # drainer acks whatever it still pulls from the channel. Faust then commits past inputs
        # whose outputs were never sent. So every message gets an extra reference the moment it
        # enters the stream (this processor runs before take_events' own), released only after
        # its batch is delivered: no stray ack can make an unprocessed message final.
        def hold(value: Any) -> Any:
            event = stream.current_event
            if event is not None:
                event.message.incref()
            return value

        stream.add_processor(hold)
        # About one table write per claim: let a whole batch's writes queue. Faust's default (100
        # pending) makes the stream wait for the buffer to ebb every few claims, warning each time.
        app.producer.buffer.max_messages = settings.batch_size * 4
        # One batch is delivered while the next is decided: deciding is CPU work, delivering mostly
        # waits for the broker's acknowledgements. Batches are delivered one after the other, in order.
        delivering: asyncio.Future[None] | None = None
        waiting: tuple[list[Any], list[Outgoing], list[Gap]] | None = None
        try:
            async for events in stream.take_events(settings.batch_size, within=settings.batch_within_seconds):
                preparing = asyncio.ensure_future(prepare(events))
                try:
                    await asyncio.shield(preparing)
                finally:
                    # Also on a shutdown: a batch being read back and decided is finished, then sent.
                    decided, confirmed = await preparing
                    waiting = (events, decided, confirmed)
                if delivering is not None:
                    await asyncio.shield(delivering)
                delivering, waiting = asyncio.ensure_future(deliver(*waiting)), None
        finally:
            # A shutdown lets the batches in hand finish: the one being delivered, then the one
            # already decided (the shutdown watchdog bounds both).
            try:
                if delivering is not None:
                    await delivering
                if waiting is not None:
                    await deliver(*waiting)
                    waiting = None
            finally:
                if waiting is not None:
                    # Never sent: its messages stay unacknowledged, and are read and decided again.
                    handler.abandon(waiting[1])

    runtime.agent = adjudicate

    @app.page("/healthz")
    async def healthz(web_view: Any, request: Any) -> Any:
        return web_view.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web_view: Any, request: Any) -> Any:
        reasons = runtime.not_ready_because()
        metrics.ready.set(0 if reasons else 1)
        body = {"ready": not reasons, "reasons": reasons, "assigned": len(runtime.assigned)}
        return web_view.json(body, status=503 if reasons else 200)

    probe = BrokerProbe(settings)

    @app.timer(interval=settings.ready_probe_seconds)  # type: ignore[untyped-decorator]  # faust's decorators are untyped
    async def probe_brokers() -> None:
        runtime.broker_answers = await probe.answers()
        metrics.ready.set(1 if runtime.ready() else 0)

    @app.page("/metrics")
    async def prometheus(web_view: Any, request: Any) -> Any:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]  # faust's decorators are untyped
    async def measure_lag() -> None:
        for topic, partition in list(runtime.assigned):
            if topic != settings.input_topic:
                continue
            tp = faust.types.TP(topic, partition)
            highwater = app.consumer.highwater(tp)
            if highwater is not None:
                done = runtime.last_offsets.get(partition, -1) + 1
                metrics.lag.labels(str(partition)).set(max(highwater - done, 0))
        metrics.ready.set(1 if runtime.ready() else 0)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust's signal stubs want a sync signature
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        runtime.assigned = {(tp.topic, tp.partition) for tp in assigned}
        gaps.forget()
        runtime.joined = True
        mine = sorted(p for t, p in runtime.assigned if t == settings.input_topic)
        audit.lifecycle("worker.partitions_assigned", partitions=mine, group_id=settings.group_id)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust's signal stubs want a sync signature
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        gone = sorted(tp.partition for tp in revoked if tp.topic == settings.input_topic)
        gaps.forget()
        audit.lifecycle("worker.partitions_revoked", partitions=gone, group_id=settings.group_id)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust's signal stubs want a sync signature
    async def close_reader(sender: Any, **_: Any) -> None:
        await gaps.close()
        await probe.close()

    return app, runtime


class BrokerProbe:
    """Asks the brokers for metadata, with a deadline: the readiness signal while cut off.

    Faust's own clients keep waiting on a frozen or unreachable broker; an orchestrator
    should stop routing to (and a person should see) a worker that cannot reach it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: AIOKafkaClient | None = None

    async def answers(self) -> bool:
        """Whether the brokers answered a metadata request within the readiness timeout."""
        try:
            async with asyncio.timeout(self.settings.ready_timeout_seconds):
                if self._client is None:
                    client = AIOKafkaClient(
                        bootstrap_servers=self.settings.broker_list, **self.settings.client_security()
                    )
                    self._client = client
                    await client.bootstrap()
                await self._client.fetch_all_metadata()
        except (TimeoutError, KafkaError, OSError):
            # A client interrupted mid-request can be left without brokers: start afresh next time.
            await self.close()
            return False
        return True

    async def close(self) -> None:
        """Close the probe's connections."""
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):  # closing a half-open client may fail; it is dropped anyway
                await client.close()


class GapCheck:
    """Finds offsets the stream skipped, reads them back, and confirms them once decided."""

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.topic = settings.input_topic
        self.metrics = metrics
        self.tracker = OffsetTracker(lambda partition: committed_offset(app, self.topic, partition))
        self.reader = GapReader(settings, self.topic)
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
                Incoming(value=r.value or b"", key=r.key, topic=self.topic, partition=gap.partition, offset=r.offset)
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
            consumer: Any = self.app.consumer  # the guarded consumer (`guard_consumer`)
            await consumer.confirm_gap(TP(self.topic, gap.partition), gap.start, gap.end)

    async def close(self) -> None:
        """Stop the read-back consumer."""
        await self.reader.close()


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


def run(settings: Settings, policies: PolicyBook | None = None) -> int:
    """Run the worker until SIGTERM or SIGINT; return the exit status."""
    app, _runtime = build_app(settings, policies)
    audit.lifecycle(
        "worker.starting",
        group_id=settings.group_id,
        input_topic=settings.input_topic,
        broker=settings.bootstrap_servers,
        processing_guarantee=settings.processing_guarantee,
        web_port=settings.web_port,
    )
    settle_heap()  # the code set and the policy book are loaded by now
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    BoundedWorker.grace_seconds = settings.shutdown_grace_seconds
    worker = BoundedWorker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        override_logging=False,
        quiet=True,
        redirect_stdouts=False,
        # The audit log owns stdout; the framework's console output (banner, cursor codes) goes to stderr.
        stdout=sys.stderr,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0
    else:
        code = 0
    audit.lifecycle("worker.stopped", error=None if code == 0 else f"exit {code}")
    if code != 0:
        print(f"claims-worker: error: the worker stopped with status {code}; the audit log says why", file=sys.stderr)
    return code
