"""Facts about one line that the rules read, derived once per line.

Each fact is computed on first use and kept (`cached_property`): a rule list
reads the same fact many times, and most lines stop at the first few rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from worker.adjudication.icd10cm import DiagnosisCode, lookup
from worker.adjudication.model import Claim, Line, LineDecision, OtherPayer, PriorAuthorization
from worker.adjudication.ndc import Resolution, product_of, resolve
from worker.adjudication.policy import Policy


class CompanionsPending(Exception):
    """A rule asked for other lines' decisions before they were made: decide this line later."""


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """Facts of the whole claim, shared by its lines."""

    claim: Claim
    duplicates: Mapping[int, str]
    """Line number -> the claim (and line) it exactly repeats, as the caller's history knows it."""

    def procedures_on(self, line: Line) -> tuple[tuple[int, str], ...]:
        """(line number, procedure code) of the other lines on the same date of service."""
        return tuple(
            (other.line_number, other.procedure_code)
            for other in self.claim.lines
            if other.line_number != line.line_number
            and other.procedure_code is not None
            and other.service_date == line.service_date
        )

    def medicare_primary(self) -> OtherPayer | None:
        """The other-payer entry showing Medicare primary, if any."""
        for payer in self.claim.other_payers:
            if payer.payer_type == "medicare" and payer.payer_sequence == "primary":
                return payer
        return None


class LineFacts:
    """The facts of one line under one policy version."""

    def __init__(
        self,
        claim: ClaimFacts,
        line: Line,
        policy: Policy,
        *,
        version_in_force: bool,
        companions: Mapping[int, LineDecision] | None = None,
    ) -> None:
        self.claim_facts = claim
        self.claim = claim.claim
        self.line = line
        self.policy = policy
        self.version_in_force = version_in_force
        self._companions = companions

    @property
    def companions(self) -> Mapping[int, LineDecision]:
        """The decisions of the claim's other lines.

        Raises:
            CompanionsPending: in the first pass, before those decisions exist.
        """
        if self._companions is None:
            raise CompanionsPending
        return self._companions

    @property
    def duplicate_of(self) -> str | None:
        """The other claim line this line exactly repeats, if any."""
        return self.claim_facts.duplicates.get(self.line.line_number)

    @cached_property
    def ndc(self) -> Resolution | None:
        """The line's NDC read as 11 digits; None when the line has none."""
        if self.line.ndc is None:
            return None
        return resolve(self.line.ndc, self.policy.known_products)

    @cached_property
    def ndc_product(self) -> str | None:
        """The 9-digit labeler-product code of the line's NDC, when it can be read."""
        if self.ndc is None or self.ndc.ndc11 is None:
            return None
        return product_of(self.ndc.ndc11)

    @cached_property
    def diagnoses(self) -> tuple[DiagnosisCode, ...]:
        """The diagnoses the line points to (all of the claim's when it points to none)."""
        codes = self.claim.diagnoses
        if self.line.diagnosis_pointers:
            picked = [codes[pointer - 1] for pointer in self.line.diagnosis_pointers if 0 < pointer <= len(codes)]
        else:
            picked = list(codes)
        return tuple(lookup(code) for code in picked)

    @cached_property
    def covering_authorization(self) -> PriorAuthorization | None:
        """The first approved authorization that covers the line, by the rule of DETERMINATION.md 4.

        It covers when approved, its procedure code (or NDC) matches the line's, the
        date of service falls within its dates, and the units do not exceed it.
        """
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
        if auth.ndc is not None and self.ndc is not None and self.ndc.ndc11 is not None:
            known = {product_of(self.ndc.ndc11)}
            return resolve(auth.ndc, known).ndc11 == self.ndc.ndc11
        return False
