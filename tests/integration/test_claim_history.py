"""Revision 3 on the real broker: one sequence of claims, the same decisions everywhere.

A sequence that exercises every history rule of revision 3 (a pharmacy reject and its
resubmission, an authorization used up, given back by a void and by a replacement, a claim
received again under a new event id, an event id reused for another member's claim, a claim id
reused for other content) is decided by the live worker, by `replay` over the recorded topic
(whole, and a later range with `--history-from`), and by `adjudicate FILE`. Every output must
be the same, bar `decided_at`. Then the units a member used survive a SIGKILL of the worker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.builders import (
    KETAMINE_NDC,
    approved_pa,
    claim_event,
    ketamine_line,
    medicare_primary,
    to_bytes,
)
from tests.integration.conftest import CLI, Deployment, consume, decode, wait_for

pytestmark = pytest.mark.integration

RX_PA = approved_pa(procedure_code=None, ndc=KETAMINE_NDC)
SHARED_EVENT_ID = "00000000-0000-4000-8000-00000000e1d0"


def _msp(claim_id: str, member: str, units: str, charge: str, **fields: Any) -> dict[str, Any]:
    """A Medicare-secondary claim, Medicare paid, under PA-1 for 4 units."""
    return claim_event(
        claim_id=claim_id,
        member_id=member,
        other_payers=[medicare_primary("paid")],
        prior_authorizations=[approved_pa(authorized_units="4")],
        lines=[ketamine_line(units=units, charge_amount=charge)],
        **fields,
    )


def _rx(claim_id: str, medicare: dict[str, Any]) -> dict[str, Any]:
    """The same pharmacy fill of member M-RX under a PA naming its NDC, with Medicare as given."""
    line = ketamine_line(procedure_code=None)
    return claim_event(
        claim_id=claim_id,
        member_id="M-RX",
        claim_type="pharmacy",
        lines=[line],
        other_payers=[medicare],
        prior_authorizations=[RX_PA],
    )


def sequence() -> list[dict[str, Any]]:
    """The claims, in the order produced (one partition: keyed by member, each member's order kept)."""
    rejected = _rx("RX-1", medicare_primary("pending"))
    resubmitted = _rx("RX-2", medicare_primary("paid"))
    again = claim_event(claim_id="P-1", member_id="M-AGAIN")
    other_member = claim_event(claim_id="E-1", member_id="M-E2", event_id=SHARED_EVENT_ID)
    conflicting = claim_event(claim_id="P-1", member_id="M-AGAIN", diagnoses=["F32.9"])
    conflicting["event_id"] = "00000000-0000-4000-8000-00000000c0f1"
    return [
        rejected,
        resubmitted,
        _msp("S-1", "M-PA", "2", "201.00"),
        _msp("S-2", "M-PA", "2", "202.00"),
        _msp("S-3", "M-PA", "2", "203.00"),  # 4 of 4 used: msp.pa_absent
        _msp("V-1", "M-PA", "2", "201.00", frequency_code="8", original_claim_id="S-1"),
        _msp("S-4", "M-PA", "2", "204.00"),  # S-1's units given back: approved
        _msp("R-2", "M-PA", "1", "202.00", frequency_code="7", original_claim_id="S-2"),
        _msp("S-5", "M-PA", "1", "205.00"),  # 2 + 1 used: 1 left, approved
        again,
        {**again, "event_id": "00000000-0000-4000-8000-00000000a9a1"},  # the same claim again
        conflicting,  # the same claim id, other content, an original: claim_id_conflict
        claim_event(claim_id="E-1", member_id="M-E1", event_id=SHARED_EVENT_ID),
        other_member,  # another member's claim under the same event id
    ]


def comparable(output: dict[str, Any]) -> str:
    if output.get("event_type") == "claim.dead_lettered" or "kind" in output:
        return json.dumps({"dead_letter": output["kind"], "source_event_id": output.get("source_event_id")})
    return json.dumps({k: v for k, v in output.items() if k != "decided_at"}, sort_keys=True)


def outputs(bodies: list[dict[str, Any]]) -> list[str]:
    return sorted(comparable(body) for body in bodies)


def replay(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = deployment.env(0)
    env.pop("CLAIMS_WEB_PORT")
    return subprocess.run([CLI, "replay", *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def produce_by_member(deployment: Deployment, events: list[dict[str, Any]]) -> None:
    # One key for the whole sequence: one partition, so the order above is the order decided.
    deployment.produce([to_bytes(e) for e in events], [b"one-partition"] * len(events))


def test_the_stream_replay_and_the_command_line_decide_the_sequence_alike(
    deployment: Deployment, tmp_path: Path
) -> None:
    events = sequence()
    deployment.create_topics()
    produce_by_member(deployment, events)
    deployment.start_worker()
    live = decode(deployment.consume(expected=len(events), timeout=120))
    deployment.stop_all()
    assert len(live) == len(events)  # one output per input, the claim received again included

    # What the sequence must show (the stream's outputs).
    decisions = [o for o in live if "lines" in o]
    rules = {(o["claim_id"], o["member_id"]): [line["rule"] for line in o["lines"]] for o in decisions}
    assert rules[("RX-2", "M-RX")] == ["msp.approved_secondary"]  # not 83 after the 41 reject
    assert [rules[(c, "M-PA")][0] for c in ("S-1", "S-2", "S-3", "S-4", "R-2", "S-5")] == [
        "msp.approved_secondary",
        "msp.approved_secondary",
        "msp.pa_absent",
        "msp.approved_secondary",
        "msp.approved_secondary",
        "msp.approved_secondary",
    ]
    received_twice = [o for o in decisions if o["claim_id"] == "P-1"]
    assert len(received_twice) == 2
    assert len({o["event_id"] for o in received_twice}) == 1
    shared = [o for o in decisions if o["source_event_id"] == SHARED_EVENT_ID]
    assert len(shared) == 2
    assert len({o["event_id"] for o in shared}) == 2
    (dead,) = [o for o in live if "kind" in o]
    assert dead["kind"] == "claim_id_conflict"
    assert received_twice[0]["event_id"] in dead["errors"][0]["message"]

    # The offline command, over the same claims as a file: one history for the file.
    claims_file = tmp_path / "claims.jsonl"
    claims_file.write_bytes(b"".join(to_bytes(e) + b"\n" for e in events))
    offline = subprocess.run([CLI, "adjudicate", str(claims_file)], capture_output=True, text=True, check=False)
    assert offline.returncode == 0, offline.stderr
    assert outputs([json.loads(line) for line in offline.stdout.splitlines()]) == outputs(live)

    # Replay of the whole topic, into a file.
    s = deployment.settings
    whole = tmp_path / "whole.jsonl"
    done = replay(
        deployment, "--topic", s.input_topic, "--output-file", str(whole), "--report-dir", str(tmp_path / "r1")
    )
    assert done.returncode == 0, done.stderr
    assert outputs(read_jsonl(whole)) == outputs(live)

    # Replay of a later range, its history warmed from the topic's start: the same decisions for
    # that range (the units used, the claim received again, the conflict all need what came before).
    later = tmp_path / "later.jsonl"
    start = 4  # from S-3 on
    done = replay(
        deployment,
        "--topic",
        s.input_topic,
        "--partitions",
        str(_partition_of(deployment)),
        "--start-offset",
        str(start),
        "--history-from",
        "0",
        "--output-file",
        str(later),
        "--report-dir",
        str(tmp_path / "r2"),
    )
    assert done.returncode == 0, done.stderr
    # The inputs before the range reuse no event id of the range: their outputs are told apart by it.
    in_range = {e["event_id"] for e in events[start:]}
    assert in_range.isdisjoint(e["event_id"] for e in events[:start])
    expected = [o for o in live if o["source_event_id"] in in_range]
    assert len(read_jsonl(later)) == len(events) - start
    assert outputs(read_jsonl(later)) == outputs(expected)


def _partition_of(deployment: Deployment) -> int:
    """The input partition that holds the sequence (every record has one key)."""
    records = asyncio.run(_positions(deployment))
    (partition,) = {p for p, _ in records}
    return partition


async def _positions(deployment: Deployment) -> list[tuple[int, int]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        deployment.settings.input_topic,
        bootstrap_servers=deployment.broker.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        return [(tp.partition, record.offset) for tp, records in batch.items() for record in records]
    finally:
        await consumer.stop()


def test_the_units_a_member_used_survive_a_sigkill(deployment: Deployment) -> None:
    deployment.create_topics()
    first = [_msp("K-1", "M-KILL", "2", "301.00"), _msp("K-2", "M-KILL", "1", "302.00")]
    produce_by_member(deployment, first)
    process, _, _ = deployment.start_worker()
    assert len(deployment.consume(expected=2, timeout=120)) == 2
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    # A new worker: the member's record (3 of 4 units used) comes back from the changelog.
    deployment.start_worker(audit_name="audit-2.log")
    produce_by_member(deployment, [_msp("K-3", "M-KILL", "2", "303.00")])

    def decided_k3() -> bool:
        found = decode(asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, 3, 5)))
        return any(o.get("claim_id") == "K-3" for o in found)

    wait_for(decided_k3, 120, "K-3 decided after the restart")
    found = decode(asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, 3, 5)))
    (k3,) = {json.dumps(o, sort_keys=True) for o in found if o.get("claim_id") == "K-3"}
    line = json.loads(k3)["lines"][0]
    assert line["rule"] == "msp.pa_absent"
    evidence = [w for hit in json.loads(k3)["trace"] for w in hit["evidence"]]
    assert "authorization PA-1: 4 units authorized, 3 used before, 1 left for the line's 2" in evidence
