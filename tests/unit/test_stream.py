"""The batch step: one output per input, delivered before it counts, retried on failure."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import json
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.builders import claim_event, example_event, ketamine_line, to_bytes
from tests.fakes import FakePublisher
from worker import audit
from worker.adjudication import PolicyBook
from worker.processor import Processor
from worker.stream.batch import Incoming, StreamHandler, Topics
from worker.stream.metrics import Metrics

TOPICS = Topics("out.adjudicated", "out.pended", "out.dead-letter")


async def handle_batch(step: StreamHandler, batch: list[Incoming]) -> None:
    """Decide and deliver one batch, as the agent does."""
    await step.deliver(step.prepare(batch))


def incoming(value: bytes, offset: int, key: bytes | None = b"k") -> Incoming:
    return Incoming(value=value, key=key, topic="in", partition=0, offset=offset)


@pytest.fixture
def log() -> io.StringIO:
    stream = io.StringIO()
    audit.configure(stream)
    return stream


def handler(policies: PolicyBook, publisher: FakePublisher) -> StreamHandler:
    return StreamHandler(Processor(policies), publisher, TOPICS, Metrics(), retry_initial=0.001, retry_max=0.002)


async def test_each_input_yields_one_output_on_its_topic(policies: PolicyBook, log: io.StringIO) -> None:
    publisher = FakePublisher()
    batch = [
        incoming(to_bytes(example_event()), 0),
        incoming(to_bytes(claim_event(claim_id="P", diagnoses=["R52"])), 1),
        incoming(b"not json", 2),
    ]
    await handle_batch(handler(policies, publisher), batch)
    assert [topic for topic, _, _ in publisher.sent] == ["out.adjudicated", "out.pended", "out.dead-letter"]
    dead = json.loads(publisher.sent[2][2])
    assert (dead["source"]["topic"], dead["source"]["offset"], dead["kind"]) == ("in", 2, "not_json")


@pytest.mark.parametrize("key", [None, b"CLM-2025-000123", b"  CLM-2025-000123 ", b"another-key", b"\x00\xff"])
async def test_outputs_are_keyed_by_claim_id_whatever_the_input_key(
    policies: PolicyBook, log: io.StringIO, key: bytes | None
) -> None:
    publisher = FakePublisher()
    await handle_batch(handler(policies, publisher), [incoming(to_bytes(example_event()), 0, key=key)])
    assert publisher.sent[0][1] == b"CLM-2025-000123"


async def test_an_output_refused_for_its_size_becomes_a_dead_letter_and_the_batch_moves_on(
    policies: PolicyBook, log: io.StringIO
) -> None:
    # The broker takes 2,000 bytes: the example's decision (about 2.6 KB) can never be sent, nor
    # its dead letter with the whole input (the worker was told 3,000); the next claim's can.
    publisher = FakePublisher(max_bytes=2000)
    step = StreamHandler(
        Processor(policies, dead_letter_max_bytes=3000), publisher, TOPICS, Metrics(), retry_initial=0.001
    )
    small = claim_event(claim_id="S", lines=[ketamine_line(1)])
    await asyncio.wait_for(
        handle_batch(step, [incoming(to_bytes(example_event()), 0), incoming(to_bytes(small), 1)]), 5
    )
    # The one that fitted went first; its neighbour's replacement in the next round.
    assert [topic for topic, _, _ in publisher.sent] == ["out.adjudicated", "out.dead-letter"]
    first = json.loads(publisher.sent[1][2])
    assert first["kind"] == "output_too_large"
    assert first["original_truncated"] is True
    assert first["original_size"] == len(to_bytes(example_event()))
    assert first["original_sha256"] == hashlib.sha256(to_bytes(example_event())).hexdigest()
    assert "worker.output_too_large" in log.getvalue()
    assert step.send_failures == 0  # a replacement is not a failure to reach the broker
    assert "worker.send_failed" not in log.getvalue()


async def test_a_huge_key_never_stalls_the_partition(policies: PolicyBook, log: io.StringIO) -> None:
    # A 900 KB key and a 1.1 MB value: the dead letter keeps what fits its topic, keyed by a digest.
    publisher = FakePublisher(max_bytes=2_097_152)
    step = StreamHandler(
        Processor(policies, dead_letter_max_bytes=2_097_152), publisher, TOPICS, Metrics(), retry_initial=0.001
    )
    key, value = b"k" * 900_000, b"v" * 1_100_000
    await asyncio.wait_for(handle_batch(step, [incoming(value, 0, key=key), incoming(to_bytes(example_event()), 1)]), 5)
    (topic, sent_key, dead), (next_topic, _, _) = publisher.sent
    assert (topic, next_topic) == ("out.dead-letter", "out.adjudicated")
    record = json.loads(dead)
    assert sent_key == hashlib.sha256(key).hexdigest().encode()
    assert record["source"]["key_size"] == 900_000
    assert record["source"]["key_truncated"] is True
    assert record["source"]["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert record["original_sha256"] == hashlib.sha256(value).hexdigest()
    assert base64.b64decode(record["original_b64"]) == value  # it fits whole: 1.1 MB is 1.47 MB in base64
    assert len(dead) <= 2_097_152 - 1024


async def test_an_event_id_reused_for_other_content_gets_a_dead_letter_naming_both(
    policies: PolicyBook, log: io.StringIO
) -> None:
    publisher = FakePublisher()
    step = handler(policies, publisher)
    # One member: its history is where the event ids of its claims are known (another member's
    # claims are decided on their own partition, by whichever worker holds it).
    first = claim_event(claim_id="FIRST", member_id="M1", event_id="6f1c7a52-3f83-4f6e-9d0e-1f1f5b0c0001")
    other = claim_event(claim_id="OTHER", member_id="M1", event_id="6f1c7a52-3f83-4f6e-9d0e-1f1f5b0c0001")
    same_reformatted = json.dumps(first, indent=2).encode()
    # In one batch, and across batches (after the first is delivered).
    await handle_batch(
        step, [incoming(to_bytes(first), 0), incoming(to_bytes(other), 1), incoming(same_reformatted, 2)]
    )
    await handle_batch(step, [incoming(to_bytes(other), 3), incoming(to_bytes(first), 4)])
    topics = [topic for topic, _, _ in publisher.sent]
    assert topics == ["out.adjudicated", "out.dead-letter", "out.dead-letter"]
    decided = json.loads(publisher.sent[0][2])
    for _, _, value in publisher.sent[1:]:
        conflict = json.loads(value)
        assert conflict["kind"] == "event_id_conflict"
        assert conflict["source_event_id"] == "6f1c7a52-3f83-4f6e-9d0e-1f1f5b0c0001"
        assert decided["event_id"] in conflict["reason"]
        assert "claim OTHER" in conflict["reason"]
    assert log.getvalue().count('"kind":"event_id_conflict"') == 2


async def test_a_failed_send_is_retried_until_acknowledged(policies: PolicyBook, log: io.StringIO) -> None:
    class FailingTwice(FakePublisher):
        async def send(
            self,
            topic: str,
            key: bytes | None,
            value: bytes,
            headers: list[tuple[str, bytes]] | None = None,
            partition: int | None = None,
        ) -> Awaitable[Any]:
            result = await super().send(topic, key, value, headers, partition)
            if self.failures:
                self.round_done()
            return result

    publisher = FailingTwice(failures=2)
    step = handler(policies, publisher)
    await handle_batch(step, [incoming(to_bytes(example_event()), 0)])
    assert publisher.attempts == 3
    assert len(publisher.sent) == 1
    assert step.send_failures == 0
    assert '"event":"worker.send_failed"' in log.getvalue()


async def test_nothing_is_marked_emitted_while_delivery_fails(policies: PolicyBook, log: io.StringIO) -> None:
    publisher = FakePublisher(failures=1_000_000)
    step = handler(policies, publisher)
    task = asyncio.create_task(handle_batch(step, [incoming(to_bytes(example_event()), 0)]))
    await asyncio.sleep(0.05)
    assert not task.done()
    assert step.send_failures > 0
    assert step.processor.history.members == {}
    publisher.failures = 0
    await asyncio.wait_for(task, 5)
    member = example_event()["claim"]["member"]["member_id"]
    assert step.processor.history.already_emitted(str(example_event()["event_id"]), member) is not None


async def test_a_redelivery_in_the_same_or_a_later_batch_is_not_published(
    policies: PolicyBook, log: io.StringIO
) -> None:
    publisher = FakePublisher()
    step = handler(policies, publisher)
    raw = to_bytes(example_event())
    await handle_batch(step, [incoming(raw, 0), incoming(raw, 1)])
    await handle_batch(step, [incoming(raw, 2)])
    assert len(publisher.sent) == 1
    # The stream decides the next batch while the previous one waits for its acknowledgements.
    other = to_bytes(claim_event(claim_id="OTHER"))
    first = step.prepare([incoming(other, 3)])
    assert step.prepare([incoming(other, 4)]) == []
    await step.deliver(first)
    assert len(publisher.sent) == 2


async def test_a_batch_decided_in_slices_lets_the_one_before_be_delivered_and_decides_the_same(
    policies: PolicyBook, log: io.StringIO
) -> None:
    decided_at = datetime(2025, 9, 3, 14, 22, 5, tzinfo=UTC)

    def step_of(publisher: FakePublisher) -> StreamHandler:
        processor = Processor(policies, clock=lambda: decided_at)
        return StreamHandler(processor, publisher, TOPICS, Metrics())

    earlier = [incoming(to_bytes(claim_event(claim_id=f"A{n}", event_id=str(uuid.uuid4()))), n) for n in range(3)]
    later = [incoming(to_bytes(claim_event(claim_id=f"B{n}", event_id=str(uuid.uuid4()))), 3 + n) for n in range(4)]
    # The second batch holds a redelivery of the first's first input, after two inputs of its own.
    later.insert(2, dataclasses.replace(earlier[0], offset=9))

    at_once = step_of(FakePublisher())
    await at_once.deliver(at_once.prepare(earlier))
    expected = [item.payload for item in at_once.prepare(later)]

    publisher = FakePublisher()
    step = step_of(publisher)
    delivering = asyncio.ensure_future(step.deliver(step.prepare(earlier)))
    delivered_after: list[int] = []
    delivering.add_done_callback(lambda _: delivered_after.append(len(publisher.sent)))
    sliced = await step.prepare_in_slices(later, slice_seconds=0)  # the loop runs after every input
    # The first batch was delivered (and marked emitted) while the second was being decided ...
    assert delivering.done()
    assert delivered_after == [len(earlier)]
    # ... and the second was decided as at once: the redelivery is still not published, whichever
    # record (undelivered or emitted) it was checked against.
    assert [item.payload for item in sliced] == expected
    assert len(sliced) == 4


async def test_the_audit_line_is_canonical_and_holds_no_phi(policies: PolicyBook, log: io.StringIO) -> None:
    event = example_event()
    event["claim"]["member"]["address"] = {"line1": "1 Main Street", "city": "Madison"}
    await handle_batch(handler(policies, FakePublisher()), [incoming(to_bytes(event), 7)])
    (line,) = [json.loads(text) for text in log.getvalue().splitlines()]
    assert line["event"] == "claim.decided"
    assert (line["claim_id"], line["member_id"], line["source_offset"]) == ("CLM-2025-000123", "M0001234", 7)
    assert [entry["rule"] for entry in line["lines"]] == ["criteria.chronic_pain", "follow.administration_denied"]
    for value in ("Pat", "Example", "1980-04-02", "hydrochloride", "Main Street", "Madison"):
        assert value not in log.getvalue()


async def test_an_abandoned_batch_is_decided_again_when_read_again(policies: PolicyBook, log: io.StringIO) -> None:
    publisher = FakePublisher()
    step = handler(policies, publisher)
    raw = to_bytes(example_event())
    step.abandon(step.prepare([incoming(raw, 0)]))
    again = step.prepare([incoming(raw, 0)])
    await step.deliver(again)
    assert len(again) == 1
    assert len(publisher.sent) == 1


def test_the_table_view_keeps_records_per_partition_as_the_changelog_carries_them() -> None:
    """Records are stored as their changelog bytes, in the partition set on the view, and read back."""
    import faust

    from worker.stream.faust_quirks import TableView

    app = faust.App("view-test", broker="kafka://localhost:1", store="memory://")
    table = app.Table("members", default=None, key_type=bytes, value_type=bytes)
    sent: list[tuple[int, bytes, bytes]] = []
    table.send_changelog = lambda partition, key, value, **_: sent.append((partition, key, value))  # type: ignore[method-assign]
    view = TableView(table)
    view.partition = 3
    view["M1"] = {"claims": {"A": {"status": "active"}}}
    assert view["M1"] == {"claims": {"A": {"status": "active"}}}
    assert sent == [(3, b"M1", b'{"claims":{"A":{"status":"active"}}}')]
    assert table.data._key_partition[b"M1"] == 3, "the memory store drops it when partition 3 is revoked"
    assert list(view) == ["M1"]
    assert "M2" not in view
    assert view.get("M1") == {"claims": {"A": {"status": "active"}}}
    assert view.get("M2") is None
    assert view.get("M2", {}) == {}


async def test_outputs_carry_cloudevents_headers_and_the_inputs_trace(policies: PolicyBook, log: io.StringIO) -> None:
    publisher = FakePublisher()
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    batch = [
        Incoming(to_bytes(example_event()), b"k", "in", 0, 0, (("traceparent", trace.encode()),)),
        Incoming(b"not json", b"k", "in", 0, 1, (("traceparent", b"00-not-a-trace\nFirst Name"),)),
    ]
    await handle_batch(handler(policies, publisher), batch)
    decided, dead = (dict(headers) for headers in publisher.headers)
    event = json.loads(publisher.sent[0][2])
    assert decided == {
        "content-type": b"application/json",
        "ce_specversion": b"1.0",
        "ce_id": event["event_id"].encode(),
        "ce_source": b"/claims-worker",
        "ce_type": b"claim.adjudicated",
        "ce_time": event["decided_at"].encode(),
        "traceparent": trace.encode(),
    }
    assert dead["ce_type"] == b"claim.dead_lettered"
    assert "traceparent" not in dead  # a malformed one is not echoed
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [line.get("traceparent") for line in lines if line["event"] in ("claim.decided", "claim.dead_lettered")] == [
        trace,
        None,
    ]


async def test_a_short_key_is_kept_whole_without_a_digest(policies: PolicyBook, log: io.StringIO) -> None:
    publisher = FakePublisher()
    await handle_batch(handler(policies, publisher), [incoming(b"not json", 0, key=b"intake-7")])
    source = json.loads(publisher.sent[0][2])["source"]
    assert base64.b64decode(source["key_b64"]) == b"intake-7"
    assert (source["key_size"], source["key_truncated"], source["key_sha256"]) == (8, False, None)


REKEYED = Topics(
    "out.adjudicated", "out.pended", "out.dead-letter", by_member="g-claims-by-member-repartition", partitions=6
)


async def test_an_input_is_forwarded_to_its_members_partition_then_decided_there(
    policies: PolicyBook, log: io.StringIO
) -> None:
    """The first hop only reads and forwards; the decision is made on the member's partition."""
    from worker.stream.rekey import SOURCE_HEADER, member_partition

    publisher = FakePublisher()
    step = StreamHandler(Processor(policies), publisher, REKEYED, Metrics(), retry_initial=0.001, retry_max=0.002)
    raw = to_bytes(claim_event(claim_id="A", member_id="M-17"))
    forged = (SOURCE_HEADER, b'{"topic":"elsewhere","partition":9,"offset":1}')
    await handle_batch(step, [Incoming(raw, b"claim-key", "in", 2, 41, (forged,)), incoming(b"not json", 42)])
    (forward, dead) = publisher.sent
    assert forward == ("g-claims-by-member-repartition", b"M-17", raw), "forwarded unchanged, keyed by member"
    assert publisher.partitions[0] == member_partition("M-17", 6)
    assert dead[0] == "out.dead-letter", "an unreadable input is dead-lettered on the first hop"
    headers = dict(publisher.headers[0])
    assert json.loads(headers[SOURCE_HEADER]) == {
        "topic": "in",
        "partition": 2,
        "offset": 41,
        "key_b64": "Y2xhaW0ta2V5",
        "key_size": 9,
        "key_truncated": False,
    }, "the producer's own claims-source header is replaced, never trusted"
    assert log.getvalue().count('"event":"claim.decided"') == 0

    back = Incoming(
        raw, b"M-17", "g-claims-by-member-repartition", publisher.partitions[0] or 0, 7, tuple(publisher.headers[0])
    )
    await handle_batch(step, [back])
    assert publisher.sent[2][0] == "out.adjudicated"
    decided = [json.loads(line) for line in log.getvalue().splitlines() if '"claim.decided"' in line]
    assert [(d["source_topic"], d["source_partition"], d["source_offset"]) for d in decided] == [("in", 2, 41)]


