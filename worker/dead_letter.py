"""Dead-letter records: what to publish for input the worker cannot read.

The reason is precise (field path and message) and never quotes the input's
values: the original bytes travel base64 in the record, for repair and replay,
and the reason is safe to log.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from claims_contracts.v1 import DeadLetterKind, DeadLetterRecord, ErrorDetail, SourcePosition

DEAD_LETTER_NAMESPACE = uuid.UUID("2b8e4a53-1f0c-5d0e-8f3a-6c9d2e7b4a10")
"""Namespace of the deterministic dead-letter event ids (UUID version 5)."""

MAX_ERRORS = 20
"""Errors kept per record: enough to repair an event, bounded for a hostile one."""


class Unreadable(Exception):
    """An input that cannot be adjudicated, classified for the dead-letter topic."""

    def __init__(self, kind: DeadLetterKind, errors: list[ErrorDetail], source_event_id: str | None = None) -> None:
        self.kind = kind
        self.errors = errors
        self.source_event_id = source_event_id
        super().__init__(summary(kind, errors))


def summary(kind: DeadLetterKind, errors: list[ErrorDetail]) -> str:
    """One line: the kind, then the first error's path and message."""
    if not errors:
        return kind.value
    first = errors[0]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{kind.value}: {first.path or '<root>'}: {first.message}{more}"


def classify(raw: bytes, error: ValidationError) -> Unreadable:
    """Turn a failed validation of raw bytes into a classified, value-free error.

    Args:
        raw: the input bytes.
        error: what pydantic said of them.

    Returns:
        The classification: not UTF-8, not JSON, unsupported version, or schema violation.
    """
    details = error.errors(include_url=False, include_input=False, include_context=False)
    if details and details[0]["type"] == "json_invalid":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            return Unreadable(
                DeadLetterKind.NOT_UTF8,
                [ErrorDetail(path="", message=f"invalid UTF-8 at byte {decode_error.start}", type="utf8_invalid")],
            )
        return Unreadable(
            DeadLetterKind.NOT_JSON, [ErrorDetail(path="", message=details[0]["msg"], type="json_invalid")]
        )
    errors = [
        ErrorDetail(path=".".join(str(part) for part in detail["loc"]), message=detail["msg"], type=detail["type"])
        for detail in details[:MAX_ERRORS]
    ]
    kind = DeadLetterKind.SCHEMA_VIOLATION
    if errors and errors[0].path == "schema_version" and errors[0].type == "literal_error":
        kind = DeadLetterKind.UNSUPPORTED_VERSION
    return Unreadable(kind, errors)


def too_large(size: int, limit: int) -> Unreadable:
    """The error for an input over the size limit."""
    return Unreadable(
        DeadLetterKind.TOO_LARGE,
        [ErrorDetail(path="", message=f"{size} bytes is over the limit of {limit} bytes", type="too_large")],
    )


RECORD_SLACK = 1024
"""Bytes of a dead-letter message left for what is not the record's JSON: the Kafka key (at most
`KEY_BYTES`), headers and the record's own framing in its batch."""

KEY_BYTES = 256
"""The longest input key a dead letter is keyed by; a longer one is replaced by its SHA-256."""

KEY_KEPT = 1024
"""Bytes of an input key kept in a dead letter's source position (the size and SHA-256 of the
whole key are kept too)."""


SUMMARY_BYTES = 16 * 1024
"""A dead letter cut to its summary: when even the dead letter was refused for its size, what is
sent keeps the errors, the size and the SHA-256 of the original, and only its first bytes."""


def message_key(key: bytes | None) -> bytes | None:
    """The key a dead letter is published with: the input key, or its SHA-256 when it is long."""
    if key is None or len(key) <= KEY_BYTES:
        return key
    return hashlib.sha256(key).hexdigest().encode("ascii")


def output_too_large(size: int, topic: str) -> Unreadable:
    """The error for an output the producer or the broker refused for its size."""
    return Unreadable(
        DeadLetterKind.OUTPUT_TOO_LARGE,
        [
            ErrorDetail(
                path="", message=f"an output of {size} bytes was refused by {topic} for its size", type="too_large"
            )
        ],
    )


