"""Base models shared by every contract version.

Inbound models ignore unknown fields, so the intake team can add fields without
breaking us (CLAIM-EVENT-V1.md). Outbound models forbid them, so nothing we did
not mean to publish (PHI above all) can slip into an output event.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class InboundModel(BaseModel):
    """A model read from another team's events: frozen, unknown fields ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        # Values are taken as sent: a padded identifier is refused (by its pattern), not trimmed,
        # so the model and the published JSON Schema accept the same documents.
        # Parsed from JSON only: pydantic's strict mode would reject date strings,
        # so strictness is applied per field where it matters (decimals, ints).
    )


class OutboundModel(BaseModel):
    """A model this worker publishes: frozen, and no field outside the contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")