async def test_a_claim_breaking_the_contract_is_dead_lettered_on_its_members_partition(
    policies: PolicyBook, log: io.StringIO
) -> None:
    """Forwarding reads only the member id; the member's partition validates the rest, with the first position."""
    publisher = FakePublisher()
    step = StreamHandler(Processor(policies), publisher, REKEYED, Metrics(), retry_initial=0.001, retry_max=0.002)
    event = claim_event(claim_id="BAD", member_id="M-18")
    event["claim"]["lines"][0]["units"] = 1.5  # a JSON number: the contract refuses it
    raw = to_bytes(event)
    no_member = to_bytes({**event, "claim": {**event["claim"], "member": {"line_of_business": "aso"}}})
    await handle_batch(step, [Incoming(raw, b"BAD", "in", 1, 5), Incoming(no_member, b"BAD2", "in", 1, 6)])
    (forward, dead_at_once) = publisher.sent
    assert forward[:2] == ("g-claims-by-member-repartition", b"M-18")
    assert dead_at_once[0] == "out.dead-letter", "no member id to read: dead-lettered on the first hop"
    back = Incoming(
        raw, b"M-18", "g-claims-by-member-repartition", publisher.partitions[0] or 0, 3, tuple(publisher.headers[0])
    )
    await handle_batch(step, [back])
    topic, key, value = publisher.sent[2]
    record = json.loads(value)
    assert (topic, key, record["kind"]) == ("out.dead-letter", b"BAD", "schema_violation")
    assert (record["source"]["topic"], record["source"]["partition"], record["source"]["offset"]) == ("in", 1, 5)
