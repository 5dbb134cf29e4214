"""Closing pends on the real broker: a review decision in, the final adjudication out, every refusal dead-lettered."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.builders import claim_event, ketamine_line, service_line, to_bytes
from tests.integration.conftest import Deployment, decode, produce, wait_for
from tests.signing import signed_headers


def review(pend: dict[str, Any], lines: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "pend_event_id": pend["event_id"],
        "claim_id": pend["claim_id"],
        "member_id": pend["member_id"],
        "reviewer_id": "RV-7",
        "reviewer_roles": ["clinical_reviewer"],
        "decided_at": (datetime.now(UTC) + timedelta(seconds=5)).isoformat(),
        "lines": lines,
    }
    body.update(overrides)
    return body


def test_a_review_closes_its_pend_and_every_other_review_is_dead_lettered(deployment: Deployment) -> None:
    settings = deployment.settings
    claims = [
        claim_event(
            claim_id=f"REV-{n}",
            member_id=f"M-REV-{n}",
            diagnoses=["R52"],
            lines=[ketamine_line(1), service_line(2, "99213")],
        )
        for n in (1, 2, 3)
    ]
    deployment.produce([to_bytes(c) for c in claims], [c["claim"]["claim_id"].encode() for c in claims])
    _, _, audit = deployment.start_worker()
    pends = {o["claim_id"]: o for o in decode(deployment.consume(3)) if o["event_type"] == "claim.pended"}
    assert sorted(pends) == ["REV-1", "REV-2", "REV-3"]

    # REV-3 is replaced before anyone reviews it.
    replacement = claim_event(
        claim_id="REV-3R", member_id="M-REV-3", frequency_code="7", original_claim_id="REV-3", diagnoses=["G89.29"]
    )
    deployment.produce([to_bytes(replacement)], [b"REV-3R"])
    wait_for(lambda: len(deployment.consume(4, timeout=5)) >= 4, 60, "the replacement's decision")

    denial = [{"line_number": 1, "outcome": "denied", "carc": ["50"]}]
    reviews = [
        review(pends["REV-1"], denial),  # resolves
        review(pends["REV-1"], [{"line_number": 1, "outcome": "approved"}]),  # a second review: already resolved
        review(pends["REV-2"], denial, pend_event_id=str(uuid.uuid4())),  # no such pend
        review(pends["REV-3"], denial),  # its claim was replaced
        review(pends["REV-2"], [*denial, {"line_number": 2, "outcome": "approved"}]),  # line 2 was not pended
    ]
    values = [json.dumps(r).encode() for r in reviews]
    asyncio.run(
        produce(
            settings.bootstrap_servers,
            settings.reviews_topic,
            values,
            [r["member_id"].encode() for r in reviews],
            [signed_headers(value) for value in values],
        )
    )

    outputs = decode(deployment.consume(4 + 5))
    finals = [o for o in outputs if o.get("review_event_id")]
    assert len(finals) == 1
    (final,) = finals
    assert final["event_type"] == "claim.adjudicated"
    assert (final["claim_id"], final["supersedes_event_id"]) == ("REV-1", pends["REV-1"]["event_id"])
    assert final["review_event_id"] == reviews[0]["event_id"]
    drug = final["lines"][0]
    assert (drug["outcome"], drug["rule"], drug["carc"]) == ("denied", "review.denied", ["50"])
    assert any("reviewer RV-7" in hit["evidence"] for hit in final["trace"] if hit["rule"] == "review.denied")
    dead = sorted(o["kind"] for o in outputs if o["event_type"] == "claim.dead_lettered")
    assert dead == ["review_already_resolved", "review_lines_not_pended", "review_superseded", "review_unknown_pend"]
    by_topic = {topic for topic, _, value in deployment.consume(9) if json.loads(value).get("review_event_id")}
    assert by_topic == {settings.adjudicated_topic}

    def resolved_line() -> dict[str, Any] | None:
        for line in audit.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("event") == "claim.review_resolved":
                return entry
        return None

    wait_for(lambda: resolved_line() is not None, 30, "the review_resolved audit line")
    entry = resolved_line()
    assert entry is not None
    assert (entry["pend_event_id"], entry["reviewer_id"], entry["queue"]) == (
        pends["REV-1"]["event_id"],
        "RV-7",
        "clinical_review",
    )
    assert entry["pend_age_seconds"] > 0
