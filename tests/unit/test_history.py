"""The claim history: redeliveries, duplicates, replacements and voids, bounded memory, recovery."""

from __future__ import annotations

import json
from typing import Any

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


class TestOrderAcrossPartitions:
    """A replacement or void that arrives before its original ends in the state of the in-order run."""

    def decide(self, processor: Processor, event: dict[str, Any]) -> Any:
        result = processor.process(to_bytes(event), SourcePosition(file_line=1))
        assert isinstance(result, Decided)
        processor.remember(result, emitted=True)
        return result.event

    def test_a_late_original_says_what_superseded_it_and_owns_no_lines(self, processor: Processor) -> None:
        replacement = self.decide(
            processor, claim_event(claim_id="A2", member_id="M1", frequency_code="7", original_claim_id="A")
        )
        assert replacement.supersedes_event_id is None, "the original is not known yet"
        original = self.decide(processor, claim_event(claim_id="A", member_id="M1"))
        assert original.superseded_by_claim_id == "A2"
        assert original.lines[0].rule == "criteria.chronic_pain", "not a duplicate of its own replacement"
        later = self.decide(processor, claim_event(claim_id="B", member_id="M1"))
        assert later.lines[0].rule == "claim.duplicate"
        assert later.lines[0].carc == ["18"]
        assert later.trace[0].evidence == ["duplicate of claim A2 line 1"], (
            "the replacement owns the lines, not the original"
        )

    def test_in_order_and_out_of_order_end_in_the_same_state(self, policies: Any) -> None:
        in_order, out_of_order = ClaimHistory.in_memory(), ClaimHistory.in_memory()
        original = claim_event(claim_id="A", member_id="M1")
        replacement = claim_event(claim_id="A2", member_id="M1", frequency_code="7", original_claim_id="A")
        for history, events in ((in_order, (original, replacement)), (out_of_order, (replacement, original))):
            processor = Processor(policies, history=history)
            for event in events:
                self.decide(processor, event)
        states = [
            {claim_id: (held["status"], held.get("by")) for claim_id, held in h.members["M1"]["claims"].items()}
            for h in (in_order, out_of_order)
        ]
        assert states[0] == states[1] == {"A": ("replaced", "A2"), "A2": ("active", None)}

    def test_a_late_voided_original_frees_its_lines(self, processor: Processor) -> None:
        self.decide(
            processor, claim_event(claim_id="A-VOID", member_id="M1", frequency_code="8", original_claim_id="A")
        )
        original = self.decide(processor, claim_event(claim_id="A", member_id="M1"))
        assert original.superseded_by_claim_id == "A-VOID"
        again = self.decide(processor, claim_event(claim_id="C", member_id="M1"))
        assert again.lines[0].rule == "criteria.chronic_pain"


class TestIdentity:
    def test_a_history_that_changes_the_decision_changes_the_output_id(self, policies: Any) -> None:
        repeat = claim_event(claim_id="B", member_id="M1")
        alone = Processor(policies).process(to_bytes(repeat), SourcePosition(file_line=1))
        after = Processor(policies)
        first = after.process(to_bytes(claim_event(claim_id="A", member_id="M1")), SourcePosition(file_line=1))
        assert isinstance(first, Decided)
        after.remember(first, emitted=True)
        duplicate = after.process(to_bytes(repeat), SourcePosition(file_line=2))
        assert isinstance(alone, Decided)
        assert isinstance(duplicate, Decided)
        assert duplicate.event.lines[0].rule == "claim.duplicate"
        assert alone.event.event_id != duplicate.event.event_id
        again = Processor(policies).process(to_bytes(repeat), SourcePosition(file_line=1))
        assert isinstance(again, Decided)
        assert again.event.event_id == alone.event.event_id


