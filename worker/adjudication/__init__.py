"""The pure determination core: claims in, decisions out, by policy data.

No I/O, no clock, no logging, no framework: `worker.policy_files` reads the
policy files, `worker.translate` maps the wire contract on and off these models.
"""

from worker.adjudication.book import PolicyBook
from worker.adjudication.engine import adjudicate, output_event_id
from worker.adjudication.model import (
    Claim,
    Coverage,
    Decision,
    Line,
    LineDecision,
    OtherPayer,
    Outcome,
    PriorAuthorization,
    RuleHit,
)
from worker.adjudication.policy import CodeTable, Policy, PolicyError, parse_code_table, parse_policy

__all__ = [
    "Claim",
    "CodeTable",
    "Coverage",
    "Decision",
    "Line",
    "LineDecision",
    "OtherPayer",
    "Outcome",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "PriorAuthorization",
    "RuleHit",
    "adjudicate",
    "output_event_id",
    "parse_code_table",
    "parse_policy",
]
