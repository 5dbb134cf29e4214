"""The replay diff between two readings of the policy, written into docs/policy.md (`make policy-diff`).

The bench mix (`bench/data.py`, seeded) is written to a file and replayed twice with
`claims-worker replay --from-file`: under the revision before the shipped one (`--policy-dir` of
the archived files) and under the shipped revision, the second compared with the first
(`--compare-with`). The transition table that report gives replaces the text between the
markers in docs/policy.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "policy.md"
BEGIN, END = "<!-- policy-diff:begin -->", "<!-- policy-diff:end -->"
CLI = str(Path(sys.executable).with_name("claims-worker"))
ARCHIVE = ROOT / "worker" / "adjudication" / "archive"
PREVIOUS, SHIPPED = 2, 3
"""The readings compared: the archived one before the shipped one, and the shipped one."""


def _replay(work: Path, name: str, *extra: str) -> None:
    subprocess.run(  # noqa: S603 - our own command line, on files this script wrote
        [
            CLI,
            "replay",
            "--from-file",
            str(work / "mix.jsonl"),
            "--output-file",
            str(work / f"{name}.jsonl"),
            "--report-dir",
            str(work / name),
            "--run-id",
            name,
            *extra,
        ],
        check=True,
        capture_output=True,
    )


def table(report: dict[str, Any], claims: int) -> str:
    """The report as the markdown docs/policy.md shows."""
    changes: list[dict[str, Any]] = report["line_changes"]
    out = [
        f"The bench mix ({claims:,} claim events, `bench/data.py`, seed 2300), replayed under revision {PREVIOUS} and",
        f"under revision {SHIPPED} (`make policy-diff`):",
        "",
        f"- decisions compared: {report['compared']:,}; unchanged: {report['unchanged']:,};"
        f" changed: {report['changed']:,}",
        f"- identical output event ids: {report['identical_event_ids']:,} (the revision is part of the id)",
        f"- identical bodies apart from `decided_at`: {report['identical_bodies_apart_from_decided_at']:,}",
        "",
        "| from (outcome:rule) | to (outcome:rule) | lines | first claims |",
        "|---|---|---|---|",
    ]
    for change in changes:
        first = ", ".join(change["claim_ids"][:3])
        out.append(f"| {change['from']} | {change['to']} | {change['count']:,} | {first} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Replay the bench mix under both readings and rewrite the diff in docs/policy.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from bench.data import claims

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "mix.jsonl").write_bytes(b"\n".join(claims(args.claims)) + b"\n")
        before, after = f"revision-{PREVIOUS}", f"revision-{SHIPPED}"
        _replay(work, before, "--policy-dir", str(ARCHIVE / before))
        _replay(work, after, "--compare-with", str(work / f"{before}.jsonl"))
        report = json.loads((work / after / "report.json").read_text())
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table(report, args.claims)}\n{END}{tail}")
    print(f"{DOC}: {report['changed']:,} of {report['compared']:,} decisions changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
