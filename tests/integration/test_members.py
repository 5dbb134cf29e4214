"""One member, one partition: the same decisions with one worker, two or three, on the real broker.

A seeded mix of members, each with an original claim, then (by member) a duplicate under a new
claim id, a replacement, a void, a replacement that arrives before the claim it names, a claim
the member's authorization no longer has the units for, or the original again under a new event
id, then a claim that repeats the original's lines. Half the members' claims are keyed by claim id with
the Java/aiokafka partitioner, half by member id with librdkafka's (another hash), so a member's
claims reach the worker on different input partitions. The mix is produced in three waves, each
decided before the next, so every member's claims reach its partition in one order whatever
the deployment; within a wave each member has one claim.

The mix is decided by a single-process reference (the offline `Processor`), by one worker, by
two, and by three with a worker added after the first wave and one killed (SIGKILL) just after
the last wave is produced. Every output must equal the reference's, bar `decided_at`.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Producer

from claims_contracts.v1 import SourcePosition
from tests.builders import approved_pa, claim_event, ketamine_line, medicare_primary, to_bytes
from tests.integration.conftest import Deployment, consume, decode, produce, wait_for
from worker.policy_files import load_policy_book
from worker.processor import Decided, Processor

pytestmark = pytest.mark.integration

MEMBERS = 48
SEED = 20261201


def waves(seed: int = SEED) -> list[list[dict[str, Any]]]:
    """Three waves of claim events; each member has at most one claim in each."""
    rng = random.Random(seed)
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    third: list[dict[str, Any]] = []
    for n in range(MEMBERS):
        member = f"MBR-{n:03d}"
        line = ketamine_line(service_date=f"2025-09-{1 + n % 28:02d}", units=str(1 + n % 3))
        original = claim_event(claim_id=f"A-{n}", member_id=member, lines=[line])
        kind = rng.choice(["duplicate", "replacement", "void", "late_original", "plain", "units", "again"])
        if kind == "units":
            # Medicare secondary under a 3-unit PA: the original uses 2, a later claim's 2 are not covered.
            cover = {
                "other_payers": [medicare_primary("paid")],
                "prior_authorizations": [approved_pa(authorized_units="3")],
            }
            line = ketamine_line(service_date="2025-09-01", units="2")  # before receipt: decided on the PA
            original = claim_event(claim_id=f"A-{n}", member_id=member, lines=[line], **cover)
            first.append(original)
            other = ketamine_line(service_date=line["service_date"], units="2", charge_amount="351.00")
            second.append(claim_event(claim_id=f"U-{n}", member_id=member, lines=[other], **cover))
            third.append(claim_event(claim_id=f"C-{n}", member_id=member, lines=[line], **cover))
            continue
        if kind == "again":
            # The same claim under a new event id: the decision it had, published again.
            first.append(original)
            second.append({**original, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))})
            third.append(claim_event(claim_id=f"C-{n}", member_id=member, lines=[line]))
            continue

        def follow_up(
            claim_id: str, frequency: str, member: str = member, line: dict[str, Any] = line, of: str = f"A-{n}"
        ) -> dict[str, Any]:
            return claim_event(
                claim_id=claim_id, member_id=member, lines=[line], frequency_code=frequency, original_claim_id=of
            )

        if kind == "late_original":
            # The replacement is produced first: the original reaches the partition after it.
            first.append(follow_up(f"A2-{n}", "7"))
            second.append(original)
        else:
            first.append(original)
            if kind == "duplicate":
                second.append(claim_event(claim_id=f"B-{n}", member_id=member, lines=[line]))
            elif kind in ("replacement", "void"):
                second.append(follow_up(f"A2-{n}", "7") if kind == "replacement" else follow_up(f"V-{n}", "8"))
        # Last, a claim repeating the original's lines: a duplicate unless the original was voided.
        third.append(claim_event(claim_id=f"C-{n}", member_id=member, lines=[line]))
    return [first, second, third]


def reference(sequence: list[dict[str, Any]]) -> dict[str, set[str]]:
    """The single-process decisions, by the source event id they name, without `decided_at`.

    A claim received again under a new event id is given the decision it had, which names the
    event that first carried it: its body joins that event's.
    """
    processor = Processor(load_policy_book(None), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    out: dict[str, set[str]] = {}
    for number, event in enumerate(sequence, start=1):
        result = processor.process(to_bytes(event), SourcePosition(file_line=number))
        assert isinstance(result, Decided)
        processor.remember(result, emitted=True)
        body = comparable(json.loads(result.event.model_dump_json()))
        out.setdefault(body["source_event_id"], set()).add(json.dumps(body, sort_keys=True))
    return out


def reference_bodies() -> list[dict[str, Any]]:
    """Every body of the reference."""
    return [json.loads(body) for seen in reference([e for wave in waves() for e in wave]).values() for body in seen]


def comparable(output: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in output.items() if key != "decided_at"}


def produce_wave(deployment: Deployment, wave: list[dict[str, Any]]) -> None:
    """Half the members keyed by claim id (aiokafka, murmur2), half by member id (librdkafka, crc32)."""
    by_claim = [e for e in wave if int(e["claim"]["member"]["member_id"][-3:]) % 2 == 0]
    by_member = [e for e in wave if e not in by_claim]
    servers = deployment.broker.bootstrap_servers
    asyncio.run(
        produce(
            servers,
            deployment.settings.input_topic,
            [to_bytes(e) for e in by_claim],
            [e["claim"]["claim_id"].encode() for e in by_claim],
        )
    )
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    for event in by_member:
        producer.produce(
            deployment.settings.input_topic, value=to_bytes(event), key=event["claim"]["member"]["member_id"].encode()
        )
    assert producer.flush(30) == 0


def decided(deployment: Deployment, expected: int) -> tuple[dict[str, set[str]], int]:
    """Every distinct output body downstream, by the source event id it names; and how many outputs."""
    outputs = decode(asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, expected, 5)))
    bodies: dict[str, set[str]] = {}
    for output in outputs:
        assert output["event_type"] != "claim.dead_lettered", output
        bodies.setdefault(output["source_event_id"], set()).add(json.dumps(comparable(output), sort_keys=True))
    return bodies, len(outputs)


def run_mix(deployment: Deployment, between: list[Callable[[], None]]) -> dict[str, set[str]]:
    """Produce the waves, waiting for each to be decided; `between[i]` runs after wave i is produced."""
    produced = 0
    for index, wave in enumerate(waves()):
        produce_wave(deployment, wave)
        produced += len(wave)
        between[index]()
        # One output per input at least (a claim received again is published again, under the id it had).
        wait_for(lambda n=produced: decided(deployment, n)[1] >= n, 240, f"wave {index + 1} decided")
    return decided(deployment, produced)[0]


def assert_same_as_reference(bodies: dict[str, set[str]]) -> None:
    expected = reference([event for wave in waves() for event in wave])
    assert set(bodies) == set(expected)
    differing = [source for source, seen in bodies.items() if seen != expected[source]]
    assert differing == [], f"{len(differing)} of {len(expected)} outputs differ from the single-process reference"


def test_the_mix_exercises_every_history_rule() -> None:
    """The reference itself: duplicates, supersessions, a late original, used-up units and a claim received again."""
    decisions = reference_bodies()
    rules = {line["rule"] for d in decisions for line in d["lines"]}
    assert "claim.duplicate" in rules
    assert {"msp.approved_secondary", "msp.pa_absent"} <= rules
    sequence = [event for wave in waves() for event in wave]
    assert len({e["event_id"] for e in sequence}) == len(sequence)
    assert len({(e["claim"]["member"]["member_id"], e["claim"]["claim_id"]) for e in sequence}) < len(sequence)
    assert any(d["supersedes_event_id"] for d in decisions)
    assert any(d["superseded_by_claim_id"] for d in decisions)
    assert any(d["voids_claim_id"] for d in decisions)


def test_one_worker_decides_as_the_reference(deployment: Deployment) -> None:
    deployment.start_worker()
    assert_same_as_reference(run_mix(deployment, [lambda: None] * 3))


def test_two_workers_decide_as_the_reference(deployment: Deployment) -> None:
    deployment.start_worker(audit_name="audit-a.log")
    deployment.start_worker(audit_name="audit-b.log")
    assert_same_as_reference(run_mix(deployment, [lambda: None] * 3))


def test_three_workers_with_one_added_and_one_killed_decide_as_the_reference(deployment: Deployment) -> None:
    first, _, _ = deployment.start_worker(audit_name="audit-a.log")
    deployment.start_worker(audit_name="audit-b.log")

    def add_a_worker() -> None:
        deployment.start_worker(audit_name="audit-c.log")

    def kill_one() -> None:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

    bodies = run_mix(deployment, [add_a_worker, lambda: None, kill_one])
    assert_same_as_reference(bodies)
