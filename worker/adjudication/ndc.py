"""National Drug Code normalization to the HIPAA 11-digit 5-4-2 form."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

NORMALIZED_CACHED = 4_096
"""NDC spellings whose readings are kept: a line's NDC is read by the core and again for its
duplicate fingerprint, and claims name few distinct products."""


@dataclass(frozen=True, slots=True)
class NormalizedNdc:
    """An NDC as 11 digits, or the candidates when the sender's form was ambiguous."""

    candidates: tuple[str, ...]
    """Every 11-digit reading of the input: one for a hyphenated or 11-digit NDC,
    three for bare 10 digits (which segment was padded cannot be known)."""

    @property
    def unique(self) -> str | None:
        """The 11-digit NDC when the input could be read one way only."""
        return self.candidates[0] if len(self.candidates) == 1 else None


@lru_cache(maxsize=NORMALIZED_CACHED)
def normalize(ndc: str) -> NormalizedNdc:
    """Read an NDC in any 10- or 11-digit form as 11 digits (5-4-2).

    4-4-2 pads the labeler, 5-3-2 the product, 5-4-1 the package. Bare 10 digits
    could be any of the three, so all three readings are returned.

    Args:
        ndc: the NDC as sent, hyphenated or bare.

    Returns:
        The 11-digit reading(s); none when the shape is not an NDC.
    """
    parts = ndc.split("-")
    if len(parts) == 3 and all(part.isdigit() for part in parts):
        labeler, product, package = parts
        shape = (len(labeler), len(product), len(package))
        padded = {
            (4, 4, 2): "0" + labeler + product + package,
            (5, 3, 2): labeler + "0" + product + package,
            (5, 4, 1): labeler + product + "0" + package,
            (5, 4, 2): labeler + product + package,
        }.get(shape)
        return NormalizedNdc((padded,) if padded else ())
    if ndc.isdigit() and len(ndc) == 11:
        return NormalizedNdc((ndc,))
    if ndc.isdigit() and len(ndc) == 10:
        return NormalizedNdc(("0" + ndc, ndc[:5] + "0" + ndc[5:], ndc[:9] + "0" + ndc[9:]))
    return NormalizedNdc(())


def product_of(ndc11: str) -> str:
    """Return the labeler-product part (first 9 digits) of an 11-digit NDC."""
    return ndc11[:9]


@dataclass(frozen=True, slots=True)
class Resolution:
    """How an NDC as sent reads against the products the policy knows."""

    ndc11: str | None
    """The 11-digit NDC when it can be read one way; None when absent, malformed or ambiguous."""
    malformed: bool = False
    """True when the NDC cannot be read: not an NDC shape, or bare 10 digits whose
    readings match more than one known product."""


def resolve(ndc: str, known_products: Collection[str]) -> Resolution:
    """Resolve an NDC to one 11-digit form, using known products to settle ambiguity.

    A bare 10-digit NDC is read as the one reading that is a known product. When
    no reading is known, it is some other drug (the first reading is kept for the
    record); when several are, it cannot be identified and counts as malformed.

    Args:
        ndc: the NDC as sent.
        known_products: 9-digit labeler-product codes the policy recognises.

    Returns:
        The resolution.
    """
    normalized = normalize(ndc)
    if not normalized.candidates:
        return Resolution(None, malformed=True)
    if normalized.unique is not None:
        return Resolution(normalized.unique)
    matches = [candidate for candidate in normalized.candidates if product_of(candidate) in known_products]
    if len(matches) == 1:
        return Resolution(matches[0])
    if not matches:
        return Resolution(normalized.candidates[0])
    return Resolution(None, malformed=True)
