"""Facts about one line that the rules read, derived once per line.

The facts nearly every line reaches (its NDC read as 11 digits, its diagnoses in
the code set) are derived when the line's facts are made; the prior authorization
match, which few rules read, on first use. Claim-wide facts are derived once per
claim and shared by its lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING

from worker.adjudication.icd10cm import DiagnosisCode, lookup
from worker.adjudication.model import Claim, Line, LineDecision, OtherPayer, PriorAuthorization
from worker.adjudication.ndc import Resolution, product_of, resolve

if TYPE_CHECKING:
    from worker.adjudication.policy import Policy

NO_COMPANIONS: Mapping[int, LineDecision] = MappingProxyType({})
"""The other lines' decisions before any is made."""

NdcReading = tuple[Resolution, str | None, bool, str | None]
"""An NDC's resolution, its 11 digits, whether it is malformed, and its labeler-product code."""


@lru_cache(maxsize=8192)
def _read_ndc(ndc: str, known_products: frozenset[str]) -> NdcReading:
    # The same few NDCs come back on line after line; reading one takes longer than finding it here.
    resolution = resolve(ndc, known_products)
    ndc11 = resolution.ndc11
    return resolution, ndc11, resolution.malformed, product_of(ndc11) if ndc11 is not None else None


class ClaimFacts:
    """Facts of the whole claim, shared by its lines."""

    __slots__ = ("_service_dates", "claim", "diagnoses", "duplicates", "medicare_primary")

    def __init__(self, claim: Claim, duplicates: Mapping[int, str]) -> None:
        self.claim = claim
        self.duplicates = duplicates
        """Line number -> the claim (and line) it exactly repeats, as the caller's history knows it."""
        self.diagnoses: tuple[DiagnosisCode, ...] = tuple(lookup(code) for code in claim.diagnoses)
        """What the code set says of each of the claim's diagnoses, in claim order."""
        self.medicare_primary: OtherPayer | None = next(
            (p for p in claim.other_payers if p.payer_type == "medicare" and p.payer_sequence == "primary"), None
        )
        """The other-payer entry showing Medicare primary, if any."""
        self._service_dates: dict[int, date] | None = None

    @property
    def service_dates(self) -> dict[int, date]:
        """Line number -> date of service (made on first use: few claims need it)."""
        if self._service_dates is None:
            self._service_dates = {line.line_number: line.service_date for line in self.claim.lines}
        return self._service_dates

    def procedures_on(self, line: Line) -> tuple[tuple[int, str], ...]:
        """(line number, procedure code) of the other lines on the same date of service."""
        return tuple(
            (other.line_number, other.procedure_code)
            for other in self.claim.lines
            if other.line_number != line.line_number
            and other.procedure_code is not None
            and other.service_date == line.service_date
        )


class LineFacts:
    """The facts of one line under one policy version."""

    __slots__ = (
        "_authorization",
        "_authorization_known",
        "claim",
        "claim_facts",
        "companions",
        "diagnoses",
        "duplicate_of",
        "line",
        "ndc",
        "ndc11",
        "ndc_malformed",
        "ndc_product",
        "policy",
        "version_in_force",
    )

    def __init__(
        self,
        claim: ClaimFacts,
        line: Line,
        policy: Policy,
        *,
        version_in_force: bool,
        companions: Mapping[int, LineDecision] = NO_COMPANIONS,
    ) -> None:
        self.claim_facts = claim
        self.claim = claim.claim
        self.line = line
        self.policy = policy
        self.version_in_force = version_in_force
        self.companions = companions
        """The decisions of the claim's other lines: set by the engine before it decides a line
        whose rule waits for them (`Rule.needs_companions`), empty until then."""
        self._authorization: PriorAuthorization | None = None
        self._authorization_known = False
        self.duplicate_of: str | None = claim.duplicates.get(line.line_number)
        """The other claim line this line exactly repeats, if any."""
        self.ndc: Resolution | None
        """The line's NDC read as 11 digits; None when the line has none."""
        self.ndc11: str | None
        self.ndc_malformed: bool
        self.ndc_product: str | None
        """The 9-digit labeler-product code of the line's NDC, when it can be read."""
        if line.ndc is None:
            self.ndc, self.ndc11, self.ndc_malformed, self.ndc_product = None, None, False, None
        else:
            self.ndc, self.ndc11, self.ndc_malformed, self.ndc_product = _read_ndc(line.ndc, policy.known_products)
        self.diagnoses: tuple[DiagnosisCode, ...] = self._pointed(claim.diagnoses, line.diagnosis_pointers)
        """The diagnoses the line points to (all of the claim's when it points to none)."""

    @staticmethod
    def _pointed(codes: tuple[DiagnosisCode, ...], pointers: tuple[int, ...]) -> tuple[DiagnosisCode, ...]:
        if not pointers:
            return codes
        return tuple(codes[pointer - 1] for pointer in pointers if 0 < pointer <= len(codes))

    @property
    def covering_authorization(self) -> PriorAuthorization | None:
        """The first approved authorization that covers the line, by the rule of DETERMINATION.md 4.

        It covers when approved, its procedure code (or NDC) matches the line's, the
        date of service falls within its dates, and the units do not exceed it.
        """
        if not self._authorization_known:
            self._authorization = self._find_authorization()
            self._authorization_known = True
        return self._authorization

    def _find_authorization(self) -> PriorAuthorization | None:
        for auth in self.claim.prior_authorizations:
            if auth.status != "approved":
                continue
            if not auth.start_date <= self.line.service_date <= auth.end_date:
                continue
            if auth.authorized_units is not None and self.line.units > auth.authorized_units:
                continue
            if self._auth_matches(auth):
                return auth
        return None

    def _auth_matches(self, auth: PriorAuthorization) -> bool:
        if auth.procedure_code is not None and auth.procedure_code == self.line.procedure_code:
            return True
        if auth.ndc is not None and self.ndc11 is not None:
            return resolve(auth.ndc, {product_of(self.ndc11)}).ndc11 == self.ndc11
        return False
