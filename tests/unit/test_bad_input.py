"""A corpus of bad input: every event yields a decision or a precise dead letter, nothing raises.

Byte-level mutations of valid events (flips, truncations, insertions, invalid UTF-8, huge and
deeply nested values, wrong types, NaN and float amounts, unknown enums, out-of-range dates,
missing keys, duplicate line numbers) plus hypothesis-generated JSON.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims_contracts.v1 import DeadLetterKind, SourcePosition
from tests.builders import claim_event, example_event, ketamine_line, service_line
from worker.adjudication import PolicyBook
from worker.processor import DeadLettered, Decided, Processor

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


def check(processor: Processor, raw: bytes) -> str:
    result = processor.process(raw, SourcePosition(topic="t", partition=0, offset=1))
    if isinstance(result, Decided):
        return "decided"
    assert isinstance(result, DeadLettered)
    record = result.record
    assert record.kind in DeadLetterKind
    assert record.errors
    assert record.reason
    assert all(error.message for error in record.errors)
    if record.kind is DeadLetterKind.SCHEMA_VIOLATION:
        # Every error names its field; only a wrong type of the whole input sits at the root.
        assert all(error.path or error.type == "model_type" for error in record.errors), record.errors
    for value in PHI:
        assert value not in record.reason
        assert all(value not in error.message for error in record.errors)
    return record.kind.value


def test_ten_thousand_mutated_events_each_yield_a_decision_or_a_precise_dead_letter(policies: PolicyBook) -> None:
    rng = random.Random(7)
    processor = Processor(policies)
    bases = valid_events()
    counts: dict[str, int] = {}
    for n in range(10_000):
        base = rng.choice(bases)
        raw = byte_level(rng, base) if n % 2 else encode(structural(rng, json.loads(base)))
        outcome = check(processor, raw)
        counts[outcome] = counts.get(outcome, 0) + 1
    # The corpus exercises every kind of dead letter, and some mutations still decide.
    assert {"decided", "not_json", "not_utf8", "schema_violation", "too_large", "unsupported_version"} <= set(counts)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
        max_leaves=30,
    )
)
def test_any_json_value_yields_a_decision_or_a_dead_letter(value: Any) -> None:
    processor = Processor(POLICIES)
    check(processor, json.dumps(value, allow_nan=True).encode())


from worker.policy_files import load_policy_book  # noqa: E402 - after the strategies, loaded once

POLICIES = load_policy_book()
