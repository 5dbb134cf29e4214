"""A generator of bad input: semantic and byte-level mutations of valid claim events.

Shared by the processor-level corpus (tests/unit/test_bad_input.py) and the live-worker
corpus (tests/integration/test_faults.py).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from typing import Any

from tests.builders import claim_event, example_event, ketamine_line, service_line

PHI = ("Pat", "Example", "1980-04-02", "hydrochloride")


def valid_events() -> list[bytes]:
    events = [
        example_event(),
        claim_event(claim_id="V1"),
        claim_event(claim_id="V2", lines=[ketamine_line(1), service_line(2, "96365")]),
    ]
    return [json.dumps(event).encode() for event in events]


def structural(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    """One semantic mutation of a valid event."""
    claim, line = event["claim"], event["claim"]["lines"][0]
    choice = rng.randrange(14)
    if choice == 0:
        line["units"] = rng.choice([1.5, float("nan"), "NaN", "Infinity", -1, "1e999", True])
    elif choice == 1:
        line["charge_amount"] = rng.choice([12.5, "abc", "", "1" * 40, None])
    elif choice == 2:
        line["service_date"] = rng.choice(["2025-02-30", "0000-01-01", "99999-01-01", "yesterday", 20250901])
    elif choice == 3:
        claim["member"]["line_of_business"] = rng.choice(["medicaid", "", 7, None, "COMMERCIAL"])
    elif choice == 4:
        del claim[rng.choice(["claim_id", "claim_type", "received_date", "member", "provider", "lines"])]
    elif choice == 5:
        claim["lines"] = [line, dict(line)]  # duplicate line numbers
    elif choice == 6:
        claim["lines"] = [dict(line, line_number=n) for n in range(1, 2000)]  # over 999 lines
    elif choice == 7:
        claim["diagnoses"] = f"__DEEP_{rng.choice([50, 500, 5000])}__"  # spliced in as bytes below
    elif choice == 8:
        claim["provider"]["npi"] = rng.choice(["1234567890", "12345", 1234567893, None])
    elif choice == 9:
        event["schema_version"] = rng.choice([2, "1", 0, None])
    elif choice == 10:
        line["diagnosis_pointers"] = rng.choice([[0], [99], ["1"], [1.0]])
    elif choice == 11:
        claim["member"]["first_name"] = "Pat" * rng.choice([10, 1000])  # PHI, oversized
        line["drug_description"] = "hydrochloride " * 100
    elif choice == 12:
        claim["frequency_code"] = rng.choice(["7", "8"])
        claim.pop("original_claim_id", None)
    else:
        line["ndc"] = rng.choice(["1234", "67457-0108-100", "ABCDE-1234-12", "59399-0114-10", "6745710810"])
    return event


def encode(event: dict[str, Any]) -> bytes:
    """JSON bytes of a mutated event; deep nesting is spliced in as bytes (too deep for json.dumps)."""
    raw = json.dumps(event, allow_nan=True).encode()
    marker = re.search(rb'"__DEEP_(\d+)__"', raw)
    if marker is None:
        return raw
    depth = int(marker.group(1))
    return raw[: marker.start()] + b"[" * depth + b'"x"' + b"]" * depth + raw[marker.end() :]


def byte_level(rng: random.Random, raw: bytes) -> bytes:
    """One byte-level mutation."""
    data = bytearray(raw)
    choice = rng.randrange(6)
    if choice == 0:
        return bytes(data[: rng.randrange(len(data))])  # truncated
    if choice == 1:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)  # flipped bytes, often invalid UTF-8
        return bytes(data)
    if choice == 2:
        at = rng.randrange(len(data))
        return bytes(data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 20))) + data[at:])
    if choice == 3:
        return b"\xff\xfe" + bytes(data)
    if choice == 4:
        return raw + b"," + raw
    return b'{"schema_version": 1, "padding": "' + b"A" * (1_100_000) + b'"}'  # over the size limit


def corpus(count: int, seed: int, *, max_large: int | None = None) -> list[bytes]:
    """`count` mutated events, half semantic and half byte-level, each with its own event id.

    Args:
        count: how many.
        seed: the random seed (the corpus is reproducible).
        max_large: keep at most this many inputs over 100 kB (1 MiB+ payloads, 1,999-line claims):
            a broker has to hold them all.
    """
    rng = random.Random(seed)
    bases = [json.loads(raw) for raw in valid_events()]
    out: list[bytes] = []
    large = 0
    n = 0
    while len(out) < count:
        event = json.loads(json.dumps(rng.choice(bases)))
        event["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"corpus:{seed}:{n}"))
        n += 1
        raw = byte_level(rng, json.dumps(event).encode()) if n % 2 else encode(structural(rng, event))
        if len(raw) > 100_000:
            large += 1
            if max_large is not None and large > max_large:
                continue
        out.append(raw)
    return out
