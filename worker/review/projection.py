"""The workbench's read model: the open pends, projected from the output topics into SQLite.

The topics stay the system of record: the projection is built by reading `claims.pended`,
`claims.adjudicated` and the dead-letter topic from the start (the dead letters only for the
reviews the worker refused, so a reviewer is told that and why), can be thrown away and rebuilt
at any time (`rebuild`), and keeps the next offset of each partition so a restart reads only
what is new.

A pend is open while it is the latest decision of its claim and nothing has superseded it: a
final adjudication from a review (it names the pend in `supersedes_event_id` and carries
`review_event_id`), a replacement or void of the claim, or the claim decided again. Events of
the two topics may be read in any order; the answer depends only on which events were read.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS pends (
    pend_event_id TEXT PRIMARY KEY, claim_id TEXT NOT NULL, member_id TEXT NOT NULL,
    queue TEXT NOT NULL, decided_at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    member_id TEXT NOT NULL, claim_id TEXT NOT NULL, event_id TEXT NOT NULL, decided_at TEXT NOT NULL,
    PRIMARY KEY (member_id, claim_id)
);
CREATE TABLE IF NOT EXISTS closed (pend_event_id TEXT PRIMARY KEY, by_event_id TEXT NOT NULL, how TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sent (
    pend_event_id TEXT PRIMARY KEY, review_event_id TEXT NOT NULL, reviewer_id TEXT NOT NULL, sent_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    review_event_id TEXT PRIMARY KEY, kind TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS applied (
    review_event_id TEXT PRIMARY KEY, pend_event_id TEXT NOT NULL, output_event_id TEXT NOT NULL,
    reviewer_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, part INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, part));
"""

OPEN = """
SELECT p.pend_event_id, p.claim_id, p.member_id, p.queue, p.decided_at, s.reviewer_id
FROM pends p JOIN latest l ON l.member_id = p.member_id AND l.claim_id = p.claim_id
LEFT JOIN sent s ON s.pend_event_id = p.pend_event_id
WHERE l.event_id = p.pend_event_id AND p.pend_event_id NOT IN (SELECT pend_event_id FROM closed)
ORDER BY p.queue, p.decided_at, p.claim_id
"""


@dataclass(frozen=True, slots=True)
class OpenPend:
    """One row of a worklist."""

    pend_event_id: str
    claim_id: str
    member_id: str
    queue: str
    decided_at: datetime
    review_sent_by: str | None
    """A reviewer whose review was sent from this workbench and is not applied yet."""


