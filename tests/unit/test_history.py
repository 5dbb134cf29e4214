"""The claim history: redeliveries, duplicates, replacements and voids, bounded memory, recovery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claims_contracts.v1 import SourcePosition
from tests.builders import (
    claim_event,
    ketamine_line,
    to_bytes,
)
from worker.history import ClaimHistory
from worker.processor import Decided, Processor, Redelivered


class TestClaimHistory:
    """Duplicates, replacements and voids need the worker's memory of earlier claims."""

    def decide_in_order(self, processor: Processor, *events: dict[str, Any]) -> list[Any]:
        outputs = []
        for event in events:
            result = processor.process(to_bytes(event), SourcePosition(file_line=1))
            assert isinstance(result, Decided)
            processor.remember(result, emitted=True)
            outputs.append(result.event)
        return outputs

    def test_a_repeat_under_a_new_claim_id_is_denied_with_carc_18(self, processor: Processor) -> None:
        _, repeat = self.decide_in_order(
            processor, claim_event(claim_id="A", member_id="M1"), claim_event(claim_id="B", member_id="M1")
        )
        line = repeat.lines[0]
        assert (line.outcome.value, line.rule, line.carc, line.group_code) == (
            "denied",
            "claim.duplicate",
            ["18"],
            "OA",
        )
        assert line.coverage is None

    def test_units_written_differently_are_still_the_same_line(self, processor: Processor) -> None:
        _, repeat = self.decide_in_order(
            processor,
            claim_event(claim_id="A", member_id="M1", lines=[ketamine_line(units="1", charge_amount="350.00")]),
            claim_event(claim_id="B", member_id="M1", lines=[ketamine_line(units="1.000", charge_amount="350.0")]),
        )
        assert repeat.lines[0].rule == "claim.duplicate"

    def test_a_series_on_different_dates_is_not_a_duplicate(self, processor: Processor) -> None:
        _, second = self.decide_in_order(
            processor,
            claim_event(claim_id="A", member_id="M1"),
            claim_event(
                claim_id="B",
                member_id="M1",
                lines=[ketamine_line(service_date="2025-09-02")],
                received_date="2025-09-03",
            ),
        )
        assert second.lines[0].rule == "criteria.chronic_pain"

    def test_a_replacement_is_not_a_duplicate_and_names_what_it_supersedes(self, processor: Processor) -> None:
        original, replacement = self.decide_in_order(
            processor,
            claim_event(claim_id="A", member_id="M1"),
            claim_event(claim_id="A2", member_id="M1", frequency_code="7", original_claim_id="A"),
        )
        assert replacement.lines[0].rule == "criteria.chronic_pain"
        assert (replacement.replaces_claim_id, replacement.supersedes_event_id) == ("A", original.event_id)

    def test_a_void_reverses_the_original_and_frees_its_lines(self, processor: Processor) -> None:
        original, void, again = self.decide_in_order(
            processor,
            claim_event(claim_id="A", member_id="M1"),
            claim_event(claim_id="A-VOID", member_id="M1", frequency_code="8", original_claim_id="A"),
            claim_event(claim_id="C", member_id="M1"),
        )
        assert (void.voids_claim_id, void.supersedes_event_id) == ("A", original.event_id)
        assert again.lines[0].rule == "criteria.chronic_pain"

    def test_a_redelivered_input_is_not_decided_twice(self, processor: Processor) -> None:
        (first,) = self.decide_in_order(processor, claim_event(claim_id="A"))
        again = processor.process(to_bytes(claim_event(claim_id="A")), SourcePosition(file_line=2))
        assert again == Redelivered(str(first.source_event_id), str(first.event_id))


