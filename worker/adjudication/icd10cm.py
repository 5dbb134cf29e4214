"""ICD-10-CM validity and hierarchy, by the release in force on a date of service.

CMS publishes one ICD-10-CM release a fiscal year, in force from October 1 (FY2026: 2025-10-01
to 2026-09-30). A code is valid on a claim line when it is billable in the release of the line's
date of service: G35 was billable until 2025-09-30 and is a category from 2025-10-01, when G35.D
came into being. The releases ship with the worker as data (`code_sets/icd10cm-<FY>.tsv.gz`),
built from CMS's files as `simple-icd-10-cm` distributes them by `worker.dev.code_sets`; each
is read once, on first use, and never changes for the life of the process, so the look-ups
are memoised (bounded).

Each release is the April update of its fiscal year (the last the library ships for it),
applied to the whole year: a code added in April is accepted for the October-March dates of
that year too (docs/policy.md).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from importlib import resources

ICD10CM_SYNTAX = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?")
"""The shape of an ICD-10-CM code: letter, digit, letter or digit, then an optional dot and up
to four letters or digits. A diagnosis that is not this shape is malformed."""


@dataclass(frozen=True, slots=True)
class Release:
    """One shipped ICD-10-CM release and the dates of service it governs."""

    name: str
    starts: date
    ends: date
    source: str
    """Where its data came from (recorded in the docs and by `explain`)."""


RELEASES: tuple[Release, ...] = (
    Release("FY2025", date(2024, 10, 1), date(2025, 9, 30), "CMS ICD-10-CM April 2025 update, simple-icd-10-cm 1.4.0"),
    Release("FY2026", date(2025, 10, 1), date(2026, 9, 30), "CMS ICD-10-CM April 2026 update, simple-icd-10-cm 1.5.0"),
)
"""Every release the worker ships, oldest first."""
RELEASE_NAMES = frozenset(release.name for release in RELEASES)


@dataclass(frozen=True, slots=True)
class DiagnosisCode:
    """What one release says of one code."""

    code: str
    """The code in dotted form when it exists, else as given (upper case)."""
    release: str
    """The release that answered."""
    exists: bool
    """True when the code is in the release (a chapter, block, category or code)."""
    billable: bool
    """True when the code is a leaf: valid on a claim. A category such as F42 is not."""
    lineage: tuple[str, ...]
    """The code itself, then its ancestors nearest first (blocks and chapters included)."""
    malformed: bool = False
    """True when the text is not an ICD-10-CM code's shape at all."""

    @property
    def category(self) -> str:
        """The 3-character category, e.g. F32 for F32.A."""
        return self.code.replace(".", "")[:3]


def release_for(day: date) -> Release | None:
    """The release in force on a date of service; None when no shipped release covers it."""
    for release in RELEASES:
        if release.starts <= day <= release.ends:
            return release
    return None


def nearest_release(day: date) -> Release:
    """The release in force on a date, or the nearest shipped one (for lines no data check decides)."""
    found = release_for(day)
    if found is not None:
        return found
    return RELEASES[0] if day < RELEASES[0].starts else RELEASES[-1]


class CodeSet:
    """One release's items: parent and billable flag by dotted code."""

    def __init__(self, release: Release) -> None:
        self.release = release
        self._items: dict[str, tuple[str, bool]] = {}
        for row in _rows(release.name):
            item, parent, billable, _ = row.split("\t", 3)
            self._items[item] = (parent, billable == "1")

    def __contains__(self, code: object) -> bool:
        return code in self._items

    def lineage(self, code: str) -> tuple[str, ...]:
        """The code, then its ancestors nearest first."""
        chain = [code]
        parent = self._items[code][0]
        while parent:
            chain.append(parent)
            parent = self._items[parent][0]
        return tuple(chain)

    def billable(self, code: str) -> bool:
        """Whether a code of the release is a leaf."""
        return self._items[code][1]


def _rows(name: str) -> list[str]:
    data = resources.files("worker.adjudication").joinpath("code_sets", f"icd10cm-{name}.tsv.gz")
    return gzip.decompress(data.read_bytes()).decode("utf-8").splitlines()


@cache
def code_set(name: str) -> CodeSet:
    """A shipped release, read once."""
    for release in RELEASES:
        if release.name == name:
            return CodeSet(release)
    raise KeyError(f"no shipped ICD-10-CM release {name!r}; shipped: {sorted(RELEASE_NAMES)}")


def _dotted(upper: str) -> str:
    bare = upper.replace(".", "")
    return bare if len(bare) <= 3 else f"{bare[:3]}.{bare[3:]}"


@lru_cache(maxsize=32768)
def lookup(code: str, release: str) -> DiagnosisCode:
    """Look up one ICD-10-CM code, with or without its dot, in a release.

    Args:
        code: the code as sent.
        release: the release's name (`FY2026`).

    Returns:
        What the release says of it; a code it does not know has `exists` False, and text
        that is not a code's shape is `malformed`.
    """
    upper = code.strip().upper()
    if not ICD10CM_SYNTAX.fullmatch(upper):
        return DiagnosisCode(
            code=upper, release=release, exists=False, billable=False, lineage=(upper,), malformed=True
        )
    codes = code_set(release)
    dotted = _dotted(upper)
    if dotted not in codes:
        return DiagnosisCode(code=dotted, release=release, exists=False, billable=False, lineage=(dotted,))
    return DiagnosisCode(
        code=dotted, release=release, exists=True, billable=codes.billable(dotted), lineage=codes.lineage(dotted)
    )


def exists_in_any(code: str) -> str | None:
    """The dotted form of a code when some shipped release has it (policy files name codes so)."""
    for release in RELEASES:
        found = lookup(code, release.name)
        if found.exists:
            return found.code
    return None


@cache
def _descriptions(release: str) -> dict[str, str]:
    # Read only by `describe` (the `explain` command): deciding needs no descriptions.
    return {item: text for item, _, _, text in (row.split("\t", 3) for row in _rows(release))}


def describe(code: str, release: str = RELEASES[-1].name) -> str | None:
    """Return a release's description of a code, or None when it does not have the code."""
    entry = lookup(code, release)
    return _descriptions(release).get(entry.code) if entry.exists else None
