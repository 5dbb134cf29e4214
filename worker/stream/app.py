"""The composition root: settings in, a Faust app with its agent, table and pages out."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import faust

from worker import audit, dead_letter
from worker.adjudication import PolicyBook
from worker.connection import KafkaConnection
from worker.headers import Headers
from worker.heap import settle_heap
from worker.history import ClaimHistory
from worker.policy_files import bundled_policy_dir, load_code_table, load_policy_book
from worker.processor import Processor
from worker.settings import Settings
from worker.signatures import load_verify_keys
from worker.stream.agent import register_agent
from worker.stream.batch import Incoming, StreamHandler, Topics
from worker.stream.changelog import Changelog
from worker.stream.faust_quirks import (
    BoundedWorker,
    TableView,
    assigned_partitions,
    committed_offset,
    guard_consumer,
    persist_changelog_offset,
    serve_only_own_pages,
)
from worker.stream.health import BrokerProbe, Runtime, serve_health
from worker.stream.intake import Intake
from worker.stream.metrics import Metrics
from worker.stream.offsets import Gap, GapCheck, GapReader
from worker.stream.placement import Placement
from worker.stream.topics import (
    TABLES,
    largest_message_bytes,
    max_message_bytes,
    repartition_topic,
    smallest_message_bytes,
)

STORE_OPTIONS = {
    # Faust's defaults (a 2 GiB block cache and three 64 MiB write buffers per partition) would let
    # each partition's database grow to gigabytes of memory; these bound it at about 80 MiB.
    "block_cache_size": 32 * 1024**2,
    "write_buffer_size": 16 * 1024**2,
    "max_write_buffer_number": 3,
}
"""RocksDB options of the history table, per partition the worker holds (active or standby)."""


def state_dir(settings: Settings) -> Path:
    """Where the worker keeps its RocksDB store: the setting, or a folder per group and web port.

    Two workers on one host need two folders (RocksDB locks its files); their web ports differ.
    """
    if settings.state_dir is not None:
        return settings.state_dir
    return Path(tempfile.gettempdir()) / "claims-worker" / f"{settings.group_id}-{settings.web_port}"


class FaustPublisher:
    """Publishes through the Faust app's producer (keyed, default partitioner)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        """Enqueue one message; the result completes on the broker's acknowledgement."""
        fut: Awaitable[Any] = await self.app.producer.send(topic, key, value, partition, None, headers)
        return fut


def faust_credentials(connection: KafkaConnection) -> Any:
    """The connection's security as Faust's credentials (None for PLAINTEXT)."""
    if connection.sasl_mechanism is not None:
        return faust.SASLCredentials(
            username=connection.sasl_username,
            password=connection.sasl_password,
            mechanism=connection.sasl_mechanism,
            ssl_context=connection.ssl_context,
        )
    if connection.ssl_context is not None:
        return faust.SSLCredentials(connection.ssl_context)
    return None


def build_app(settings: Settings, policies: PolicyBook | None = None) -> tuple[faust.App, Runtime]:
    """Build the Faust app: topics, table, the adjudication agent, health and metrics pages.

    Args:
        settings: the worker's settings.
        policies: the policy book, when the caller has loaded it already (start-up checks it).
    """
    if policies is None:
        policies = load_policy_book(settings.policy_dir)
    connection = KafkaConnection.from_settings(settings)
    metrics = Metrics()
    runtime = Runtime(metrics, stall_seconds=settings.ready_timeout_seconds * 2)
    datadir = state_dir(settings)
    datadir.mkdir(parents=True, exist_ok=True, mode=0o700)  # the store holds member ids and codes
    app = faust.App(
        settings.group_id,
        broker="kafka://" + ";".join(connection.servers),
        broker_credentials=faust_credentials(connection),
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        table_standby_replicas=settings.standby_replicas,
        recovery_consistency_check=settings.recovery_consistency_check,
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
        broker_commit_interval=settings.commit_interval_seconds,
        producer_linger=settings.producer_linger_ms / 1000,
        # Faust's default batch (16 KiB, about six decisions) made a batch of 500 outputs take a
        # dozen round trips: aiokafka keeps one request in flight per broker, one batch per partition.
        producer_max_batch_size=min(settings.producer_batch_bytes, smallest_message_bytes()),
        # The producer takes what the output topics take (a larger output is turned into a dead letter).
        producer_max_request_size=largest_message_bytes() + dead_letter.RECORD_SLACK,
        producer_compression_type=connection.compression_type,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
    )
    serve_only_own_pages(app)
    by_member = repartition_topic(settings)
    consumed = (settings.input_topic, settings.reviews_topic, by_member)
    source = app.topic(*consumed, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    intake = Intake(lambda: app.flow_control, lambda: app.consumer_generation_id, settings.batch_size)
    # Before anything creates the consumer: these topics' offsets are checked by us, not Faust,
    # and their fetches go to the intake whole.
    guard_consumer(app, consumed, fetch_max_wait_ms=settings.fetch_max_wait_ms, intake=intake)
    (table_name,) = TABLES
    table = app.Table(
        table_name,
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
        options=dict(STORE_OPTIONS),
    )
    changelog = None
    if settings.processing_guarantee == "at_least_once":  # under exactly-once, Faust's transactions carry it
        changelog = Changelog(
            table.changelog_topic.get_topic_name(),
            on_sent=lambda partition, offset: persist_changelog_offset(table, partition, offset),
        )
    view = TableView(table, changelog)
    history = ClaimHistory(view, window_days=settings.history_window_days)

    @table.on_recover
    async def reload_history() -> None:
        # Recovery (after every rebalance) changed the table's contents underneath us.
        history.reload()

    def progress(incoming: Incoming) -> None:
        runtime.last_offsets[incoming.partition] = incoming.offset

    read_committed = settings.processing_guarantee == "exactly_once"
    checks = [
        GapCheck(app, topic, GapReader(connection, topic, read_committed=read_committed), metrics) for topic in consumed
    ]
    member_reader = next(check.reader for check in checks if check.topic == by_member)
    placement = Placement(
        member_reader.end_offsets,
        lambda partition: committed_offset(app, by_member, partition),
        lambda partition, start, end: member_reader.read(Gap(partition, start, end)),
        assigned=lambda: assigned_partitions(app, by_member),
    )
    codes = load_code_table(settings.policy_dir or bundled_policy_dir())
    handler = StreamHandler(
        Processor(
            policies,
            history=history,
            max_input_bytes=settings.max_input_bytes,
            dead_letter_max_bytes=max_message_bytes("dead_letter"),
            codes=codes,
            review_keys=load_verify_keys(settings.review_verify_keys),
        ),
        FaustPublisher(app),
        Topics(
            settings.adjudicated_topic,
            settings.pended_topic,
            settings.dead_letter_topic,
            by_member=by_member,
            partitions=settings.partitions,
            reviews=settings.reviews_topic,
        ),
        metrics,
        scope=view,  # the history's partition is the repartition topic's
        placement=placement,
        on_progress=progress,
        changelog=changelog,
        event_source=f"/claims-worker/{settings.group_id}",
    )
    runtime.handler = handler
    runtime.intake = intake
    runtime.agent = register_agent(app, source, intake, handler, checks, placement)
    probe = BrokerProbe(connection, settings.ready_timeout_seconds)
    serve_health(app, runtime, probe, input_topic=settings.input_topic, probe_seconds=settings.ready_probe_seconds)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust's signal stubs want a sync signature
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        runtime.assigned = {(tp.topic, tp.partition) for tp in assigned}
        for check in checks:
            check.forget()
        runtime.joined = True
        mine = sorted(p for t, p in runtime.assigned if t == settings.input_topic)
        audit.lifecycle("worker.partitions_assigned", partitions=mine, group_id=settings.group_id)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust's signal stubs want a sync signature
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        gone = sorted(tp.partition for tp in revoked if tp.topic == settings.input_topic)
        for check in checks:
            check.forget()
        # Here, not on assignment: Faust may resume the flow (recovery done) before it signals that.
        placement.forget()
        audit.lifecycle("worker.partitions_revoked", partitions=gone, group_id=settings.group_id)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # faust's signal stubs want a sync signature
    async def close_clients(sender: Any, **_: Any) -> None:
        for check in checks:
            await check.close()
        await probe.close()

    return app, runtime


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The worker's event loop: uvloop's (libuv: less CPU per event on Faust's many small tasks) or asyncio's."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


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
        review_keys=sorted(load_verify_keys(settings.review_verify_keys).keys),
    )
    if settings.review_verify_keys is None:
        # Fail closed, and say so: without a key no review can be proved, so none changes a claim.
        audit.lifecycle("worker.reviews_refused", reason="no CLAIMS_REVIEW_VERIFY_KEYS: every review is dead-lettered")
    settle_heap()  # the code set and the policy book are loaded by now
    loop = new_event_loop(settings.event_loop)
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
