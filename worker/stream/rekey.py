"""Re-keying by member id: which partition holds a member, and where a re-keyed input came from.

The worker's input may be keyed by anything (claim id, member id, nothing) and partitioned by
any client's partitioner. Decisions depend on a member's earlier claims, so before a claim is
decided it is forwarded, unchanged, to the internal topic `<group>-claims-by-member-repartition`,
keyed by member id, on the partition `member_partition` names: the Java client's partitioner
(murmur2), chosen here explicitly so the producer's default can never move a member. Each of
that topic's partitions is owned by one worker with the history table's partition of the same
number, so every claim of a member is decided by one worker, in the order the member's claims
reached that partition. A claim read on its member's partition already is decided there, without
the hop (`worker.stream.placement`).

A forwarded message keeps the input's headers (trace context) and gains one, `SOURCE_HEADER`:
the input's own position, so dead letters and audit lines still name the record a producer
wrote.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2
from pydantic import ValidationError

from claims_contracts.v1 import SourcePosition

SOURCE_HEADER = "claims-source"
KIND_HEADER = "claims-kind"
"""On a forwarded message: `review` when it came from the reviews topic (absent: a claim event)."""
REVIEW = b"review"
"""The header carrying the input's position (`SourcePosition` as JSON) on a forwarded claim."""


def member_partition(member_id: str, partitions: int) -> int:
    """The partition of a member: murmur2 of the id's UTF-8 bytes, as the Java client places a key."""
    hashed: int = murmur2(member_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def source_header(position: SourcePosition) -> tuple[str, bytes]:
    """The header that tells the deciding step where a forwarded claim was read."""
    return (SOURCE_HEADER, position.model_dump_json(exclude_none=True).encode())


def origin(headers: tuple[tuple[str, bytes | None], ...]) -> SourcePosition | None:
    """The input position a forwarded claim carries (None: absent or unreadable, e.g. written by hand)."""
    for name, value in headers:
        if name == SOURCE_HEADER and value:
            try:
                return SourcePosition.model_validate_json(value)
            except ValidationError:
                return None
    return None


def without_source(headers: tuple[tuple[str, bytes | None], ...]) -> tuple[tuple[str, bytes | None], ...]:
    """The headers as the producer wrote them, less the ones forwarding sets (a producer's are never trusted)."""
    return tuple((name, value) for name, value in headers if name not in (SOURCE_HEADER, KIND_HEADER))


def is_review(headers: tuple[tuple[str, bytes | None], ...]) -> bool:
    """A forwarded message that came from the reviews topic."""
    return any(name == KIND_HEADER and value == REVIEW for name, value in headers)
