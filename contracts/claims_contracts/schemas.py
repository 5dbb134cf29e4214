"""JSON Schema generation for the published models.

`python -m claims_contracts.schemas DIR` writes one file per model; the
committed copies under `schemas/v1/` are checked against it by the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from claims_contracts.v1 import AdjudicationEvent, ClaimEvent, DeadLetterRecord, PendForReviewEvent, ReviewDecisionEvent

SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "claim-event.schema.json": ClaimEvent,
    "adjudication-event.schema.json": AdjudicationEvent,
    "pend-for-review-event.schema.json": PendForReviewEvent,
    "dead-letter-record.schema.json": DeadLetterRecord,
    "review-decision-event.schema.json": ReviewDecisionEvent,
}
"""File name of each committed schema, and the model it is generated from."""


def render(model: type[BaseModel]) -> str:
    """Return the JSON Schema of a model as stable, indented text."""
    # Inputs are described as they are accepted, outputs as they are published.
    schema = model.model_json_schema(
        mode="validation" if model in (ClaimEvent, ReviewDecisionEvent) else "serialization"
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_all(directory: Path) -> list[Path]:
    """Write every schema into a directory and return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMA_MODELS.items():
        path = directory / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas/v1")):
        print(path)
