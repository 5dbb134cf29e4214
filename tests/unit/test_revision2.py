"""What revision 2 of the reading added beyond the rule table: code sets, reference data, output lines, identity."""

from __future__ import annotations

import warnings
from datetime import date
from typing import Any

import pytest

from claims_contracts.v1 import AdjudicationEvent, PendForReviewEvent, SourcePosition
from tests.builders import approved_pa, claim_event, ketamine_line, service_line, to_bytes
from worker.adjudication import PolicyBook
from worker.adjudication.icd10cm import RELEASES, code_set, lookup, release_for
from worker.policy_files import bundled_policy_dir, load_policy_book
from worker.processor import Decided, Processor

REVISION_1 = bundled_policy_dir().parent / "archive" / "revision-1"
REVISION_2 = bundled_policy_dir().parent / "archive" / "revision-2"
REVISION_2_HISTORY = load_policy_book(REVISION_2).history


def decide(processor: Processor, event: dict[str, Any]) -> AdjudicationEvent | PendForReviewEvent:
    result = processor.process(to_bytes(event), SourcePosition(file_line=1))
    assert isinstance(result, Decided), getattr(result, "record", None)
    return result.event


class TestCodeSetsByDateOfService:
    @pytest.mark.parametrize(
        ("day", "release"),
        [
            (date(2024, 9, 30), None),
            (date(2024, 10, 1), "FY2025"),
            (date(2025, 9, 30), "FY2025"),
            (date(2025, 10, 1), "FY2026"),
            (date(2026, 9, 30), "FY2026"),
            (date(2026, 10, 1), None),
        ],
    )
    def test_each_date_of_service_has_the_release_in_force_or_none(self, day: date, release: str | None) -> None:
        found = release_for(day)
        assert (found.name if found else None) == release

    def test_the_shipped_fy2026_release_is_the_library_s_data_item_for_item(self) -> None:
        # The build script turned the library's CMS files into the shipped data; nothing was typed.
        with warnings.catch_warnings():
            # The library reads its data with importlib.resources.read_text, deprecated in 3.11.
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10_cm as icd

            icd.change_version()  # the library's own (April 2026) release
        shipped = code_set("FY2026")
        items = list(dict.fromkeys(icd.get_all_codes(with_dots=True)))
        assert len(items) == len(shipped._items)
        for item in items:
            parent = str(icd.get_parent(item))
            if parent == item:  # a block and its one category share a name: the row is the category's
                parent = str(icd.get_parent(item, prioritize_blocks=True))
            assert shipped._items[item] == (parent, bool(icd.is_leaf(item))), item

    @pytest.mark.parametrize(
        ("code", "release", "exists", "billable"),
        [
            ("G35", "FY2025", True, True),
            ("G35", "FY2026", True, False),
            ("G35.D", "FY2025", False, False),
            ("G35.D", "FY2026", True, True),
            ("g35d", "FY2026", True, True),
            ("F42", "FY2025", True, False),
        ],
    )
    def test_validity_is_the_release_s(self, code: str, release: str, exists: bool, billable: bool) -> None:
        found = lookup(code, release)
        assert (found.exists, found.billable, found.malformed) == (exists, billable, False)

    @pytest.mark.parametrize("text", ["12345", "F3", "F32.ABCDE", "G89-29", "ÄB1"])
    def test_text_that_is_not_a_code_s_shape_is_malformed(self, text: str) -> None:
        assert lookup(text, RELEASES[-1].name).malformed

    def test_a_release_is_read_once(self) -> None:
        assert code_set("FY2025") is code_set("FY2025")


def _product_ndcs() -> list[tuple[str, str]]:
    policy = load_policy_book().versions[-1]
    return [(p.product, p.labeler or "") for p in policy.ndc_product_sets["ketamine_injection"]]


class TestKetamineReferenceData:
    @pytest.mark.parametrize(("product", "labeler"), _product_ndcs(), ids=[p for p, _ in _product_ndcs()])
    def test_every_product_is_ketamine_in_scope(self, processor: Processor, product: str, labeler: str) -> None:
        ndc = f"{product[:5]}-{product[5:]}-01"
        out = decide(processor, claim_event(lines=[ketamine_line(ndc=ndc, drug_description="see NDC")]))
        assert out.lines[0].rule == "criteria.chronic_pain", (product, labeler)
        assert out.lines[0].ndc == f"{product}01"

    def test_every_product_says_who_makes_it_and_where_it_was_found(self) -> None:
        policy = load_policy_book().versions[-1]
        for entry in policy.ndc_product_sets["ketamine_injection"]:
            assert entry.labeler, entry.product
            assert entry.source, entry.product

    def test_the_drug_description_is_read_but_never_written(self, processor: Processor) -> None:
        secret = "ketamine for Pat Doe 1980-04-02"
        result = processor.process(
            to_bytes(claim_event(lines=[ketamine_line(ndc="25021-0300-10", drug_description=secret)])),
            SourcePosition(file_line=1),
        )
        assert isinstance(result, Decided)
        assert result.event.lines[0].rule == "scope.ndc_unknown_ketamine"
        written = result.event.model_dump_json() + repr(result.decision) + repr(result.claim)
        assert "Pat Doe" not in written
        assert "1980-04-02" not in written


