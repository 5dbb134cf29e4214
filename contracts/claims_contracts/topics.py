"""The default topic names: the only place they are spelled."""

from __future__ import annotations

from typing import Final

CLAIMS_SUBMITTED: Final = "claims.submitted"
"""Input: claim events v1, keyed by claim id."""

CLAIMS_ADJUDICATED: Final = "claims.adjudicated"
"""Output: adjudication events, keyed by claim id."""

CLAIMS_PENDED: Final = "claims.pended"
"""Output: pend-for-review events, keyed by claim id."""

CLAIMS_DEAD_LETTER: Final = "claims.dead-letter"
"""Output: dead-letter records for input that could not be read."""

CLAIMS_REVIEWS: Final = "claims.reviews"
"""Input: review decisions v1 on pended claims, keyed by member id."""
