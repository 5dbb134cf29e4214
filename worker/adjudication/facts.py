"""Facts about one line that the rules read, derived once per line.

The facts nearly every line reaches (its NDC read as 11 digits, its diagnoses in
the code set) are derived when the line's facts are made; the prior authorization
match, which few rules read, on first use. Claim-wide facts are derived once per
claim and shared by its lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING

from worker.adjudication.icd10cm import DiagnosisCode, lookup, nearest_release, release_for
from worker.adjudication.model import Claim, Line, LineDecision, OtherPayer, PriorAuthorization
from worker.adjudication.ndc import Resolution, normalize, product_of, resolve
from worker.adjudication.npi import npi_valid

if TYPE_CHECKING:
    from worker.adjudication.policy import Policy

NO_COMPANIONS: Mapping[int, LineDecision] = MappingProxyType({})
"""The other lines' decisions before any is made."""

_NO_UNITS = Decimal(0)

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

    __slots__ = (
        "_diagnoses",
        "_governed",
        "_service_dates",
        "authorization_used",
        "claim",
        "duplicates",
        "medicare_primary",
        "npi_valid",
    )

    def __init__(
        self, claim: Claim, duplicates: Mapping[int, str], authorization_used: Mapping[str, Decimal] | None = None
    ) -> None:
        self.claim = claim
        self.duplicates = duplicates
        """Line number -> the claim (and line) it exactly repeats, as the caller's history knows it."""
        self.authorization_used: dict[str, Decimal] = dict(authorization_used or {})
        """Authorization id -> units used so far: by the member's earlier claims (the caller's
        history), then by this claim's lines as the engine approves them on it, in line order."""
        self.medicare_primary: OtherPayer | None = next(
            (p for p in claim.other_payers if p.payer_type == "medicare" and p.payer_sequence == "primary"), None
        )
        """The other-payer entry showing Medicare primary, if any."""
        self.npi_valid = npi_valid(claim.provider_npi)
        """The provider's NPI is 10 digits with a right check digit."""
        self._service_dates: dict[int, date] | None = None
        self._diagnoses: dict[str, tuple[DiagnosisCode, ...]] = {}
        self._governed: dict[str, frozenset[int]] = {}

    def diagnoses(self, release: str) -> tuple[DiagnosisCode, ...]:
        """What an ICD-10-CM release says of each of the claim's diagnoses, in claim order."""
        found = self._diagnoses.get(release)
        if found is None:
            found = self._diagnoses[release] = tuple(lookup(code, release) for code in self.claim.diagnoses)
        return found

    def governed(self, policy: Policy) -> frozenset[int]:
        """Numbers of the lines a version of the policy could govern (its data checks decide only these).

        A drug line of the policy (a known product of its drug, or a J3490 line whose drug is not
        identified yet: no NDC, one that cannot be read, or one unknown to the reference data
        whose description names the drug), and the companion lines (administration) on the
        same date of service as one. Not a line of an excluded route or of a drug another policy owns.
        """
        found = self._governed.get(policy.version)
        if found is None:
            found = self._governed[policy.version] = _governed_lines(self.claim, policy)
        return found

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
        "_used_up",
        "claim",
        "claim_facts",
        "code_set",
        "code_set_in_force",
        "companions",
        "diagnoses",
        "duplicate_of",
        "line",
        "ndc",
        "ndc11",
        "ndc_malformed",
        "ndc_product",
        "policy",
        "reasons",
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
        self._used_up: tuple[PriorAuthorization, Decimal] | None = None
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
        if policy.icd10cm == "date_of_service":
            release = release_for(line.service_date)
            self.code_set_in_force = release is not None
            self.code_set: str = (release or nearest_release(line.service_date)).name
            """The ICD-10-CM release the line's diagnoses are read in (the nearest when none is in force)."""
        else:  # a version that names one release for every date (revision 1 read FY2026 so)
            self.code_set_in_force, self.code_set = True, policy.icd10cm
        codes = claim.diagnoses(self.code_set)
        pointers = line.diagnosis_pointers
        self.diagnoses: tuple[DiagnosisCode, ...] = (
            tuple(codes[pointer - 1] for pointer in pointers if 0 < pointer <= len(codes)) if pointers else codes
        )
        """The diagnoses checked for validity: those the line points to, all of the claim's when none."""
        principal_only = not pointers and policy.reason_diagnoses == "pointed_or_principal"
        self.reasons: tuple[DiagnosisCode, ...] = codes[:1] if principal_only else self.diagnoses
        """The line's reason: the diagnoses it points to, the principal (first) one when it points to
        none (revision 1 read every diagnosis of the claim then)."""

    @property
    def governed(self) -> bool:
        """The policy could govern the line (see `ClaimFacts.governed`)."""
        return self.line.line_number in self.claim_facts.governed(self.policy)

    @property
    def ndc_certain(self) -> str | None:
        """The line's 11-digit NDC when it reads one way only (or one way as a known product)."""
        if self.ndc11 is None or self.line.ndc is None:
            return None
        if normalize(self.line.ndc).unique is not None or self.ndc_product in self.policy.known_products:
            return self.ndc11
        return None

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

    def units_used_before(self, auth: PriorAuthorization) -> Decimal:
        """Units of an authorization used before this line: by earlier claims and this claim's earlier lines."""
        return self.claim_facts.authorization_used.get(auth.auth_id, _NO_UNITS)

    @property
    def used_up_authorization(self) -> tuple[PriorAuthorization, Decimal] | None:
        """An authorization that would cover the line but for the units already used, with those units.

        Revision 3 (item 12): the first such authorization, when none covers the line; its units
        are the evidence of the rule that decides the line instead.
        """
        if not self._authorization_known:
            self._authorization = self._find_authorization()
            self._authorization_known = True
        return self._used_up if self._authorization is None else None

    def _find_authorization(self) -> PriorAuthorization | None:
        total = self.policy.history.authorized_units == "total"
        for auth in self.claim.prior_authorizations:
            if auth.status != "approved":
                continue
            if not auth.start_date <= self.line.service_date <= auth.end_date:
                continue
            if not total and auth.authorized_units is not None and self.line.units > auth.authorized_units:
                continue
            if self.policy.prior_auth_match == "drug":
                if not self._auth_identifies_drug(auth):
                    continue
            elif not self._auth_matches_code_or_ndc(auth):
                continue
            if total and auth.authorized_units is not None:
                # Revision 3: the units are a total, and the line must fit in what is left of it.
                used = self.units_used_before(auth)
                if self.line.units > auth.authorized_units - used:
                    if self._used_up is None:
                        self._used_up = (auth, used)
                    continue
            return auth
        return None

    def _auth_identifies_drug(self, auth: PriorAuthorization) -> bool:
        # Revision 2: an authorization that names an NDC covers only that drug (the same
        # labeler-product); one naming only the procedure code covers a line of that code,
        # which the rules reach only once the line is in scope as the policy's drug.
        if auth.ndc is not None:
            if self.ndc_product is None:
                return False
            reading = resolve(auth.ndc, {self.ndc_product})
            return reading.ndc11 is not None and product_of(reading.ndc11) == self.ndc_product
        return auth.procedure_code is not None and auth.procedure_code == self.line.procedure_code

    def _auth_matches_code_or_ndc(self, auth: PriorAuthorization) -> bool:
        # Revision 1: the procedure code alone, or the exact NDC, matched.
        if auth.procedure_code is not None and auth.procedure_code == self.line.procedure_code:
            return True
        if auth.ndc is not None and self.ndc11 is not None:
            return resolve(auth.ndc, {product_of(self.ndc11)}).ndc11 == self.ndc11
        return False