class TestOutputLines:
    def test_a_line_carries_what_was_billed_and_a_denied_line_its_adjustment(self, processor: Processor) -> None:
        event = claim_event(
            lines=[
                ketamine_line(1, ndc="67457-108-10", modifiers=["JZ"], units="2", charge_amount="410.50"),
                service_line(2, "99213", charge_amount="95.00"),
            ]
        )
        drug, visit = decide(processor, event).lines
        assert (drug.procedure_code, drug.modifiers, drug.ndc, drug.route) == ("J3490", ["JZ"], "67457010810", "IV")
        assert (drug.service_date, str(drug.units), str(drug.charge_amount)) == (date(2025, 9, 1), "2", "410.50")
        assert (drug.outcome.value, str(drug.adjustment_amount), drug.group_code) == ("denied", "410.50", "CO")
        assert (visit.outcome.value, visit.adjustment_amount, visit.procedure_code) == ("not_applicable", None, "99213")

    def test_an_ambiguous_bare_ndc_is_not_guessed(self, processor: Processor) -> None:
        line = decide(processor, claim_event(lines=[ketamine_line(ndc="6745701081")])).lines[0]
        assert line.ndc is None

    def test_the_coverage_statement_has_what_crd_requires(self, processor: Processor) -> None:
        out = decide(processor, claim_event(lines=[ketamine_line(1), ketamine_line(2, charge_amount="99.00")]))
        first, second = (line.coverage for line in out.lines)
        assert first is not None
        assert second is not None
        assert first.date == date(2025, 9, 2)  # the claim's received date
        assert first.billing_code is not None
        assert (first.billing_code.system, first.billing_code.code) == ("HCPCS", "J3490")
        assert first.reason is not None
        assert first.reason.startswith("MB2300 sections 2.1, 1.2.1: ")
        assert first.coverage_assertion_id != second.coverage_assertion_id
        again = decide(processor, claim_event(lines=[ketamine_line(1), ketamine_line(2, charge_amount="99.00")]))
        assert again.lines[0].coverage is not None
        assert again.lines[0].coverage.coverage_assertion_id == first.coverage_assertion_id

    def test_a_pharmacy_line_is_billed_by_its_ndc(self, processor: Processor) -> None:
        out = decide(processor, claim_event(claim_type="pharmacy", lines=[ketamine_line(procedure_code=None)]))
        coverage = out.lines[0].coverage
        assert coverage is not None
        assert coverage.billing_code is not None
        assert (coverage.billing_code.system, coverage.billing_code.code) == ("NDC", "67457010810")

    @pytest.mark.parametrize(
        ("route", "named"), [("IV", "Intravenous (IV)"), ("IM", "Intramuscular (IM)"), ("SC", "Subcutaneous (SC)")]
    )
    def test_an_explanation_names_the_route_billed(self, processor: Processor, route: str, named: str) -> None:
        for event in (
            claim_event(lines=[ketamine_line(route=route)]),
            claim_event(lines=[ketamine_line(route=route)], prior_authorizations=[approved_pa()]),
        ):
            explanation = decide(processor, event).lines[0].explanation
            assert named in explanation, explanation


class TestReadingRevision:
    def test_the_shipped_reading_is_revision_3(self, processor: Processor) -> None:
        out = decide(processor, claim_event())
        assert (processor.policies.revision, out.policy.revision) == (3, 3)

    def test_revision_2_stays_loadable(self) -> None:
        kept = Processor(load_policy_book(REVISION_2))
        assert decide(kept, claim_event()).policy.revision == 2

    def test_revision_1_stays_loadable_and_decides_as_it_did(self) -> None:
        old = Processor(load_policy_book(REVISION_1))
        new = Processor(load_policy_book())
        event = claim_event(lines=[ketamine_line(service_date="2025-09-05")])  # after receipt
        before, after = decide(old, event), decide(new, event)
        assert (before.lines[0].carc, before.lines[0].rarc, before.policy.revision) == (["16"], ["N379"], 1)
        assert (after.lines[0].carc, after.lines[0].rarc) == (["110"], [])
        assert before.event_id != after.event_id

    def test_a_book_is_one_reading(self) -> None:
        current = load_policy_book().versions[0]
        ended = current.model_copy(update={"effective_to": date(2026, 6, 30)})
        later = current.model_copy(update={"version": "2026.07.01", "effective_from": date(2026, 7, 1), "revision": 4})
        with pytest.raises(ValueError, match="one reading"):
            PolicyBook([ended, later])
        assert PolicyBook([ended, later.model_copy(update={"revision": 3})]).revision == 3
        other = later.model_copy(update={"revision": 3, "history": REVISION_2_HISTORY})
        with pytest.raises(ValueError, match="history rules"):
            PolicyBook([ended, other])
