"""Dead-letter records: what to publish for input the worker cannot read.

The reason is precise (field path and message) and never quotes the input's
values: the original bytes travel base64 in the record, for repair and replay,
and the reason is safe to log.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime

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


def record(
    raw: bytes,
    unreadable: Unreadable,
    source: SourcePosition,
    *,
    dead_lettered_at: datetime,
    keep_bytes: int,
) -> DeadLetterRecord:
    """Build the dead-letter record of an unreadable input.

    Args:
        raw: the original bytes.
        unreadable: why they cannot be adjudicated.
        source: where they came from.
        dead_lettered_at: now, from the edge's clock.
        keep_bytes: how many of the original bytes to keep (the record must fit the topic).

    Returns:
        The record, with an id that is the same for the same source position.
    """
    if source.topic is not None:
        identity = f"{source.topic}|{source.partition}|{source.offset}"
    else:
        identity = f"file|{source.file_line}|{hashlib.sha256(raw).hexdigest()}"
    kept = raw[:keep_bytes]
    return DeadLetterRecord(
        event_id=uuid.uuid5(DEAD_LETTER_NAMESPACE, identity),
        kind=unreadable.kind,
        reason=summary(unreadable.kind, unreadable.errors),
        errors=unreadable.errors,
        source=source,
        source_event_id=unreadable.source_event_id,
        original_size=len(raw),
        original_b64=base64.b64encode(kept).decode("ascii"),
        original_truncated=len(kept) < len(raw),
        dead_lettered_at=dead_lettered_at,
    )