class Projection:
    """The open pends and what closed the others, in one SQLite file (created 0600: it holds PHI)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def __enter__(self) -> Projection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rebuild(self) -> None:
        """Forget everything: the next reads start from the beginning of the topics."""
        with self.db:
            for table in ("pends", "latest", "closed", "sent", "refused", "applied", "offsets"):
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - the names are the seven above

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """Where to go on reading each partition."""
        rows = self.db.execute("SELECT topic, part, next_offset FROM offsets").fetchall()
        return {(topic, part): offset for topic, part, offset in rows}

    def apply(self, records: list[tuple[str, int, int, bytes]]) -> None:
        """Apply records (topic, partition, offset, value) read from the output topics, in one transaction."""
        with self.db:
            for topic, part, offset, value in records:
                try:
                    event = json.loads(value)
                except ValueError:
                    event = None
                if isinstance(event, dict) and event.get("event_type") in ("claim.pended", "claim.adjudicated"):
                    self._apply_decision(event)
                elif isinstance(event, dict) and str(event.get("kind", "")).startswith("review_"):
                    self._apply_refusal(event)
                self.db.execute(
                    "INSERT INTO offsets VALUES (?, ?, ?) ON CONFLICT (topic, part) DO UPDATE SET"
                    " next_offset = max(next_offset, excluded.next_offset)",
                    (topic, part, offset + 1),
                )

    def _apply_decision(self, event: dict[str, Any]) -> None:
        event_id, decided_at = str(event["event_id"]), str(event["decided_at"])
        member, claim = str(event["member_id"]), str(event["claim_id"])
        self.db.execute(
            "INSERT INTO latest VALUES (?, ?, ?, ?) ON CONFLICT (member_id, claim_id) DO UPDATE SET"
            " event_id = excluded.event_id, decided_at = excluded.decided_at"
            " WHERE excluded.decided_at > latest.decided_at",
            (member, claim, event_id, decided_at),
        )
        superseded = event.get("supersedes_event_id")
        if superseded and event.get("review_event_id"):
            reviewer = next(
                (
                    word.removeprefix("reviewer ")
                    for hit in event.get("trace", ())
                    for word in hit.get("evidence", ())
                    if str(word).startswith("reviewer ")
                ),
                "unknown",
            )
            self.db.execute(
                "INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?)",
                (str(event["review_event_id"]), str(superseded), event_id, reviewer),
            )
        if superseded:
            how = "resolved" if event.get("review_event_id") else "superseded"
            self.db.execute("INSERT OR IGNORE INTO closed VALUES (?, ?, ?)", (str(superseded), event_id, how))
        if event["event_type"] == "claim.pended":
            self.db.execute(
                "INSERT OR IGNORE INTO pends VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, claim, member, str(event["queue"]), decided_at, json.dumps(event)),
            )

    def _apply_refusal(self, record: dict[str, Any]) -> None:
        review = record.get("source_event_id")
        if not review:
            return
        errors = record.get("errors") or [{}]
        reason = str(errors[0].get("message", record.get("reason", "")))[:500]
        self.db.execute("INSERT OR IGNORE INTO refused VALUES (?, ?, ?)", (str(review), str(record["kind"]), reason))

    def review_outcome(self, review_event_id: str) -> tuple[str, str] | None:
        """What the worker did with a review: ("applied", final event id) or ("refused", why); None: not yet."""
        row = self.db.execute(
            "SELECT output_event_id FROM applied WHERE review_event_id = ?", (review_event_id,)
        ).fetchone()
        if row is not None:
            return "applied", str(row[0])
        row = self.db.execute(
            "SELECT kind, reason FROM refused WHERE review_event_id = ?", (review_event_id,)
        ).fetchone()
        return ("refused", f"{row[0]}: {row[1]}") if row is not None else None

    def resolved_by(self, pend_event_id: str) -> str | None:
        """The reviewer whose review closed a pend (as its final adjudication's trace names them), if any."""
        row = self.db.execute("SELECT reviewer_id FROM applied WHERE pend_event_id = ?", (pend_event_id,)).fetchone()
        return str(row[0]) if row is not None else None

    def open_pends(self) -> list[OpenPend]:
        """Every open pend, by queue, oldest first."""
        return [
            OpenPend(pend, claim, member, queue, _when(decided), sent)
            for pend, claim, member, queue, decided, sent in self.db.execute(OPEN).fetchall()
        ]

    def pend(self, pend_event_id: str) -> tuple[dict[str, Any], str] | None:
        """A pend's event and its state (`open`, `resolved`, `superseded`), or None when unknown."""
        row = self.db.execute("SELECT body FROM pends WHERE pend_event_id = ?", (pend_event_id,)).fetchone()
        if row is None:
            return None
        body: dict[str, Any] = json.loads(row[0])
        if self.db.execute(f"SELECT 1 FROM ({OPEN}) WHERE pend_event_id = ?", (pend_event_id,)).fetchone():  # noqa: S608 - OPEN is the constant above
            return body, "open"
        closed = self.db.execute("SELECT how FROM closed WHERE pend_event_id = ?", (pend_event_id,)).fetchone()
        return body, str(closed[0]) if closed else "superseded"

    def mark_sent(self, pend_event_id: str, review_event_id: str, reviewer_id: str, sent_at: datetime) -> None:
        """Remember that a review of this pend was published from here (shown until it is applied)."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?)",
                (pend_event_id, review_event_id, reviewer_id, sent_at.isoformat()),
            )


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
