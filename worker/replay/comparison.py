"""Comparing a replay's decisions with recorded ones: what changed, from what to what, for whom."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from worker.connection import KafkaConnection, end_offsets
from worker.replay.seeking import partitions_of

SAMPLE_CLAIMS = 20
"""Claim ids listed per change in the Markdown summary (the JSON lists them all)."""


def summarize(output: dict[str, Any]) -> dict[str, Any]:
    """The part of an output event a comparison needs (small, to bound memory)."""
    return {
        "claim_id": output.get("claim_id"),
        "event_id": output.get("event_id"),
        "event_type": output.get("event_type"),
        "lines": {str(line["line_number"]): f"{line['outcome']}:{line['rule']}" for line in output.get("lines", [])},
        "body": json.dumps({k: v for k, v in output.items() if k != "decided_at"}, sort_keys=True),
    }


def load_file(path: Path) -> Iterable[dict[str, Any]]:
    """Decision events from a JSON-lines file (dead letters and other lines skipped)."""
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                yield json.loads(raw)


async def load_topics(connection: KafkaConnection, topics: list[str]) -> list[dict[str, Any]]:
    """Every message of some topics, from the beginning to the end offsets seen at start."""
    tps: list[TopicPartition] = []
    for topic in topics:
        partitions = await partitions_of(connection, topic)
        if not partitions:
            raise RuntimeError(f"topic {topic} does not exist")
        tps.extend(TopicPartition(topic, p) for p in partitions)
    consumer = connection.consumer(group_id=None, enable_auto_commit=False)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        consumer.assign(tps)
        ends = await end_offsets(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=5000)
            for tp, messages in batch.items():
                out.extend(json.loads(m.value) for m in messages if m.value is not None and m.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return out


def load_recorded(sources: list[str], connection: KafkaConnection | None) -> dict[str, dict[str, Any]]:
    """Recorded decisions by source event id, from files (paths that exist) or topics."""
    events: list[dict[str, Any]] = []
    topics = []
    for source in sources:
        path = Path(source)
        if path.exists():
            events.extend(load_file(path))
        else:
            topics.append(source)
    if topics:
        if connection is None:
            raise RuntimeError(f"comparing with topics {topics} needs a broker")
        events.extend(asyncio.run(load_topics(connection, topics)))
    return {
        str(event["source_event_id"]): summarize(event)
        for event in events
        if event.get("event_type") in ("claim.adjudicated", "claim.pended")
    }


def compare(replayed: Mapping[str, dict[str, Any]], recorded: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Compare two sets of decisions keyed by source event id.

    A decision changed when its event type or any line's outcome or rule differs.
    Line changes are counted by (from, to) as "outcome:rule".
    """
    both = sorted(set(replayed) & set(recorded))
    changed_claims: list[str] = []
    transitions: dict[tuple[str, str], list[str]] = defaultdict(list)
    same_ids = same_bodies = 0
    for source in both:
        new, old = replayed[source], recorded[source]
        same_ids += new["event_id"] == old["event_id"]
        same_bodies += new["body"] == old["body"]
        lines = sorted(set(new["lines"]) | set(old["lines"]), key=int)
        moved = [(old["lines"].get(n, "absent"), new["lines"].get(n, "absent")) for n in lines]
        moved = [(a, b) for a, b in moved if a != b]
        if moved or new["event_type"] != old["event_type"]:
            changed_claims.append(str(new["claim_id"]))
        for pair in moved:
            transitions[pair].append(str(new["claim_id"]))
    return {
        "compared": len(both),
        "unchanged": len(both) - len(changed_claims),
        "changed": len(changed_claims),
        "identical_event_ids": same_ids,
        "identical_bodies_apart_from_decided_at": same_bodies,
        "only_in_replay": len(set(replayed) - set(recorded)),
        "only_in_recorded": len(set(recorded) - set(replayed)),
        "line_changes": [
            {"from": a, "to": b, "count": len(claims), "claim_ids": sorted(set(claims))}
            for (a, b), claims in sorted(transitions.items(), key=lambda item: (-len(item[1]), item[0]))
        ],
        "changed_claim_ids": sorted(set(changed_claims)),
    }


def markdown(report: Mapping[str, Any], *, title: str) -> str:
    """A readable summary of a comparison report."""
    out = [
        f"# {title}",
        "",
        f"- decisions compared: {report['compared']}",
        f"- unchanged: {report['unchanged']}",
        f"- changed: {report['changed']}",
        f"- identical output event ids: {report['identical_event_ids']}",
        f"- identical bodies (apart from decided_at): {report['identical_bodies_apart_from_decided_at']}",
        f"- only in the replay: {report['only_in_replay']}; only in the recorded outputs: {report['only_in_recorded']}",
        "",
    ]
    if report["line_changes"]:
        out += ["| from (outcome:rule) | to (outcome:rule) | lines | claims (first 20) |", "|---|---|---|---|"]
        for change in report["line_changes"]:
            claims = ", ".join(change["claim_ids"][:SAMPLE_CLAIMS])
            more = (
                f" (+{len(change['claim_ids']) - SAMPLE_CLAIMS} more)"
                if len(change["claim_ids"]) > SAMPLE_CLAIMS
                else ""
            )
            out.append(f"| {change['from']} | {change['to']} | {change['count']} | {claims}{more} |")
    else:
        out.append("No line changed.")
    return "\n".join(out) + "\n"
