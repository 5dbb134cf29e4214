"""The batch step of the stream worker, free of Faust so it can be tested alone.

For each input: decide or dead-letter it, publish exactly one output, wait
until the broker has acknowledged every output of the batch, and only then
let the batch be acknowledged (Faust commits acknowledged offsets). A failed
send is retried with backoff, never dropped: an exception escaping a Faust
agent would acknowledge the batch and lose it.

Deciding (`prepare`) and delivering (`deliver`) are separate steps so the
stream can decide the next batch while this one waits for its acknowledgements.
Batches are still delivered one after the other, in order. Delivering a batch also sends the
claim history's table writes it made (`worker.stream.changelog`), after its outputs: the batch
counts as delivered once those are acknowledged too.

With re-keying on (`Topics.by_member`), an input is first only read and forwarded to the
member's partition of the internal topic (its "output" is the forwarded copy, delivered and
acknowledged like any other), and it is decided when it comes back from that topic
(`worker.stream.rekey`). Forwarding reads only the member id (the member's partition validates
the rest, and dead-letters what breaks the contract with the input's own position); an input
with no member id to read is parsed in full and dead-lettered at once. An input already on its
member's partition is decided where it was read, once nothing forwarded from that partition is
still to be decided (`worker.stream.placement`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from claims_contracts.v1 import SourcePosition
from worker import audit, dead_letter
from worker.headers import Headers, body_headers, output_headers, traceparent_of
from worker.history import Emitted
from worker.processor import DeadLettered, Decided, Processor, Redelivered, pend_of
from worker.resolution import Resolved, ReviewRedelivered
from worker.signatures import SIGNATURE_HEADER
from worker.stream.changelog import Changelog, TableWrite
from worker.stream.metrics import Metrics
from worker.stream.placement import Placement
from worker.stream.rekey import KIND_HEADER, REVIEW, is_review, member_partition, origin, source_header, without_source

TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)
"""Send failures no retry can mend: the producer's size cap, or the topic's `max.message.bytes`."""

SLICE_SECONDS = 0.002
"""The event loop runs after each this long (wall time) of deciding a batch (`StreamHandler.prepare_in_slices`)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One input message and where it came from."""

    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Topics:
    """Where outputs go."""

    adjudicated: str
    pended: str
    dead_letter: str
    by_member: str | None = None
    """The internal topic inputs are re-keyed through by member id (None: decide inputs as they come)."""
    partitions: int = 1
    """Partitions of `by_member`."""
    reviews: str | None = None
    """The topic of review decisions: forwarded by member like claims, and decided into final adjudications."""


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A readable input sent on to its member's partition, to be decided there."""

    member_id: str
    partition: int


