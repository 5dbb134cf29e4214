"""The worker process against a real broker: claims in, exactly one output each."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.builders import claim_event, example_event, many_claims, to_bytes
from tests.integration.conftest import (
    Deployment,
    assert_exactly_once,
    decode,
    http_get,
    outputs_by_source,
    wait_for,
    wait_until_decided,
)
from worker.connection import KafkaConnection
from worker.samples import sample_claims

pytestmark = pytest.mark.integration

PHI = ("Pat", "Example", "1980-04-02", "hydrochloride", "Main Street")


def samples() -> list[bytes]:
    return sample_claims()


def test_every_claim_yields_exactly_one_output_on_the_right_topic(deployment: Deployment) -> None:
    deployment.extra_env["CLAIMS_MAX_INPUT_BYTES"] = "65536"
    oversized = to_bytes({**claim_event(claim_id="BIG"), "padding": "x" * 100_000})
    inputs = [*samples(), b"\xff\xfe not utf-8", b'{"schema_version": 1', oversized]
    keys = [
        json.loads(v)["claim"]["claim_id"].encode() if v.startswith(b'{"schema_version":1,') else None for v in inputs
    ]
    deployment.produce(inputs, keys)
    process, port, audit = deployment.start_worker()

    messages = deployment.consume(expected=len(inputs), timeout=90)
    s = deployment.settings
    by_topic = Counter(topic for topic, _, _ in messages)
    assert sum(by_topic.values()) == len(inputs)
    outputs = decode(messages)
    decided = [o for o in outputs if o["event_type"] != "claim.dead_lettered"]
    dead = [o for o in outputs if o["event_type"] == "claim.dead_lettered"]
    assert by_topic[s.dead_letter_topic] == len(dead) == 5
    assert sorted(d["kind"] for d in dead) == ["not_json", "not_json", "not_utf8", "schema_violation", "too_large"]
    assert all(d["source"]["topic"] == s.input_topic and d["source"]["offset"] is not None for d in dead)
    assert {o["event_type"] for topic, _, v in messages if topic == s.pended_topic for o in [json.loads(v)]} == {
        "claim.pended"
    }

    example = next(o for o in decided if o["claim_id"] == "DEMO-026")
    assert (example["lines"][0]["rule"], example["lines"][0]["carc"]) == ("criteria.chronic_pain", ["204"])
    assert example["lines"][0]["policy_sections"][0] == "2.1"
    # Outputs are keyed by claim id.
    assert all(
        key == json.loads(value)["claim_id"].encode() for topic, key, value in messages if topic != s.dead_letter_topic
    )

    # Health while running; nothing else is served (no Faust index, router or table pages).
    assert http_get(port, "/healthz")[0] == 200
    for path in ("/", "/router/", f"/table/claims/{example['claim_id']}/", "/table/claims/", "/graph/", "/stats/"):
        assert http_get(port, path)[0] == 404, path
    wait_for(lambda: http_get(port, "/readyz")[0] == 200, 30, "readiness")
    status, body = http_get(port, "/metrics")
    assert status == 200
    assert b'claims_dead_letters_total{kind="too_large"} 1.0' in body
    assert b"claims_decisions_total" in body

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0

    # The audit log: one canonical line per decision, JSON only, no PHI.
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    canonical = [line for line in lines if line["event"] == "claim.decided"]
    assert sorted(line["output_event_id"] for line in canonical) == sorted(o["event_id"] for o in decided)
    assert {line["event"] for line in lines} >= {"worker.starting", "worker.partitions_assigned", "worker.stopped"}
    text = audit.read_text()
    for value in PHI:
        assert value not in text
    sample = canonical[0]
    assert {
        "claim_id",
        "member_id",
        "source_topic",
        "source_partition",
        "source_offset",
        "source_event_id",
        "output_event_id",
        "output_topic",
        "policy_id",
        "policy_versions",
        "rule_trace",
        "lines",
        "latency_ms",
    } <= set(sample)


def test_a_redelivered_input_is_not_emitted_twice_and_a_duplicate_claim_is_denied(deployment: Deployment) -> None:
    original = to_bytes(example_event())
    repeat_of_lines = example_event()
    repeat_of_lines["event_id"] = str(uuid.uuid4())
    repeat_of_lines["claim"]["claim_id"] = "CLM-DUPLICATE"
    deployment.produce(
        [original, original, original, to_bytes(repeat_of_lines)], [b"CLM-2025-000123"] * 3 + [b"CLM-DUPLICATE"]
    )
    deployment.start_worker()
    import asyncio

    from tests.integration.conftest import consume

    messages = asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, 2, 90, settle=8))
    outputs = decode(messages)
    assert sorted(o["claim_id"] for o in outputs) == ["CLM-2025-000123", "CLM-DUPLICATE"]
    rules = sorted(o["lines"][0]["rule"] for o in outputs)
    # Which of the two came first depends on partition order; exactly one is the duplicate.
    assert rules == ["claim.duplicate", "criteria.chronic_pain"]
    duplicate = next(o for o in outputs if o["lines"][0]["rule"] == "claim.duplicate")
    assert duplicate["lines"][0]["carc"] == ["18"]


def test_a_worker_killed_mid_stream_loses_nothing_and_repeats_identically(deployment: Deployment) -> None:
    total = 3000
    inputs = many_claims(total, "RESTART")
    deployment.produce(inputs, [json.loads(v)["claim"]["claim_id"].encode() for v in inputs])
    first, _, _ = deployment.start_worker(audit_name="audit-1.log")
    import asyncio

    from tests.integration.conftest import consume

    partial = asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, 300, 90))
    assert len(partial) >= 300
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    deployment.start_worker(audit_name="audit-2.log")

    expected_ids = {json.loads(v)["event_id"] for v in inputs}
    wait_until_decided(deployment, expected_ids, 180)
    assert_exactly_once(outputs_by_source(deployment, total), expected_ids)


def test_a_900_kb_key_with_a_1_1_mb_value_never_stalls_a_partition(deployment: Deployment) -> None:
    # Its dead letter keeps what the dead-letter topic takes; the claims after it, on every
    # partition, are decided; the worker keeps going after a restart too.
    after = many_claims(30, "AFTER")
    deployment.produce(
        [b"v" * 1_100_000, *after],
        [b"k" * 900_000, *[json.loads(v)["claim"]["claim_id"].encode() for v in after]],
    )
    worker, _, _ = deployment.start_worker()
    got = deployment.consume(1 + len(after), timeout=60)
    assert len(got) == 1 + len(after)
    dead = [json.loads(value) for topic, _, value in got if topic == deployment.settings.dead_letter_topic]
    assert [(d["kind"], d["source"]["key_size"], d["source"]["key_truncated"]) for d in dead] == [
        ("too_large", 900_000, True)
    ]
    assert dead[0]["original_size"] == 1_100_000
    assert all(len(value) <= 2_097_152 for _, _, value in got)
    assert worker.poll() is None


def test_a_trace_on_the_input_reaches_the_output_headers_and_the_audit_line(deployment: Deployment) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    servers = deployment.broker.bootstrap_servers

    async def produce_traced() -> None:
        producer = KafkaConnection.plaintext(servers).producer()
        await producer.start()
        try:
            await producer.send_and_wait(
                deployment.settings.input_topic,
                to_bytes(example_event()),
                key=b"CLM-2025-000123",
                headers=[("traceparent", trace.encode())],
            )
        finally:
            await producer.stop()

    async def read_one() -> Any:
        consumer = KafkaConnection.plaintext(servers).consumer(
            *deployment.output_topics, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            for _ in range(120):
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    return messages[0]
        finally:
            await consumer.stop()
        raise AssertionError("no output")

    asyncio.run(produce_traced())
    _, _, audit = deployment.start_worker()
    message = asyncio.run(read_one())
    headers = dict(message.headers)
    output = json.loads(message.value)
    assert headers["traceparent"] == trace.encode()
    assert headers["ce_id"] == output["event_id"].encode()
    assert headers["ce_type"] == b"claim.adjudicated"
    assert headers["ce_source"] == f"/claims-worker/{deployment.settings.group_id}".encode()
    assert headers["content-type"] == b"application/json"
    wait_for(lambda: trace in audit.read_text(), 10, "the audit line")
    decided = next(json.loads(line) for line in audit.read_text().splitlines() if '"claim.decided"' in line)
    assert decided["traceparent"] == trace


def test_an_event_id_reused_for_another_claim_gets_its_own_output_and_keys_follow_the_claim(
    deployment: Deployment,
) -> None:
    shared_id = "3b0d7a1e-6a52-4c8e-9d7e-5f1a2b3c4d5e"
    # One member: its history is where its claims' event ids are known.
    first = to_bytes(claim_event(claim_id="KEY-FIRST", member_id="M-KEY", event_id=shared_id))
    other = to_bytes(claim_event(claim_id="KEY-OTHER", member_id="M-KEY", event_id=shared_id))
    plain = to_bytes(claim_event(claim_id="KEY-PLAIN"))
    # Keys that are not the claim id: another id, a padded one, none. The keys put the inputs on
    # different partitions, so the first is decided before the others are sent: which of two
    # claims with one event id came first is the order they were read in.
    deployment.produce([first], [b"intake-7"])
    deployment.start_worker()
    assert len(deployment.consume(1, timeout=60)) == 1
    deployment.produce([other, first, plain], [b" KEY-OTHER ", b"intake-7", None])
    got = deployment.consume(3, timeout=60)
    by_topic = Counter(topic for topic, _, _ in got)
    assert by_topic == {deployment.settings.adjudicated_topic: 2, deployment.settings.dead_letter_topic: 1}
    decisions = {json.loads(value)["claim_id"]: key for topic, key, value in got if topic.endswith(".adjudicated")}
    assert decisions == {"KEY-FIRST": b"KEY-FIRST", "KEY-PLAIN": b"KEY-PLAIN"}
    (conflict,) = [json.loads(value) for topic, _, value in got if topic.endswith(".dead-letter")]
    assert conflict["kind"] == "event_id_conflict"
    assert "claim KEY-OTHER" in conflict["reason"]
    # The redelivery of the first (same content) stays silent: nothing more arrives.
    assert len(deployment.consume(4, timeout=8)) == 3
