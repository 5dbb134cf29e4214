"""`python -m worker.dev.docs`: rewrite the generated parts of docs/operations.md."""

from __future__ import annotations

import sys
from pathlib import Path

from worker.settings import reference_table

START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def render(text: str) -> str:
    """The document with its settings table regenerated between the markers."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference_table()}{END}{tail}"


def main(path: str = "docs/operations.md") -> int:
    """Rewrite the document in place."""
    target = Path(path)
    target.write_text(render(target.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