def event_id_conflict(event_id: str, output_event_id: str, claim_id: str) -> Unreadable:
    """The error for an input whose event id was already decided for other content."""
    message = (
        f"event_id {event_id} was already decided (output {output_event_id}) for other content;"
        f" this input is claim {claim_id}"
    )
    return Unreadable(
        DeadLetterKind.EVENT_ID_CONFLICT,
        [ErrorDetail(path="event_id", message=message, type="event_id_conflict")],
        source_event_id=event_id,
    )


def review_unauthenticated(reason: str, claimed_event_id: str | None = None) -> Unreadable:
    """The error for a review without a valid signature by a trusted key: nothing of it is trusted.

    `claimed_event_id` is the event id the bytes say they have, untrusted: it only lets the
    sender find its refusal.
    """
    return Unreadable(
        DeadLetterKind.REVIEW_UNAUTHENTICATED,
        [ErrorDetail(path="(header claims-review-signature)", message=reason, type="review_unauthenticated")],
        source_event_id=claimed_event_id,
    )


def claim_id_conflict(event_id: str, claim_id: str, earlier: Mapping[str, Any]) -> Unreadable:
    """The error for an original claim whose claim id was already decided for other content (revision 3, item 13).

    It names the earlier claim's output (its final adjudication, when a review closed its pend),
    so the producer can send a replacement (frequency 7) or a void (8) of it instead.
    """
    review = earlier.get("review") or {}
    output = review.get("output") or earlier.get("event_id")
    message = (
        f"claim {claim_id} was already decided (output {output}) for other content; send a replacement"
        " (frequency 7) or a void (8) of it, or a new claim id"
    )
    return Unreadable(
        DeadLetterKind.CLAIM_ID_CONFLICT,
        [ErrorDetail(path="claim.claim_id", message=message, type="claim_id_conflict")],
        source_event_id=event_id,
    )


def record(
    raw: bytes,
    unreadable: Unreadable,
    source: SourcePosition,
    *,
    dead_lettered_at: datetime,
    max_record_bytes: int | None = None,
) -> DeadLetterRecord:
    """Build the dead-letter record of an unreadable input, small enough for its topic.

    The original bytes are kept whole when the record fits `max_record_bytes`; otherwise
    their first bytes are kept, with their size and SHA-256, and `original_truncated` says so.

    Args:
        raw: the original bytes.
        unreadable: why they cannot be adjudicated.
        source: where they came from.
        dead_lettered_at: now, from the edge's clock.
        max_record_bytes: the largest message the dead-letter topic takes (its
            `max.message.bytes`); None keeps every byte (a file), 0 none of them.

    Returns:
        The record, with an id that is the same for the same source position.
    """
    if source.topic is not None:
        identity = f"{source.topic}|{source.partition}|{source.offset}"
    else:
        identity = f"file|{source.file_line}|{hashlib.sha256(raw).hexdigest()}"
    fields = {
        "event_id": uuid.uuid5(DEAD_LETTER_NAMESPACE, identity),
        "kind": unreadable.kind,
        "reason": summary(unreadable.kind, unreadable.errors),
        "errors": unreadable.errors,
        "source": source,
        "source_event_id": unreadable.source_event_id,
        "original_size": len(raw),
        "original_sha256": hashlib.sha256(raw).hexdigest(),
        "dead_lettered_at": dead_lettered_at,
    }
    kept = raw
    if max_record_bytes is not None:
        skeleton = len(DeadLetterRecord(**fields, original_b64="", original_truncated=True).model_dump_json())
        room = max(max_record_bytes - RECORD_SLACK - skeleton, 0) if max_record_bytes else 0
        kept = raw[: room // 4 * 3]  # base64 writes 4 characters for every 3 bytes
    return DeadLetterRecord(
        **fields, original_b64=base64.b64encode(kept).decode("ascii"), original_truncated=len(kept) < len(raw)
    )