class TestWindow:
    def test_claims_older_than_the_window_are_forgotten(self, policies: Any) -> None:
        history = ClaimHistory.in_memory(window_days=30)
        processor = Processor(policies, history=history)
        old = claim_event(claim_id="OLD", member_id="M1")
        for event in (
            old,
            claim_event(claim_id="NEW", member_id="M1", lines=[ketamine_line(service_date="2025-10-15")]),
        ):
            result = processor.process(to_bytes(event), SourcePosition(file_line=1))
            assert isinstance(result, Decided)
            processor.remember(result, emitted=True)
        assert list(history.members["M1"]["claims"]) == ["NEW"], "2025-09-01 is more than 30 days before 2025-10-15"
        # Forgotten, so its redelivery is decided afresh (the same output id), and its lines are no original.
        assert isinstance(processor.process(to_bytes(old), SourcePosition(file_line=3)), Decided)
        repeat = processor.process(to_bytes(claim_event(claim_id="R", member_id="M1")), SourcePosition(file_line=4))
        assert isinstance(repeat, Decided)
        assert repeat.event.lines[0].rule != "claim.duplicate"

    def test_within_the_window_a_duplicate_months_later_is_still_caught(self, policies: Any) -> None:
        processor = Processor(policies)
        for claim_id, date in (("A", "2025-09-01"), ("LATER", "2026-06-01")):
            event = claim_event(claim_id=claim_id, member_id="M1", lines=[ketamine_line(service_date=date)])
            result = processor.process(to_bytes(event), SourcePosition(file_line=1))
            assert isinstance(result, Decided)
            processor.remember(result, emitted=True)
        late = claim_event(claim_id="B", member_id="M1", lines=[ketamine_line(service_date="2025-09-01")])
        result = processor.process(to_bytes(late), SourcePosition(file_line=3))
        assert isinstance(result, Decided)
        assert result.event.lines[0].rule == "claim.duplicate"

    def test_a_member_of_implausible_volume_is_bounded(self, policies: Any) -> None:
        history = ClaimHistory({}, max_lines_per_member=5)
        processor = Processor(policies, history=history)
        for n in range(12):
            event = claim_event(claim_id=f"C{n}", member_id="M1", lines=[ketamine_line(units=str(n + 1))])
            result = processor.process(to_bytes(event), SourcePosition(file_line=n))
            assert isinstance(result, Decided)
            processor.remember(result, emitted=True)
        assert list(history.members["M1"]["claims"]) == [f"C{n}" for n in range(7, 12)]

    def test_a_duplicate_is_no_original_for_later_checks(self, processor: Processor) -> None:
        outputs = []
        for event in (
            claim_event(claim_id="A", member_id="M1"),
            claim_event(claim_id="B", member_id="M1"),
            claim_event(claim_id="A-VOID", member_id="M1", frequency_code="8", original_claim_id="A"),
            claim_event(claim_id="C", member_id="M1"),
        ):
            result = processor.process(to_bytes(event), SourcePosition(file_line=1))
            assert isinstance(result, Decided)
            processor.remember(result, emitted=True)
            outputs.append(result.event)
        assert outputs[1].lines[0].rule == "claim.duplicate"
        assert outputs[3].lines[0].rule == "criteria.chronic_pain", "B was denied as a duplicate: it is no original"


class TestPersistence:
    def test_a_recovered_record_answers_as_the_live_one(self, policies: Any) -> None:
        """A new worker that recovers the table knows redeliveries and duplicates of the old one's claims."""
        table: dict[str, Any] = {}
        first = Processor(policies, history=ClaimHistory(table))
        decided = first.process(to_bytes(claim_event(claim_id="A", member_id="M1")), SourcePosition(file_line=1))
        assert isinstance(decided, Decided)
        first.remember(decided, emitted=True)
        assert list(table) == ["M1"], "one persisted record per member"

        # The changelog carries JSON: recovered records hold lists where the live ones hold tuples.
        recovered = ClaimHistory(json.loads(json.dumps(table)))
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
        assert table["M1"]["claims"]["A"]["emitted"] == (
            (str(first.claim.event_id), str(first.decision.event_id), first.fingerprint),
        )

    def test_an_abandoned_decision_leaves_no_trace(self, policies: Any) -> None:
        history = ClaimHistory.in_memory()
        processor = Processor(policies, history=history)
        first = processor.process(to_bytes(claim_event(claim_id="A", member_id="M1")), SourcePosition(file_line=1))
        assert isinstance(first, Decided)
        processor.remember(first)
        history.forget_undelivered(first.claim)
        repeat = processor.process(to_bytes(claim_event(claim_id="B", member_id="M1")), SourcePosition(file_line=2))
        assert isinstance(repeat, Decided)
        assert repeat.event.lines[0].rule != "claim.duplicate"