class TestBoundedHistory:
    def test_the_oldest_claims_are_forgotten_beyond_the_window(self, policies: Any) -> None:

        history = ClaimHistory.in_memory(max_claims=3)
        processor = Processor(policies, history=history)
        for n in range(10):
            result = processor.process(to_bytes(claim_event(claim_id=f"C{n}")), SourcePosition(file_line=n))
            assert isinstance(result, Decided)
            processor.remember(result, emitted=True)
        assert list(history.claims) == ["C7", "C8", "C9"]
        lines = len(claim_event()["claim"]["lines"])
        assert history.sizes() == {"records": 3, "line_owners": 3 * lines, "emitted_inputs": 3, "unsaved": 0}
        # The derived indexes forget with the records: C0's input is decided afresh.
        again = processor.process(to_bytes(claim_event(claim_id="C0")), SourcePosition(file_line=11))
        assert isinstance(again, Decided)
        assert isinstance(
            processor.process(to_bytes(claim_event(claim_id="C9")), SourcePosition(file_line=12)), Redelivered
        )

    @pytest.mark.parametrize("compact_every", [10, 10**9])
    def test_tables_are_copied_back_to_their_size_once_eviction_has_grown_them(
        self, policies: Any, monkeypatch: pytest.MonkeyPatch, compact_every: int
    ) -> None:
        """A window that evicts as fast as it learns leaves each dict at the size its entries need.

        The second case turns the copies off: then CPython's tables, full of deleted slots,
        have grown to about twice that size, which is what the copies are for.
        """
        import sys

        from worker import history as history_module

        monkeypatch.setattr(history_module, "COMPACT_EVERY", compact_every)
        records: dict[str, Any] = {}
        history = ClaimHistory(records, max_claims=50)
        processor = Processor(policies, history=history)
        for n in range(50 + 60 * 10):  # evictions end on a multiple of 10: the last one checks
            result = processor.process(to_bytes(claim_event(claim_id=f"C{n}")), SourcePosition(file_line=n))
            assert isinstance(result, Decided)
            processor.remember(result, emitted=True)
        assert len(records) == 50
        tables = {"records": records, "order": history._order, "emitted": history._emitted, "owners": history._owners}
        oversized = {name for name, table in tables.items() if sys.getsizeof(table) > sys.getsizeof(type(table)(table))}
        if compact_every == 10:
            assert oversized == set()
            assert history.claims is records, "the caller's mapping is compacted in place, not replaced"
        else:
            assert oversized == {"records", "order", "emitted", "owners"}

    def test_a_recovered_table_is_evicted_oldest_first(self, policies: Any) -> None:

        recovered = {f"OLD{n}": {"event_id": None, "status": "active", "lines": [], "emitted": []} for n in range(3)}
        history = ClaimHistory(recovered, max_claims=3)
        processor = Processor(policies, history=history)
        result = processor.process(to_bytes(claim_event(claim_id="NEW")), SourcePosition(file_line=1))
        assert isinstance(result, Decided)
        processor.remember(result, emitted=True)
        assert list(history.claims) == ["OLD1", "OLD2", "NEW"]

    def test_indexes_are_rebuilt_from_a_recovered_table(self, policies: Any) -> None:
        """A new worker that recovers the table knows redeliveries and duplicates of the old one's claims."""

        table: dict[str, Any] = {}
        first = Processor(policies, history=ClaimHistory(table))
        decided = first.process(to_bytes(claim_event(claim_id="A", member_id="M1")), SourcePosition(file_line=1))
        assert isinstance(decided, Decided)
        first.remember(decided, emitted=True)
        assert list(table) == ["A"], "one persisted record per claim"

        # The changelog carries JSON: recovered records hold lists where the live ones hold tuples.
        recovered = ClaimHistory(json.loads(json.dumps(table)))
        recovered.rebuild()
        second = Processor(policies, history=recovered)
        redelivered = second.process(to_bytes(claim_event(claim_id="A", member_id="M1")), SourcePosition(file_line=2))
        assert redelivered == Redelivered(str(decided.claim.event_id), str(decided.decision.event_id))
        repeat = second.process(to_bytes(claim_event(claim_id="B", member_id="M1")), SourcePosition(file_line=3))
        assert isinstance(repeat, Decided)
        assert repeat.event.lines[0].rule == "claim.duplicate"

    def test_a_record_is_persisted_only_once_its_output_is_delivered(self, policies: Any) -> None:

        table: dict[str, Any] = {}
        processor = Processor(policies, history=ClaimHistory(table))
        first = processor.process(to_bytes(claim_event(claim_id="A", member_id="M1")), SourcePosition(file_line=1))
        assert isinstance(first, Decided)
        processor.remember(first)
        assert table == {}
        # Still, a duplicate in the same batch is seen before delivery.
        repeat = processor.process(to_bytes(claim_event(claim_id="B", member_id="M1")), SourcePosition(file_line=2))
        assert isinstance(repeat, Decided)
        assert repeat.event.lines[0].rule == "claim.duplicate"
        processor.history.mark_emitted(first.claim, first.decision, first.fingerprint)
        assert table["A"]["emitted"] == ((str(first.claim.event_id), str(first.decision.event_id), first.fingerprint),)