def _names_drug(description: str | None, names: Iterable[re.Pattern[str]]) -> bool:
    return description is not None and any(name.search(description) for name in names)


def _governed_lines(claim: Claim, policy: Policy) -> frozenset[int]:
    scope = policy.governed_lines
    if scope is None:  # a version without the data-check scope (revision 1): every line
        return frozenset(line.line_number for line in claim.lines)
    drug_products = frozenset().union(*(policy.products(name) for name in scope.drug_products))
    excluded = frozenset().union(*(policy.products(name) for name in scope.excluded_products))
    unidentified = policy.procedure_sets[scope.unidentified_drug_procedures]
    companions = policy.procedure_sets[scope.companion_procedures]
    other_policy = policy.procedure_sets[scope.excluded_procedures] if scope.excluded_procedures else None
    names = policy.drug_name_patterns
    drug_days: set[date] = set()
    drug_lines: set[int] = set()
    for line in claim.lines:
        if line.route in scope.excluded_routes or (other_policy is not None and line.procedure_code in other_policy):
            continue
        product: str | None = None
        malformed = False
        if line.ndc is not None:
            _, _, malformed, product = _read_ndc(line.ndc, policy.known_products)
        if product in excluded:
            continue
        unknown = product not in policy.known_products
        if product in drug_products or (
            line.procedure_code in unidentified
            and (line.ndc is None or malformed or (unknown and _names_drug(line.drug_description, names)))
        ):
            drug_lines.add(line.line_number)
            drug_days.add(line.service_date)
    followers = {
        line.line_number for line in claim.lines if line.procedure_code in companions and line.service_date in drug_days
    }
    return frozenset(drug_lines | followers)
