"""Deciding in place on the real broker: member-keyed input skips the hop, never ahead of a forwarded claim."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.builders import claim_event, to_bytes
from tests.integration.conftest import PARTITIONS, Deployment, consume, decode, http_get, wait_for
from worker.connection import KafkaConnection
from worker.stream import topics
from worker.stream.rekey import member_partition
from worker.stream.topics import repartition_topic

pytestmark = pytest.mark.integration


def metric(body: bytes, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", body.decode(), re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


async def forward_as_an_earlier_release(servers: str, topic: str, partition: int, claims: list[bytes]) -> None:
    """What a release that forwarded every claim left on the member topic when it stopped."""
    producer = KafkaConnection.plaintext(servers).producer(linger_ms=5)
    await producer.start()
    try:
        futures = []
        for value in claims:
            key = json.loads(value)["claim"]["member"]["member_id"].encode()
            futures.append(await producer.send(topic, value, key=key, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def test_member_keyed_input_is_decided_in_place_behind_what_was_forwarded_before(deployment: Deployment) -> None:
    # A group named so that its member topic sorts after the input: the consumer then hands over the
    # input's records first, and only the fence keeps each repeat behind its original.
    deployment.extra_env["CLAIMS_GROUP_ID"] = f"{deployment.name}.z-group"
    settings = deployment.settings.model_copy(update={"group_id": f"{deployment.name}.z-group"})
    asyncio.run(topics.ensure(settings))
    partition = 1
    candidates = (f"M-FENCE-{n}" for n in range(20_000))
    members = [m for m in candidates if member_partition(m, PARTITIONS) == partition][:2500]
    # Each member's original is still on the member topic, forwarded by the earlier release. The
    # last members' repeats (the same line under another claim id) reach the input on the member's
    # own partition, and are read before their originals.
    originals = [to_bytes(claim_event(claim_id=f"ORIGINAL-{m}", member_id=m)) for m in members]
    repeated = members[-200:]
    repeats = [to_bytes(claim_event(claim_id=f"REPEAT-{m}", member_id=m)) for m in repeated]
    asyncio.run(
        forward_as_an_earlier_release(
            deployment.broker.bootstrap_servers, repartition_topic(settings), partition, originals
        )
    )
    others = [to_bytes(claim_event(claim_id=f"IN-PLACE-{n}", member_id=f"M-PLACE-{n}")) for n in range(60)]
    values = [*repeats, *others]
    # Keyed by member id with aiokafka's partitioner (murmur2, as the Java client): on the member's partition.
    deployment.produce(values, [json.loads(v)["claim"]["member"]["member_id"].encode() for v in values])
    _, port, _ = deployment.start_worker()

    total = len(originals) + len(values)
    messages = asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, total, 120, settle=3))
    assert len(messages) == total, "one output per input"
    rules = {o["claim_id"]: o["lines"][0]["rule"] for o in decode(messages)}
    assert {rules[f"ORIGINAL-{m}"] for m in members} == {"criteria.chronic_pain"}
    assert {rules[f"REPEAT-{m}"] for m in repeated} == {"claim.duplicate"}, "each decided after its original"

    wait_for(lambda: http_get(port, "/readyz")[0] == 200, 30, "readiness")
    status, body = http_get(port, "/metrics")
    assert status == 200
    in_place, rekeyed = metric(body, "claims_decided_in_place_total"), metric(body, "claims_rekeyed_total")
    assert in_place + rekeyed == len(values)
    elsewhere = sum(member_partition(f"M-PLACE-{n}", PARTITIONS) != partition for n in range(60))
    assert in_place >= elsewhere > 0, "partitions whose member topic holds nothing decide in place at once"
