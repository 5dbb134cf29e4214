"""The Faust agent in-process with `test_context()`: no broker, outbound publisher faked."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from tests.builders import example_event, to_bytes
from tests.fakes import FakePublisher
from worker import audit
from worker.settings import Settings
from worker.stream.app import build_app
from worker.stream.health import Runtime


@pytest.fixture
async def runtime() -> Runtime:
    """The real app and agent, on the test's loop (Faust's testing guide)."""
    audit.configure(io.StringIO())
    app, runtime = build_app(Settings(group_id="component-test", partitions=1, batch_within_seconds=0.01))
    app.loop = asyncio.get_running_loop()
    app.finalize()
    # Without this, put() waits for flow control that no consumer resumes in tests.
    app.flow_control.resume()
    return runtime


async def test_the_agent_publishes_one_decision_per_claim(runtime: Runtime) -> None:
    assert runtime.handler is not None
    publisher = FakePublisher()
    runtime.handler.publisher = publisher
    async with runtime.agent.test_context() as agent:
        await agent.put(to_bytes(example_event()), key=b"CLM-2025-000123")
        await agent.put(b"{broken", key=b"x")
        for _ in range(200):
            if len(publisher.sent) == 2:
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
