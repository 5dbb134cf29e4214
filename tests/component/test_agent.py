"""The Faust agent in-process with `test_context()`: no broker, outbound publisher faked.

The consumer's side is played by the test: it offers a fetch to the intake, as the guarded
consumer's drain loop does (`worker.stream.faust_quirks`).
"""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from tests.builders import example_event, to_bytes
from tests.fakes import FakePublisher
from worker import audit
from worker.settings import Settings
from worker.stream.app import build_app
from worker.stream.health import Runtime

INPUT = "claims.submitted"


@pytest.fixture
async def runtime() -> Runtime:
    """The real app and agent, on the test's loop (Faust's testing guide)."""
    audit.configure(io.StringIO())
    app, runtime = build_app(Settings(group_id="component-test", partitions=1))
    app.loop = asyncio.get_running_loop()
    app.finalize()
    # Without this, the intake drops what it is given: the flow is suspended until a rebalance ends.
    app.flow_control.resume()
    return runtime


def fetched(offset: int, value: bytes, key: bytes, generation: int = 0) -> ConsumerMessage:
    """One record as Faust's consumer makes it from a fetch (in consumer generation `generation`)."""
    tp = TP(INPUT, 0)
    return ConsumerMessage(INPUT, 0, offset, 0.0, 0, [], key, value, None, tp=tp, generation_id=generation)


async def test_the_agent_forwards_or_dead_letters_a_fetch_and_then_acknowledges_it(runtime: Runtime) -> None:
    assert runtime.handler is not None
    publisher = FakePublisher()
    runtime.handler.publisher = publisher
    messages = [fetched(0, to_bytes(example_event()), b"CLM-2025-000123"), fetched(1, b"{broken", b"x")]
    async with runtime.agent.test_context():
        await runtime.intake.offer(messages)
        for _ in range(200):
            if all(message.acked for message in messages):
                break
            await asyncio.sleep(0.01)
    # The first hop: a readable claim goes on to its member's partition, unchanged; bytes that
    # cannot be read are dead-lettered at once. (The second hop is in the integration tests.)
    (topic, key, value), (dead_topic, _, dead) = publisher.sent
    assert (topic, key, value) == (
        "component-test-claims-by-member-repartition",
        example_event()["claim"]["member"]["member_id"].encode(),
        to_bytes(example_event()),
    )
    assert dead_topic == "claims.dead-letter"
    assert json.loads(dead)["kind"] == "not_json"
    # Acknowledged to the consumer (its final ack, which lets the offset be committed) after the outputs.
    assert all(message.acked for message in messages)


async def test_a_fetch_taken_while_the_flow_is_suspended_is_dropped_unacknowledged(runtime: Runtime) -> None:
    assert runtime.handler is not None
    publisher = FakePublisher()
    runtime.handler.publisher = publisher
    app = runtime.agent.app
    stale = [fetched(0, to_bytes(example_event()), b"CLM-2025-000123")]
    async with runtime.agent.test_context():
        app.flow_control.suspend()  # a rebalance began as the fetch was queued
        await runtime.intake.offer(stale)
        await asyncio.sleep(0.2)
        assert runtime.intake.queued() == 0  # taken, and dropped
        assert publisher.sent == []
        app.flow_control.resume()  # the rebalance ended: the queue was cleared, reading starts again
        fresh = [fetched(0, to_bytes(example_event()), b"CLM-2025-000123")]
        await runtime.intake.offer(fresh)
        for _ in range(200):
            if fresh[0].acked:
                break
            await asyncio.sleep(0.01)
    assert len(publisher.sent) == 1
    assert not stale[0].acked
    assert fresh[0].acked


async def test_a_fetch_of_an_earlier_consumer_generation_is_dropped(runtime: Runtime) -> None:
    assert runtime.handler is not None
    publisher = FakePublisher()
    runtime.handler.publisher = publisher
    app = runtime.agent.app
    app.consumer_generation_id = 7  # a rebalance happened after the first fetch
    earlier = [fetched(0, to_bytes(example_event()), b"CLM-2025-000123", generation=6)]
    current = [fetched(1, b"{broken", b"x", generation=7)]
    async with runtime.agent.test_context():
        await runtime.intake.offer(earlier)
        await runtime.intake.offer(current)
        for _ in range(200):
            if current[0].acked:
                break
            await asyncio.sleep(0.01)
    assert [topic for topic, _, _ in publisher.sent] == ["claims.dead-letter"]
    assert not earlier[0].acked


async def test_a_fetch_queued_when_a_recovery_resumes_the_flow_is_decided(runtime: Runtime) -> None:
    # Faust resumes the flow (and empties its queues) after seeking to the committed offsets;
    # what the fetcher queued after that seek is never fetched again, so it must not be dropped.
    assert runtime.handler is not None
    publisher = FakePublisher()
    runtime.handler.publisher = publisher
    app = runtime.agent.app
    queued = [fetched(0, b"{broken", b"x")]
    await runtime.intake.offer(queued)
    app.flow_control.resume()
    assert runtime.intake.queued() == 1
    async with runtime.agent.test_context():
        for _ in range(200):
            if queued[0].acked:
                break
            await asyncio.sleep(0.01)
    assert [topic for topic, _, _ in publisher.sent] == ["claims.dead-letter"]


async def test_a_revocation_empties_the_intake(runtime: Runtime) -> None:
    app = runtime.agent.app
    await runtime.intake.offer([fetched(0, b"{broken", b"x")])
    app.flow_control.suspend()  # as Faust's revocation does, before it empties the agents' queues
    app.flow_control.clear()
    assert runtime.intake.queued() == 0
