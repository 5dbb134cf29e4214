"""ICD-10-CM validity and hierarchy, answered by `simple-icd-10-cm`.

The library ships the CMS code set (the April 2026 release in the pinned
version) and its tabular hierarchy; nothing here is a hand-typed code list.
Look-ups are memoised in a bounded cache: the code set is immutable for the
life of the process, so the cache changes speed, never answers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

with warnings.catch_warnings():
    # The library reads its data with importlib.resources.read_text, deprecated in 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10_cm as _icd

CODE_SET_RELEASE = "ICD-10-CM FY2026 (April 1, 2026 update), simple-icd-10-cm 1.5.0"
"""The code set release the answers come from; recorded in the docs and audit."""


@dataclass(frozen=True, slots=True)
class DiagnosisCode:
    """What the code set says of one code."""

    code: str
    """The code in dotted form when it exists, else as given."""
    exists: bool
    """True when the code is in the code set (a chapter, block, category or code)."""
    billable: bool
    """True when the code is a leaf: valid on a claim. A category such as F42 is not."""
    lineage: tuple[str, ...]
    """The code itself, then its ancestors nearest first (blocks and chapters included)."""

    @property
    def category(self) -> str:
        """The 3-character category, e.g. F32 for F32.A."""
        return self.code.replace(".", "")[:3]


@lru_cache(maxsize=16384)
def lookup(code: str) -> DiagnosisCode:
    """Look up one ICD-10-CM code, with or without its dot.

    Args:
        code: the code as sent.

    Returns:
        What the code set says of it; a code it does not know has `exists` False.
    """
    upper = code.strip().upper()
    if not upper or not _icd.is_valid_item(upper):
        return DiagnosisCode(code=upper, exists=False, billable=False, lineage=(upper,))
    dotted = _icd.add_dot(upper) if "-" not in upper and not upper.isdigit() else upper
    return DiagnosisCode(
        code=dotted,
        exists=True,
        billable=bool(_icd.is_leaf(dotted)),
        lineage=(dotted, *_icd.get_ancestors(dotted)),
    )


def describe(code: str) -> str | None:
    """Return the code set's description of a code, or None when it does not exist."""
    entry = lookup(code)
    return str(_icd.get_description(entry.code)) if entry.exists else None
