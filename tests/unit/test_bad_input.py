"""A corpus of bad input: every event yields a decision or a precise dead letter, nothing raises.

Byte-level mutations of valid events (flips, truncations, insertions, invalid UTF-8, huge and
deeply nested values, wrong types, NaN and float amounts, unknown enums, out-of-range dates,
missing keys, duplicate line numbers) plus hypothesis-generated JSON.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims_contracts.v1 import DeadLetterKind, SourcePosition
from tests.corpus import PHI, byte_level, encode, structural, valid_events
from worker.adjudication import PolicyBook
from worker.processor import DeadLettered, Decided, Processor


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
