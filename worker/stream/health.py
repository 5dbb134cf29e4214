"""Liveness, readiness and the metrics page of the stream worker, and the broker probe behind readiness."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import faust
from aiohttp import web
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.connection import KafkaConnection
from worker.stream.batch import StreamHandler
from worker.stream.metrics import Metrics


@dataclass
class Runtime:
    """What the app's pages and hooks read: readiness, progress and metrics."""

    metrics: Metrics
    handler: StreamHandler | None = None
    agent: Any = None
    """The adjudication agent."""
    intake: Any = None
    """Where the consumer puts fetched batches for the agent (component tests offer them)."""
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


class BrokerProbe:
    """Asks the brokers for metadata, with a deadline: the readiness signal while cut off.

    Faust's own clients keep waiting on a frozen or unreachable broker; an orchestrator
    should stop routing to (and a person should see) a worker that cannot reach it.
    """

    def __init__(self, connection: KafkaConnection, timeout_seconds: float) -> None:
        self.connection = connection
        self.timeout_seconds = timeout_seconds
        self._client: Any = None

    async def answers(self) -> bool:
        """Whether the brokers answered a metadata request within the timeout."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                if self._client is None:
                    client = self.connection.client()
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


def serve_health(
    app: faust.App, runtime: Runtime, probe: BrokerProbe, *, input_topic: str, probe_seconds: float
) -> None:
    """Add `/healthz`, `/readyz` and `/metrics` to the app, with the timers that keep them current."""
    metrics = runtime.metrics

    @app.page("/healthz")
    async def healthz(web_view: Any, request: Any) -> Any:
        return web_view.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web_view: Any, request: Any) -> Any:
        reasons = runtime.not_ready_because()
        metrics.ready.set(0 if reasons else 1)
        body = {"ready": not reasons, "reasons": reasons, "assigned": len(runtime.assigned)}
        return web_view.json(body, status=503 if reasons else 200)

    @app.page("/metrics")
    async def prometheus(web_view: Any, request: Any) -> Any:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.timer(interval=probe_seconds)  # type: ignore[untyped-decorator]  # faust's decorators are untyped
    async def probe_brokers() -> None:
        runtime.broker_answers = await probe.answers()
        metrics.ready.set(1 if runtime.ready() else 0)

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]  # faust's decorators are untyped
    async def measure_lag() -> None:
        for topic, partition in list(runtime.assigned):
            if topic != input_topic:
                continue
            highwater = app.consumer.highwater(TP(topic, partition))
            if highwater is not None:
                done = runtime.last_offsets.get(partition, -1) + 1
                metrics.lag.labels(str(partition)).set(max(highwater - done, 0))
        metrics.ready.set(1 if runtime.ready() else 0)
