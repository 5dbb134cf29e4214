"""The batch step: one output per input, delivered before it counts, retried on failure."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable
from typing import Any

import pytest

from tests.builders import claim_event, example_event, to_bytes
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


async def test_outputs_are_keyed_by_claim_id_when_the_input_has_no_key(policies: PolicyBook, log: io.StringIO) -> None:
    publisher = FakePublisher()
    await handle_batch(handler(policies, publisher), [incoming(to_bytes(example_event()), 0, key=None)])
    assert publisher.sent[0][1] == b"CLM-2025-000123"


async def test_a_failed_send_is_retried_until_acknowledged(policies: PolicyBook, log: io.StringIO) -> None:
    class FailingTwice(FakePublisher):
        async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
            result = await super().send(topic, key, value)
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
    assert step.processor.history.claims == {}
    publisher.failures = 0
    await asyncio.wait_for(task, 5)
    assert step.processor.history.already_emitted(str(example_event()["event_id"])) is not None


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


def test_a_memory_table_offers_its_dict_for_compaction() -> None:
    """The history compacts the records through `backing`: it must be the store's own dict."""
    import faust

    from worker.stream.faust_quirks import TableView

    app = faust.App("compaction-test", broker="kafka://localhost:1", store="memory://")
    table = app.Table("records", default=None)
    view = TableView(table)
    backing = view.backing
    assert isinstance(backing, dict)
    table.data["A"] = {"status": "active"}
    assert backing == {"A": {"status": "active"}}
    assert list(view) == ["A"]
