"""`make demo`: the whole path on a real broker, end to end.

Starts the embedded broker (or uses `KAFKA_BOOTSTRAP_SERVERS`), creates the
topics, publishes the bundled sample claims (one per rule, plus unreadable
ones), runs the worker as a separate process, reads every output back, prints
a table, closes one pend with a review decision (the final adjudication is
printed too), and stops everything. Topic names carry a run id, so a demo against a
shared cluster touches nothing else.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.connection import KafkaConnection
from worker.dev.broker import FAST_JOIN, free_port, start_broker
from worker.replay.progress import Progress
from worker.samples import publish, sample_claims
from worker.settings import Settings
from worker.signatures import PRIVATE_KEY_FILE, SIGNATURE_HEADER, load_signing_key, new_key_pair
from worker.stream import topics


def table(outputs: Iterable[dict[str, Any]]) -> str:
    """Render output events as a fixed-width table: claim, line, outcome, rule, codes."""
    rows = [("claim", "line", "outcome", "rule", "codes")]
    for output in sorted(outputs, key=lambda o: (o.get("claim_id") or "~", o.get("kind") or "")):
        if output["event_type"] == "claim.dead_lettered":
            rows.append(("(unreadable)", "-", "dead-letter", output["kind"], output["reason"][:60]))
            continue
        for line in output["lines"]:
            codes = [f"CARC {c}" for c in line["carc"]] + [f"RARC {c}" for c in line["rarc"]]
            codes += [f"NCPDP {c}" for c in line["ncpdp_reject"]]
            rows.append((output["claim_id"], str(line["line_number"]), line["outcome"], line["rule"], " ".join(codes)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text) + "\n"


async def _collect(
    settings: Settings, expected: int, timeout: float, worker: subprocess.Popen[bytes]
) -> list[dict[str, Any]]:
    consumer = KafkaConnection.from_settings(settings).consumer(
        settings.adjudicated_topic,
        settings.pended_topic,
        settings.dead_letter_topic,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    progress = Progress(expected, "decisions", every_seconds=1.0)
    outputs: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        progress.update(0)
        while len(outputs) < expected and time.monotonic() < deadline and worker.poll() is None:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                outputs.extend(json.loads(m.value) for m in messages if m.value is not None)
            progress.update(len(outputs))
    finally:
        await consumer.stop()
    return outputs


async def _close_one_pend(settings: Settings, outputs: list[dict[str, Any]], worker: subprocess.Popen[bytes]) -> bool:
    """Resolve the clinical-review pend of the samples with a review decision, and show the final adjudication."""
    pend = next(o for o in outputs if o["event_type"] == "claim.pended" and o["queue"] == "clinical_review")
    pended = [line["line_number"] for line in pend["lines"] if line["outcome"] == "pended"]
    review = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "pend_event_id": pend["event_id"],
        "claim_id": pend["claim_id"],
        "member_id": pend["member_id"],
        "reviewer_id": "DEMO-REVIEWER",
        "reviewer_roles": ["clinical_reviewer"],
        "decided_at": datetime.now(UTC).isoformat(),
        "lines": [{"line_number": n, "outcome": "denied", "carc": ["50"]} for n in pended],
    }
    assert settings.review_signing_key is not None  # noqa: S101 - `main` made the demo's keys
    value = json.dumps(review).encode()
    headers = [(SIGNATURE_HEADER, load_signing_key(settings.review_signing_key).sign(value))]
    producer = KafkaConnection.from_settings(settings).producer()
    await producer.start()
    try:
        await producer.send_and_wait(settings.reviews_topic, value, key=pend["member_id"].encode(), headers=headers)
    finally:
        await producer.stop()
    print(
        f"\nreview: {review['reviewer_id']} denies {pend['claim_id']} (pended in {pend['queue']}) with CARC 50,"
        " signed with the demo's review key",
        file=sys.stderr,
    )
    final = next(
        (o for o in await _collect(settings, len(outputs) + 1, 60.0, worker) if o.get("review_event_id")), None
    )
    if final is None:
        print("no final adjudication arrived", file=sys.stderr)
        return False
    sys.stdout.write("\nThe final adjudication, superseding the pend:\n" + table([final]))
    print(
        f"event {final['event_id']} supersedes pend {final['supersedes_event_id']} (review {final['review_event_id']})"
    )
    return True


def main() -> int:
    """Run the demo; return 0 when every sample claim got exactly one output."""
    claims = sample_claims()
    print("starting a broker ...", file=sys.stderr)
    broker = start_broker()
    run_id = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"demo-{run_id}",
        input_topic=f"demo-{run_id}.claims.submitted",
        adjudicated_topic=f"demo-{run_id}.claims.adjudicated",
        pended_topic=f"demo-{run_id}.claims.pended",
        dead_letter_topic=f"demo-{run_id}.claims.dead-letter",
        reviews_topic=f"demo-{run_id}.claims.reviews",
        partitions=3,
    )
    workdir = Path(tempfile.mkdtemp(prefix="claims-demo-"))
    audit_log = workdir / "audit.log"
    # The demo's review keys: the worker trusts the public one, the demo's review is signed with the other.
    new_key_pair(workdir / "review-keys")
    settings = settings.model_copy(
        update={
            "review_verify_keys": workdir / "review-keys",
            "review_signing_key": workdir / "review-keys" / PRIVATE_KEY_FILE,
        }
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        print(f"broker: {broker.kind} at {broker.bootstrap_servers}", file=sys.stderr)
        asyncio.run(topics.ensure(settings))
        asyncio.run(publish(settings, claims))
        print(f"published {len(claims)} claim events to {settings.input_topic}", file=sys.stderr)
        worker_settings = settings.model_copy(
            update={
                "web_port": free_port(),
                "web_host": "127.0.0.1",
                **FAST_JOIN,
                "audit_log": str(audit_log),
            }
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
        env.update(worker_settings.environment())
        with (workdir / "worker.stderr").open("wb") as stderr:
            worker = subprocess.Popen([sys.executable, "-m", "worker", "run"], env=env, stderr=stderr)
        print("worker started; waiting for decisions ...", file=sys.stderr)
        outputs = asyncio.run(_collect(settings, len(claims), 120.0, worker))
        if worker.poll() is not None:
            print(f"the worker stopped early (status {worker.returncode}):", file=sys.stderr)
            sys.stderr.write((workdir / "worker.stderr").read_text()[-2000:])
        sys.stdout.write(table(outputs))
        counts = {
            kind: sum(1 for o in outputs if o["event_type"] == kind)
            for kind in ("claim.adjudicated", "claim.pended", "claim.dead_lettered")
        }
        print(
            f"\n{len(claims)} claim events in, {len(outputs)} outputs: {counts['claim.adjudicated']} adjudicated, "
            f"{counts['claim.pended']} pended, {counts['claim.dead_lettered']} dead-lettered. Audit log: {audit_log}"
        )
        if len(outputs) != len(claims):
            return 1
        return 0 if asyncio.run(_close_one_pend(settings, outputs, worker)) else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        broker.stop()
        print("stopped worker and broker", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