class Publisher(Protocol):
    """Sends one message; the returned awaitable completes when the broker acknowledges it."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        """Enqueue a message (on `partition`, or the key's by default) and return its delivery future.

        A None value is a tombstone (a table's deletion in its changelog).
        """
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
    result: Decided | DeadLettered | Forwarded | Resolved
    taken: float
    headers: Headers
    partition: int | None = None
    source: SourcePosition | None = None
    """Where the input was first read (a forwarded input's original position)."""
    acked_offset: int | None = None
    """Where the broker wrote the output, once it acknowledged it."""


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
        placement: Placement | None = None,
        on_progress: Callable[[Incoming], None] | None = None,
        changelog: Changelog | None = None,
        retry_initial: float = 0.1,
        retry_max: float = 10.0,
        event_source: str = "/claims-worker",
    ) -> None:
        self.processor = processor
        self.publisher = publisher
        self.topics = topics
        self.metrics = metrics
        self.scope = scope
        self.placement = placement
        """When inputs on their member's partition may skip the hop (None: every input is forwarded)."""
        self.on_progress = on_progress
        self.changelog = changelog
        """The history table's writes to send after each batch's outputs (None: the table sends its own)."""
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.event_source = event_source
        """The CloudEvents `source` of the outputs."""
        self.send_failures = 0
        """Consecutive failed send rounds; non-zero means the worker is cut off."""
        self._delivering_since: float | None = None
        self._undelivered: dict[tuple[str, str], Emitted] = {}
        """Inputs decided but not yet delivered, in any prepared batch, by member and event id: a redelivery
        of one of them is skipped ("already emitted" is only recorded after delivery)."""
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        """Labelled children of the metrics, by metric and labels (topics, outcomes, rules, queues,
        kinds: each bounded by the settings, the policy or the contract)."""
        self._resolving: set[str] = set()
        """Pends that reviews in a prepared batch resolve, not yet delivered: a second review of one is refused."""

    def _child(self, metric: Any, *labels: str) -> Any:
        # A labelled child looked up once per metric and labels: `labels()` costs three times `inc()`.
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def delivering_for(self, now: float) -> float:
        """Seconds the batch in hand has waited for its acknowledgements (0 when none waits)."""
        return 0.0 if self._delivering_since is None else now - self._delivering_since

    def prepare(self, batch: Sequence[Incoming]) -> list[Outgoing]:
        """Decide a batch: one output per input, recorded in the claim history but not yet sent.

        Pass the result to `deliver`, in the order the batches were prepared.
        """
        pending: list[Outgoing] = []
        for incoming in self._in_order(batch):
            self._prepare_one(incoming, pending)
        return pending

    async def prepare_in_slices(
        self, batch: Sequence[Incoming], slice_seconds: float = SLICE_SECONDS
    ) -> list[Outgoing]:
        """`prepare`, letting the event loop run after each `slice_seconds` of deciding.

        Deciding is CPU work the loop cannot interrupt, and the batch delivered meanwhile waits on
        it: its outputs sit in the producer until the loop runs the sender, their acknowledgements
        are read only after that, and then its changelog waits the same again. Decided at once, a
        batch of 40 claims kept the one before it waiting 22-40 ms for its acknowledgements
        (docs/benchmarks-notes.md, seventh round). Yielding between inputs, never within one,
        changes when the batch in hand is delivered, not what is decided: each input is still
        decided whole, in order, against the history as the deliveries left it (a delivery only
        moves an input from "decided, undelivered" to "emitted", and both count as seen).
        """
        pending: list[Outgoing] = []
        mark = time.perf_counter()
        for incoming in self._in_order(batch):
            self._prepare_one(incoming, pending)
            if time.perf_counter() - mark >= slice_seconds:
                await asyncio.sleep(0)
                mark = time.perf_counter()
        return pending

    def _in_order(self, batch: Sequence[Incoming]) -> Sequence[Incoming]:
        if self.placement is not None:
            # The member topic's records first (each partition keeps its order): what comes back
            # there may lift a partition's fence for the inputs of the same batch.
            return sorted(batch, key=lambda item: item.topic != self.topics.by_member)
        return batch

    def _prepare_one(self, incoming: Incoming, pending: list[Outgoing]) -> None:
        """Decide (or forward, or dead-letter) one input; append its output to `pending` (none for a redelivery)."""
        taken = time.perf_counter()
        self._child(self.metrics.events_in, incoming.topic).inc()
        if self.topics.by_member is not None and incoming.topic != self.topics.by_member:
            forwarded = self._forward(incoming, taken)
            if forwarded is not None:
                pending.append(forwarded)
                return
            self.metrics.in_place.inc()  # on its member's partition: decided here, below
        elif self.placement is not None:
            self.placement.decided(incoming.partition, incoming.offset)  # decided below, before the next
        if self.scope is not None:
            self.scope.partition = incoming.partition
        source = self._source(incoming)
        if self._is_review(incoming):
            signature = next((value for name, value in incoming.headers if name == SIGNATURE_HEADER), None)
            outcome = self.processor.review(incoming.value, source, signature=signature, resolving=self._resolving)
            if isinstance(outcome, ReviewRedelivered):
                self.metrics.redelivered.inc()
                return
            if isinstance(outcome, Resolved):
                self._resolving.add(str(outcome.review.pend_event_id))
            pending.append(self._outgoing(incoming, outcome, taken, source))
            return
        result = self.processor.process(incoming.value, source, undelivered=self._undelivered)
        if isinstance(result, Redelivered):
            self.metrics.redelivered.inc()
            return
        if isinstance(result, Decided):
            self._undelivered[(result.claim.member_id, result.claim.event_id)] = (
                result.decision.event_id,
                result.fingerprint,
            )
            # Remember the lines now so a duplicate later in this batch is seen;
            # "already emitted" is only recorded after delivery (below).
            self.processor.remember(result)
        pending.append(self._outgoing(incoming, result, taken, source))

    def _is_review(self, incoming: Incoming) -> bool:
        if self.topics.by_member is not None and incoming.topic == self.topics.by_member:
            return is_review(incoming.headers)
        return self.topics.reviews is not None and incoming.topic == self.topics.reviews

    def _source(self, incoming: Incoming) -> SourcePosition:
        """Where an input was first read: a forwarded one says so in a header."""
        if self.topics.by_member is not None and incoming.topic == self.topics.by_member:
            first = origin(incoming.headers)
            if first is not None:
                return first
        return _position(incoming)

    def _forward(self, incoming: Incoming, taken: float) -> Outgoing | None:
        """Send a readable input on to its member's partition, unchanged; dead-letter an unreadable one.

        None: the input is on its member's partition and may be decided where it was read.
        """
        review = self.topics.reviews is not None and incoming.topic == self.topics.reviews
        # The hop needs only the member id: read it without validating the rest, which the
        # member's partition does anyway. What has no member id to read is parsed in full here,
        # so it is dead-lettered at once with the contract's reason.
        member = member_of(incoming.value, self.processor.max_input_bytes, review=review)
        if member is None:
            try:
                if review:
                    member = self.processor.parse_review(incoming.value).member_id
                else:
                    member = self.processor.parse(incoming.value).claim.member.member_id
            except dead_letter.Unreadable as unreadable:
                dead = self.processor.dead_lettered(incoming.value, unreadable, _position(incoming))
                return self._outgoing(incoming, dead, taken)
        assert self.topics.by_member is not None  # noqa: S101 - only called when re-keying
        partition = member_partition(member, self.topics.partitions)
        if partition == incoming.partition and self.placement is not None:
            if self.placement.in_place(partition):
                return None
            self.placement.forwarding(partition)
        position = _position(incoming)  # only now: an input decided in place has its own (`_source`)
        headers = [(name, value or b"") for name, value in without_source(incoming.headers)]
        headers.append(source_header(position))
        if review:
            headers.append((KIND_HEADER, REVIEW))
        return Outgoing(
            incoming,
            self.topics.by_member,
            member.encode(),
            incoming.value,
            Forwarded(member, partition),
            taken,
            headers,
            partition=partition,
            source=position,
        )

    def _outgoing(
        self,
        incoming: Incoming,
        result: Decided | DeadLettered | Resolved,
        taken: float,
        source: SourcePosition | None = None,
    ) -> Outgoing:
        trace = traceparent_of(incoming.headers)
        if isinstance(result, Resolved):
            final = result.event
            headers = output_headers(final, source=self.event_source, traceparent=trace)
            payload = final.model_dump_json().encode()
            topic = self.topics.adjudicated
            return Outgoing(incoming, topic, final.claim_id.encode(), payload, result, taken, headers, source=source)
        if isinstance(result, Decided):
            # Keyed by claim id whatever the input key, so a claim's outputs share a partition.
            topic = self.topics.pended if result.event_type == "claim.pended" else self.topics.adjudicated
            headers = body_headers(result.body, source=self.event_source, traceparent=trace)
            claim_key = result.claim.claim_id.encode()
            return Outgoing(incoming, topic, claim_key, result.payload, result, taken, headers, source=source)
        record = result.record
        headers = output_headers(record, source=self.event_source, traceparent=trace)
        original = source.key if source is not None and not source.key_truncated else incoming.key
        key = dead_letter.message_key(original)
        return Outgoing(
            incoming,
            self.topics.dead_letter,
            key,
            record.model_dump_json().encode(),
            result,
            taken,
            headers,
            source=source,
        )

    def _smaller(self, item: Outgoing) -> Outgoing | None:
        """What to send instead of an output the broker or the producer refused for its size.

        A decision becomes an `output_too_large` dead letter with as much of the input as the
        dead-letter topic takes; a dead letter refused itself is cut to `SUMMARY_BYTES`, then to
        no original bytes at all (the size and SHA-256 stay). None when nothing smaller is left:
        a topic that refuses a record of about a kilobyte is retried, and reported not ready.
        """
        limit: int | None
        if isinstance(item.result, Decided):
            self._undelivered.pop((item.result.claim.member_id, item.result.claim.event_id), None)
            self.processor.history.forget_undelivered(item.result.claim)
            limit = self.processor.dead_letter_max_bytes
        elif isinstance(item.result, Resolved):
            self._resolving.discard(str(item.result.review.pend_event_id))
            limit = self.processor.dead_letter_max_bytes
        elif isinstance(item.result, Forwarded):
            self._forward_ended(item, None)
            limit = self.processor.dead_letter_max_bytes
        elif not item.result.record.original_b64:
            return None
        else:
            limit = dead_letter.SUMMARY_BYTES if len(item.payload) > dead_letter.SUMMARY_BYTES else 0
        problem = dead_letter.output_too_large(len(item.payload), item.topic)
        source = item.source or _position(item.incoming)
        replacement = self.processor.dead_lettered(item.incoming.value, problem, source, limit)
        audit.lifecycle("worker.output_too_large", output_topic=item.topic, error=problem.errors[0].message)
        return self._outgoing(item.incoming, replacement, item.taken, source)

    async def deliver(self, pending: list[Outgoing]) -> None:
        """Publish a prepared batch; return only when every output is acknowledged and recorded."""
        self._delivering_since = time.monotonic()
        try:
            await self._deliver(pending)
            with audit.held():  # the batch's audit lines: one write, before its inputs are acknowledged
                for item in pending:
                    self._after_delivery(item)
            if self.changelog is not None:
                await self._send_changelog(self.changelog.take())
        finally:
            self._delivering_since = None

    def abandon(self, pending: list[Outgoing]) -> None:
        """Forget a prepared batch that will not be delivered: its inputs, read again, are decided again."""
        for item in pending:
            if isinstance(item.result, Decided):
                self._undelivered.pop((item.result.claim.member_id, item.result.claim.event_id), None)
                self.processor.history.forget_undelivered(item.result.claim)
            elif isinstance(item.result, Resolved):
                self._resolving.discard(str(item.result.review.pend_event_id))
            elif isinstance(item.result, Forwarded):
                self._forward_ended(item, None)

    def _forward_ended(self, item: Outgoing, offset: int | None) -> None:
        """A forward of an input to its own partition was acknowledged at `offset` (None: never sent)."""
        assert isinstance(item.result, Forwarded)  # noqa: S101 - only called for forwards
        if self.placement is not None and item.result.partition == item.incoming.partition:
            self.placement.forwarded(item.result.partition, offset)

    async def _deliver(self, pending: list[Outgoing]) -> None:
        remaining = pending
        delay = self.retry_initial
        while remaining:
            outcomes = await self._send_all(
                (item.topic, item.key, item.payload, item.headers, item.partition) for item in remaining
            )
            failed = []
            for index, (item, outcome) in enumerate(zip(remaining, outcomes, strict=True)):
                smaller = self._smaller(item) if isinstance(outcome, TOO_LARGE) else None
                if smaller is not None:
                    # Never retried as it is: it would stall the partition for good.
                    pending[next(i for i, each in enumerate(pending) if each is item)] = smaller
                    failed.append(smaller)
                    outcomes[index] = None
                elif isinstance(outcome, BaseException):
                    failed.append(item)
                else:
                    item.acked_offset = getattr(outcome, "offset", None)
            if not failed:
                self.send_failures = 0
                return
            first = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if first is not None:  # a real failure, not only replacements to send: wait, then retry
                self.send_failures += 1
                audit.lifecycle("worker.send_failed", events=len(failed), error=type(first).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
            remaining = failed

    async def _send_all(
        self, messages: Iterable[tuple[str, bytes | None, bytes | None, Headers | None, int | None]]
    ) -> list[Any]:
        """Send messages (topic, key, value, headers, partition) in order; each one's acknowledgement or error."""
        futures = []
        for topic, key, value, headers, partition in messages:
            try:
                futures.append(await self.publisher.send(topic, key, value, headers, partition))
            except Exception as error:  # noqa: BLE001 - any send failure is retried, never dropped
                futures.append(_failed(error))
        return await asyncio.gather(*futures, return_exceptions=True)

    async def _send_changelog(self, writes: list[TableWrite]) -> None:
        """Send table writes in order; return once each is acknowledged (or refused for its size).

        After a failure, everything from the first write not acknowledged is sent again, in
        order: a key's last write stays last in its changelog partition, and a write acknowledged
        twice only repeats itself.
        """
        assert self.changelog is not None  # noqa: S101 - only called with a changelog
        topic = self.changelog.topic
        remaining = writes
        delay = self.retry_initial
        while remaining:
            outcomes = await self._send_all(
                (topic, write.key, write.value, None, write.partition) for write in remaining
            )
            offsets: dict[int, int] = {}
            failed_at = None
            for index, (write, outcome) in enumerate(zip(remaining, outcomes, strict=True)):
                if isinstance(outcome, TOO_LARGE):
                    # Larger than the changelog takes: retrying would stall the partition for good. The
                    # store holds the record; a worker recovering this partition elsewhere would not.
                    self.metrics.changelog_refused.inc()
                    audit.lifecycle(
                        "worker.changelog_write_too_large", partition=write.partition, error=type(outcome).__name__
                    )
                elif isinstance(outcome, BaseException):
                    failed_at = index
                    break
                elif getattr(outcome, "offset", None) is not None:
                    offsets[write.partition] = outcome.offset
            self.changelog.sent(offsets)
            if failed_at is None:
                self.send_failures = 0
                return
            self.send_failures += 1
            failure = outcomes[failed_at]
            audit.lifecycle("worker.send_failed", events=len(remaining) - failed_at, error=type(failure).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)
            remaining = remaining[failed_at:]

    def _after_delivery(self, item: Outgoing) -> None:
        result = item.result
        if isinstance(result, Forwarded):
            self.metrics.rekeyed.inc()
            self._forward_ended(item, item.acked_offset)
            if self.on_progress is not None:
                self.on_progress(item.incoming)
            return
        first = item.source or _position(item.incoming)
        source: dict[str, Any] = {
            "source_topic": first.topic,
            "source_partition": first.partition,
            "source_offset": first.offset,
        }
        trace = traceparent_of(item.incoming.headers)
        if trace is not None:
            source["traceparent"] = trace
        if self.scope is not None:
            self.scope.partition = item.incoming.partition
        if isinstance(result, Resolved):
            review = result.review
            self.processor.history.mark_resolved(
                review.member_id,
                review.claim_id,
                str(review.event_id),
                str(result.event.event_id),
                units=result.authorization_units,
                review=review.model_dump(mode="json"),
            )
            self._resolving.discard(str(review.pend_event_id))
            self._child(self.metrics.reviews, result.queue).inc()
            self._child(self.metrics.pend_age, result.queue).observe(max(result.pend_age_seconds, 0.0))
            audit.record_review(result, source=source, output_topic=item.topic)
        elif isinstance(result, Decided):
            self.processor.history.mark_emitted(result.claim, result.decision, result.fingerprint, pend=pend_of(result))
            self._undelivered.pop((result.claim.member_id, result.claim.event_id), None)
            self._child(self.metrics.decisions, result.event_type).inc()
            if result.again:
                self.metrics.decided_again.inc()  # the decision it already had: no pend opened, no line counted again
            else:
                if result.decision.queue is not None:
                    self._child(self.metrics.pends_opened, result.decision.queue).inc()
                for line in result.decision.lines:
                    self._child(self.metrics.line_outcomes, line.outcome.value, line.rule).inc()
            now = time.perf_counter()
            self.metrics.latency.observe(now - item.taken)
            audit.record_decision(result, source=source, output_topic=item.topic, started=item.taken, now=now)
        else:
            self._child(self.metrics.dead_letters, result.record.kind.value).inc()
            audit.record_dead_letter(result, source=source, output_topic=item.topic)
        if self.on_progress is not None:
            self.on_progress(item.incoming)


MEMBER_ID_BYTES = 80
"""The contract's longest member id."""


def member_of(raw: bytes, max_bytes: int, *, review: bool = False) -> str | None:
    """The member id of a claim event (or a review decision), read without validating the rest.

    None when there is none to read (too large, not JSON, not where the contract puts it, not
    a string of the contract's length): the caller parses the input in full to say why.
    """
    if len(raw) > max_bytes:
        return None
    try:
        event = orjson.loads(raw)
        member = event["member_id"] if review else event["claim"]["member"]["member_id"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None
    if isinstance(member, str) and 0 < len(member) <= MEMBER_ID_BYTES:
        return member
    return None


def _position(incoming: Incoming) -> SourcePosition:
    return SourcePosition.of_record(
        incoming.topic, incoming.partition, incoming.offset, incoming.key, keep=dead_letter.KEY_KEPT
    )


async def _failed(error: BaseException) -> Any:
    raise error
