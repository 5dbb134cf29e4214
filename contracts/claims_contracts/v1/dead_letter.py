"""The dead-letter record: what the worker publishes for input it cannot read."""

from __future__ import annotations

import base64
import hashlib
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from claims_contracts._base import OutboundModel


class DeadLetterKind(StrEnum):
    """Why the input could not be adjudicated."""

    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    SCHEMA_VIOLATION = "schema_violation"
    TOO_LARGE = "too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    EVENT_ID_CONFLICT = "event_id_conflict"
    """The input reuses an event id already decided for different content (1.1.0)."""
    OUTPUT_TOO_LARGE = "output_too_large"
    """The input was decided, but its output could not be published for its size (1.1.0)."""
    REVIEW_UNKNOWN_PEND = "review_unknown_pend"
    """A review naming a pend the worker never emitted for that claim (1.4.0)."""
    REVIEW_ALREADY_RESOLVED = "review_already_resolved"
    """A second review of a pend another review already resolved (1.4.0)."""
    REVIEW_SUPERSEDED = "review_superseded"
    """A review of a pend superseded since: the claim was replaced, voided or decided again (1.4.0)."""
    REVIEW_LINES_NOT_PENDED = "review_lines_not_pended"
    """A review that decides lines the pend did not pend, or leaves pended lines undecided (1.4.0)."""
    REVIEW_UNAUTHENTICATED = "review_unauthenticated"
    """A review without a valid signature by a key the worker trusts (1.6.0)."""
    REVIEW_NOT_ALLOWED = "review_not_allowed"
    """A review whose outcome the pend's queue does not allow, or whose reviewer lacks the queue's role (1.6.0)."""
    REVIEW_INVALID = "review_invalid"
    """A review that makes no sense: a code not in the code table or not fitting the outcome, a time before the
    pend or in the future (1.6.0)."""
    CLAIM_ID_CONFLICT = "claim_id_conflict"
    """An original claim whose claim id was already decided for the member with other content, neither a
    replacement nor a void: the earlier output stands and nothing of the member's history changes (1.5.0)."""


class SourcePosition(OutboundModel):
    """Where the unreadable input came from: a topic position or a file line."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key_b64: str | None = Field(default=None, description="The message key, base64 (its first bytes when cut).")
    key_size: int | None = Field(default=None, description="Size of the whole key in bytes (1.1.0).")
    key_sha256: str | None = Field(
        default=None, description="SHA-256 of the whole key, hex, when `key_b64` holds only its first bytes (1.1.0)."
    )
    key_truncated: bool = Field(default=False, description="True when `key_b64` holds only its first bytes (1.1.0).")
    file_line: int | None = Field(default=None, description="1-based line number, for file input.")

    @classmethod
    def of_record(
        cls, topic: str, partition: int, offset: int, key: bytes | None, *, keep: int | None = None
    ) -> SourcePosition:
        """The position of a Kafka record, its key kept as base64 (its first `keep` bytes, when given)."""
        if key is None:
            return cls(topic=topic, partition=partition, offset=offset)
        kept = key if keep is None else key[:keep]
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(kept).decode("ascii"),
            key_size=len(key),
            # Only a cut key needs its digest (a whole one is in key_b64): positions are made for
            # every input, and hashing every key would cost each of them.
            key_sha256=hashlib.sha256(key).hexdigest() if len(kept) < len(key) else None,
            key_truncated=len(kept) < len(key),
        )

    @property
    def key(self) -> bytes | None:
        """The record's key as bytes (None for file input or an unkeyed record)."""
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None


class ErrorDetail(OutboundModel):
    """One precise error: where in the input, and what is wrong. Never the value."""

    path: str = Field(description="Dotted field path, e.g. claim.lines.0.units; empty for the whole input.")
    message: str
    type: str = Field(description="Machine-readable error type, e.g. missing, decimal_parsing.")


class DeadLetterRecord(OutboundModel):
    """An input the worker could not read, kept whole for repair and replay."""

    schema_version: Literal[1] = 1
    event_type: Literal["claim.dead_lettered"] = "claim.dead_lettered"
    event_id: UUID = Field(description="Deterministic for the source position (or the bytes, for file input).")
    kind: DeadLetterKind
    reason: str = Field(description="One line summary of the first error.")
    errors: list[ErrorDetail]
    source: SourcePosition
    source_event_id: str | None = Field(default=None, description="The input's event_id, when it could be read.")
    original_size: int = Field(description="Size of the original value in bytes.")
    original_b64: str = Field(description="The original value, base64; may be cut at the dead-letter size limit.")
    original_truncated: bool = Field(
        default=False, description="True when `original_b64` holds only the first bytes (the record must fit)."
    )
    original_sha256: str | None = Field(default=None, description="SHA-256 of the whole original value, hex (1.1.0).")
    dead_lettered_at: AwareDatetime
