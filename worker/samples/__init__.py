"""The bundled sample claims (one per rule, plus unreadable ones), and publishing them.

For demos and smoke tests: `claims-worker samples publish` and `make demo` use them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from importlib import resources

from worker.connection import KafkaConnection
from worker.settings import Settings


def sample_claims() -> list[bytes]:
    """The bundled sample claim events, as raw lines."""
    text = resources.files("worker.samples").joinpath("claims.jsonl").read_bytes()
    return [line for line in text.splitlines() if line.strip()]


def _round_of(raw: bytes, round_number: int) -> tuple[bytes, bytes | None]:
    """The value and key of a sample in a round: rounds after the first get new ids (new claims)."""
    try:
        event = json.loads(raw)
        claim = event["claim"]
        if round_number:
            event["event_id"] = str(uuid.uuid4())
            claim["claim_id"] = f"{claim['claim_id']}-{round_number}"
            claim["member"]["member_id"] = f"{claim['member']['member_id']}-{round_number}"
            raw = json.dumps(event).encode()
        return raw, str(claim["claim_id"]).encode()
    except (ValueError, KeyError, TypeError):
        return raw, None  # the deliberately unreadable samples go as they are


async def publish(settings: Settings, claims: list[bytes], *, rounds: int = 1) -> int:
    """Publish the claims to the input topic, keyed by claim id, `rounds` times; return how many were sent."""
    producer = KafkaConnection.from_settings(settings).producer(linger_ms=10)
    await producer.start()
    try:
        futures = []
        for round_number in range(rounds):
            for raw in claims:
                value, key = _round_of(raw, round_number)
                futures.append(await producer.send(settings.input_topic, value, key=key))
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()
