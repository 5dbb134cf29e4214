"""The committed JSON Schemas match the models, and the models accept what they publish."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from claims_contracts.schemas import SCHEMA_MODELS, render
from claims_contracts.v1 import ClaimEvent, SourcePosition
from tests.builders import EXAMPLE_EVENT, SHARED_EXAMPLE_EVENT, claim_event, example_event, to_bytes
from worker.processor import DeadLettered, Decided, Processor

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "contracts" / "schemas" / "v1"


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_the_committed_schema_is_current(name: str) -> None:
    committed = (SCHEMA_DIR / name).read_text()
    assert committed == render(SCHEMA_MODELS[name]), f"{name} is stale: run `make schemas` and commit"


def test_the_vendored_example_is_the_shared_one() -> None:
    if not SHARED_EXAMPLE_EVENT.exists():
        pytest.skip("no ../shared beside this checkout")
    assert json.loads(EXAMPLE_EVENT.read_text()) == json.loads(SHARED_EXAMPLE_EVENT.read_text())


def test_the_example_event_validates_against_the_claim_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "claim-event.schema.json").read_text())
    jsonschema.validate(example_event(), schema)


def test_published_events_validate_against_their_schemas(processor: Processor) -> None:
    adjudicated = processor.process(to_bytes(example_event()), SourcePosition(file_line=1))
    pended = processor.process(to_bytes(claim_event(diagnoses=["R52"])), SourcePosition(file_line=2))
    dead = processor.process(b"\xff", SourcePosition(topic="t", partition=0, offset=1))
    assert isinstance(adjudicated, Decided)
    assert isinstance(pended, Decided)
    assert isinstance(dead, DeadLettered)
    for published, name in (
        (adjudicated.payload, "adjudication-event.schema.json"),
        (pended.payload, "pend-for-review-event.schema.json"),
        (dead.record.model_dump_json().encode(), "dead-letter-record.schema.json"),
    ):
        jsonschema.validate(json.loads(published), json.loads((SCHEMA_DIR / name).read_text()))


class TestRoundTrip:
    def test_a_claim_event_survives_dump_and_validate(self) -> None:
        event = ClaimEvent.model_validate(example_event())
        assert ClaimEvent.model_validate_json(event.model_dump_json()) == event

    def test_output_events_survive_dump_and_validate(self, processor: Processor) -> None:
        result = processor.process(to_bytes(example_event()), SourcePosition(file_line=1))
        assert isinstance(result, Decided)
        assert type(result.event).model_validate_json(result.event.model_dump_json()) == result.event

    def test_unknown_inbound_fields_are_tolerated(self) -> None:
        event = example_event()
        event["new_envelope_field"] = 1
        event["claim"]["lines"][0]["new_line_field"] = {"nested": True}
        assert ClaimEvent.model_validate(event).claim.claim_id == "CLM-2025-000123"

    def test_amounts_stay_decimal_strings(self) -> None:
        dumped = json.loads(ClaimEvent.model_validate(example_event()).model_dump_json())
        assert dumped["claim"]["lines"][0]["charge_amount"] == "350.00"


class TestOutputsCarryNoPhi:
    PHI_VALUES = ("Pat", "Example", "1980-04-02", "ketamine hydrochloride injection", "Main Street")

    def test_no_phi_value_reaches_an_output_event(self, processor: Processor) -> None:
        event = example_event()
        event["claim"]["member"]["address"] = {"line1": "1 Main Street", "city": "Madison"}
        result = processor.process(to_bytes(event), SourcePosition(file_line=1))
        assert isinstance(result, Decided)
        text = result.payload.decode()
        for value in self.PHI_VALUES:
            assert value not in text

    def test_output_models_have_no_phi_fields(self) -> None:
        for name, model in SCHEMA_MODELS.items():
            if model is ClaimEvent:
                continue
            text = render(model)
            for field in ("first_name", "last_name", "birth_date", "address", "drug_description"):
                assert f'"{field}"' not in text, (name, field)
