"""The batch step of the stream worker, free of Faust so it can be tested alone.

For each input: decide or dead-letter it, publish exactly one output, wait
until the broker has acknowledged every output of the batch, and only then
let the batch be acknowledged (Faust commits acknowledged offsets). A failed
send is retried with backoff, never dropped: an exception escaping a Faust
agent would acknowledge the batch and lose it.

Deciding (`prepare`) and delivering (`deliver`) are separate steps so the
stream can decide the next batch while this one waits for its acknowledgements.
Batches are still delivered one after the other, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from claims_contracts.v1 import SourcePosition
from worker import audit
from worker.processor import DeadLettered, Decided, Processor, Redelivered
from worker.stream.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Incoming:
    """One input message and where it came from."""

    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Topics:
    """Where outputs go."""

    adjudicated: str
    pended: str
    dead_letter: str


class Publisher(Protocol):
    """Sends one message; the returned awaitable completes when the broker acknowledges it."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        """Enqueue a message and return its delivery future."""
        ...


class PartitionScope(Protocol):
    """Tells the claim history which input partition the current claim came from."""

    partition: int


@dataclass
class Outgoing:
    """One decided input and its output, waiting to be delivered."""

    incoming: Incoming
    topic: str
    key: bytes | None
    payload: bytes
    result: Decided | DeadLettered
    taken: float


class StreamHandler:
    """Decides batches of claim events and publishes one output per input."""

    def __init__(
        self,
        processor: Processor,
        publisher: Publisher,
        topics: Topics,
        metrics: Metrics,
        *,
        scope: PartitionScope | None = None,
        on_progress: Callable[[Incoming], None] | None = None,
        retry_initial: float = 0.1,
        retry_max: float = 10.0,
    ) -> None:
        self.processor = processor
        self.publisher = publisher
        self.topics = topics
        self.metrics = metrics
        self.scope = scope
        self.on_progress = on_progress
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.send_failures = 0
        """Consecutive failed send rounds; non-zero means the worker is cut off."""
        self._delivering_since: float | None = None
        self._undelivered: set[str] = set()
        """Input event ids decided but not yet delivered, in any prepared batch: a redelivery of
        one of them is skipped ("already emitted" is only recorded after delivery)."""

    def delivering_for(self, now: float) -> float:
        """Seconds the batch in hand has waited for its acknowledgements (0 when none waits)."""
        return 0.0 if self._delivering_since is None else now - self._delivering_since

    def prepare(self, batch: Sequence[Incoming]) -> list[Outgoing]:
        """Decide a batch: one output per input, recorded in the claim history but not yet sent.

        Pass the result to `deliver`, in the order the batches were prepared.
        """
        pending: list[Outgoing] = []
        for incoming in batch:
            taken = time.perf_counter()
            self.metrics.events_in.labels(incoming.topic).inc()
            if self.scope is not None:
                self.scope.partition = incoming.partition
            result = self.processor.process(
                incoming.value,
                SourcePosition.of_record(incoming.topic, incoming.partition, incoming.offset, incoming.key),
            )
            if isinstance(result, Redelivered) or (
                isinstance(result, Decided) and result.claim.event_id in self._undelivered
            ):
                self.metrics.redelivered.inc()
                continue
            key: bytes | None
            if isinstance(result, Decided):
                self._undelivered.add(result.claim.event_id)
                # Remember the lines now so a duplicate later in this batch is seen;
                # "already emitted" is only recorded after delivery (below).
                self.processor.remember(result)
                topic = self.topics.pended if result.decision.pended else self.topics.adjudicated
                payload = result.event.model_dump_json().encode()
                key = incoming.key if incoming.key is not None else result.event.claim_id.encode()
            else:
                topic = self.topics.dead_letter
                payload = result.record.model_dump_json().encode()
                key = incoming.key
            pending.append(Outgoing(incoming, topic, key, payload, result, taken))
        return pending

    async def deliver(self, pending: list[Outgoing]) -> None:
        """Publish a prepared batch; return only when every output is acknowledged and recorded."""
        self._delivering_since = time.monotonic()
        try:
            await self._deliver(pending)
        finally:
            self._delivering_since = None
        for item in pending:
            self._after_delivery(item)

    def abandon(self, pending: list[Outgoing]) -> None:
        """Forget a prepared batch that will not be delivered: its inputs, read again, are decided again."""
        for item in pending:
            if isinstance(item.result, Decided):
                self._undelivered.discard(item.result.claim.event_id)

    async def _deliver(self, pending: list[Outgoing]) -> None:
        remaining = pending
        delay = self.retry_initial
        while remaining:
            futures = []
            for item in remaining:
                try:
                    futures.append(await self.publisher.send(item.topic, item.key, item.payload))
                except Exception as error:  # noqa: BLE001 - any send failure is retried, never dropped
                    futures.append(_failed(error))
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            failed = [
                item for item, outcome in zip(remaining, outcomes, strict=True) if isinstance(outcome, BaseException)
            ]
            if not failed:
                self.send_failures = 0
                return
            self.send_failures += 1
            first = next(o for o in outcomes if isinstance(o, BaseException))
            audit.lifecycle("worker.send_failed", events=len(failed), error=type(first).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)
            remaining = failed

    def _after_delivery(self, item: Outgoing) -> None:
        source = {
            "source_topic": item.incoming.topic,
            "source_partition": item.incoming.partition,
            "source_offset": item.incoming.offset,
        }
        if self.scope is not None:
            self.scope.partition = item.incoming.partition
        result = item.result
        if isinstance(result, Decided):
            self.processor.history.mark_emitted(result.claim, result.decision)
            self._undelivered.discard(result.claim.event_id)
            self.metrics.decisions.labels(result.event.event_type).inc()
            for line in result.event.lines:
                self.metrics.line_outcomes.labels(line.outcome.value, line.rule).inc()
            now = time.perf_counter()
            self.metrics.latency.observe(now - item.taken)
            audit.record_decision(result, source=source, output_topic=item.topic, started=item.taken, now=now)
        else:
            self.metrics.dead_letters.labels(result.record.kind.value).inc()
            audit.record_dead_letter(result, source=source, output_topic=item.topic)
        if self.on_progress is not None:
            self.on_progress(item.incoming)


async def _failed(error: BaseException) -> Any:
    raise error
