"""`make demo`: the bundled sample claims, decided and shown as a table.

Runs the same `Processor` the stream worker runs. (The Kafka round trip joins
this demo with the stream worker.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib import resources

from claims_contracts.v1 import SourcePosition
from worker.policy_files import load_policy_book
from worker.processor import DeadLettered, Decided, Processed, Processor


def sample_claims() -> list[bytes]:
    """The bundled sample claim events (one per rule, plus two unreadable ones), as raw lines."""
    text = resources.files("worker").joinpath("samples/claims.jsonl").read_bytes()
    return [line for line in text.splitlines() if line.strip()]


def table(results: Iterable[Processed]) -> str:
    """Render results as a fixed-width table: claim, line, outcome, rule, codes."""
    rows = [("claim", "line", "outcome", "rule", "codes")]
    for result in results:
        if isinstance(result, Decided):
            for line in result.event.lines:
                codes = " ".join(
                    [*(f"CARC {c}" for c in line.carc), *(f"RARC {c}" for c in line.rarc)]
                    + [f"NCPDP {c}" for c in line.ncpdp_reject]
                )
                rows.append((result.event.claim_id, str(line.line_number), line.outcome.value, line.rule, codes))
        elif isinstance(result, DeadLettered):
            rows.append(("(unreadable)", "-", "dead-letter", result.record.kind.value, result.record.reason[:60]))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def main() -> int:
    """Decide the sample claims and print the table."""
    processor = Processor(load_policy_book())
    results = [processor.process(raw, SourcePosition(file_line=n)) for n, raw in enumerate(sample_claims(), start=1)]
    sys.stdout.write(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
