"""Who is asking: the reviewer's identity from the authenticated request, and the CSRF tokens of their forms.

Never from a form field. Either an authenticating proxy in front says who it let in (a trusted
header: the workbench must then be reachable through that proxy only), or, for local use, a
reviewer signs in with a token from a file the operator wrote (one `reviewer-id token` a line)
and gets a signed session cookie. The cookie and the CSRF tokens are HMACs under a key made anew
each time the workbench starts, so a restart signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

REVIEWER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}")
"""The contract's workforce id shape (`ReviewerId`)."""
COOKIE = "claims_review_session"


def read_tokens(path: Path) -> dict[str, str]:
    """Token -> reviewer id, from a file of `reviewer-id token` lines (comments with #).

    Raises:
        ValueError: a line is not a reviewer id and a token of at least 16 characters.
    """
    tokens: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2 or not REVIEWER_ID.fullmatch(parts[0]) or len(parts[1]) < 16:
            raise ValueError(f"{path}:{number}: expected 'reviewer-id token' (a token of 16 or more characters)")
        tokens[parts[1]] = parts[0]
    return tokens


@dataclass
class Identity:
    """How requests are authenticated, and the key their cookies and CSRF tokens are signed with."""

    trusted_header: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        if self.trusted_header is None and not self.tokens:
            raise ValueError("no way to know the reviewer: give a trusted header or a token file")

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def reviewer(self, request: web.Request) -> str | None:
        """The authenticated reviewer's id, or None."""
        if self.trusted_header is not None:
            claimed = request.headers.get(self.trusted_header, "")
            return claimed if REVIEWER_ID.fullmatch(claimed) else None
        cookie = request.cookies.get(COOKIE, "")
        reviewer, _, signature = cookie.rpartition(".")
        if reviewer and hmac.compare_digest(signature, self._sign(f"session|{reviewer}")):
            return reviewer
        return None

    def sign_in(self, token: str, response: web.StreamResponse) -> str | None:
        """Set the session cookie for a known token; return the reviewer id (None: unknown token)."""
        reviewer = next((who for known, who in self.tokens.items() if hmac.compare_digest(known, token)), None)
        if reviewer is not None:
            value = f"{reviewer}.{self._sign(f'session|{reviewer}')}"
            response.set_cookie(COOKIE, value, httponly=True, samesite="Strict", path="/")
        return reviewer

    def csrf(self, reviewer: str, form: str) -> str:
        """The CSRF token a reviewer's form carries (bound to the reviewer and the form's target)."""
        return self._sign(f"csrf|{reviewer}|{form}")

    def csrf_ok(self, reviewer: str, form: str, token: str) -> bool:
        """Whether a posted CSRF token is the one this reviewer's form was given."""
        return hmac.compare_digest(token, self.csrf(reviewer, form))
