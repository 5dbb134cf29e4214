"""Who is asking: the reviewer and their roles from the authenticated request, sessions, and CSRF tokens.

Never from a form field. Either an authenticating proxy in front says who it let in (a trusted
header, with the reviewer's roles in another), proving it is the proxy with a shared secret in
a third header (the workbench refuses to listen beyond loopback in this mode without one), or,
for local use, a reviewer signs in with their id and a token from a file the operator wrote
(`reviewer-id token role[,role...]` a line, readable by its owner only) and gets a session.

Sessions are kept on the server (a random id in a signed cookie): they expire, and signing out
ends them. Sign-in is throttled per reviewer id and per address, and its form carries a CSRF
token bound to a pre-session cookie (no login CSRF). The keys are made anew each time the
workbench starts, so a restart signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import stat
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

REVIEWER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}")
"""The contract's workforce id shape (`ReviewerId`)."""
ROLE = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""The contract's reviewer role shape (`ReviewerRole`)."""
COOKIE = "claims_review_session"
LOGIN_COOKIE = "claims_review_login"
"""The pre-session cookie the sign-in form's CSRF token is bound to."""
SESSION_SECONDS = 8 * 3600
"""A session lasts a working day; then the reviewer signs in again."""
PROXY_SECRET_HEADER = "X-Workbench-Proxy-Secret"  # noqa: S105 - a header name, not a secret
"""Where the authenticating proxy proves itself in trusted-header mode."""


@dataclass(frozen=True, slots=True)
class Reviewer:
    """An authenticated reviewer: their workforce id and roles."""

    reviewer_id: str
    roles: tuple[str, ...]


def read_tokens(path: Path) -> dict[str, Reviewer]:
    """Token -> reviewer, from a file of `reviewer-id token role[,role...]` lines (comments with #).

    Raises:
        ValueError: the file is readable or writable by others than its owner, or a line is not a
            reviewer id, a token of at least 16 characters and optional roles.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(f"{path}: the tokens file is open to others (mode {mode:04o}); chmod 600 it")
    tokens: dict[str, Reviewer] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        roles = tuple(parts[2].split(",")) if len(parts) == 3 else ()
        if (
            len(parts) not in (2, 3)
            or not REVIEWER_ID.fullmatch(parts[0])
            or len(parts[1]) < 16
            or not all(ROLE.fullmatch(role) for role in roles)
        ):
            raise ValueError(
                f"{path}:{number}: expected 'reviewer-id token role[,role...]' (a token of 16+ characters)"
            )
        tokens[parts[1]] = Reviewer(parts[0], roles)
    return tokens


def read_secret(path: Path) -> str:
    """The proxy's shared secret from a file readable by its owner only (32 characters or more)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(f"{path}: the proxy secret file is open to others (mode {mode:04o}); chmod 600 it")
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < 32:
        raise ValueError(f"{path}: the proxy secret must be 32 characters or more")
    return secret


@dataclass
class Throttle:
    """Failed sign-ins per key (a reviewer id, an address) within a window; past the limit, refused."""

    limit: int
    window_seconds: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, key: str) -> bool:
        """Whether the key has failed `limit` times within the window."""
        failures = self._failures.get(key)
        if not failures:
            return False
        cutoff = self.clock() - self.window_seconds
        while failures and failures[0] < cutoff:
            failures.popleft()
        return len(failures) >= self.limit

    def failed(self, key: str) -> None:
        """Count a failure."""
        self._failures.setdefault(key, deque(maxlen=self.limit * 4)).append(self.clock())
        if len(self._failures) > 100_000:  # bounded against a scan of addresses
            self._failures.pop(next(iter(self._failures)))


@dataclass
class Identity:
    """How requests are authenticated, sessions, throttles, and the key CSRF tokens are signed with."""

    trusted_header: str | None = None
    roles_header: str = "X-Forwarded-Roles"
    proxy_secret: str | None = None
    tokens: dict[str, Reviewer] = field(default_factory=dict)
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    session_seconds: float = SESSION_SECONDS
    clock: Callable[[], float] = time.monotonic
    per_reviewer: Throttle = field(default_factory=lambda: Throttle(limit=5))
    per_address: Throttle = field(default_factory=lambda: Throttle(limit=20))
    _sessions: dict[str, tuple[Reviewer, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trusted_header is None and not self.tokens:
            raise ValueError("no way to know the reviewer: give a trusted header or a token file")

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    @property
    def local_sessions(self) -> bool:
        """Reviewers sign in here (tokens), so they can sign out here too."""
        return self.trusted_header is None

    def reviewer(self, request: web.Request) -> Reviewer | None:
        """The authenticated reviewer, or None."""
        if self.trusted_header is not None:
            if self.proxy_secret is not None and not hmac.compare_digest(
                request.headers.get(PROXY_SECRET_HEADER, "").encode(), self.proxy_secret.encode()
            ):
                return None  # not from the proxy: its word about who is asking counts for nothing
            claimed = request.headers.get(self.trusted_header, "")
            if not REVIEWER_ID.fullmatch(claimed):
                return None
            roles = tuple(
                role.strip()
                for role in request.headers.get(self.roles_header, "").split(",")
                if ROLE.fullmatch(role.strip())
            )
            return Reviewer(claimed, roles)
        session = self._session_id(request)
        if session is None:
            return None
        held = self._sessions.get(session)
        if held is None:
            return None
        reviewer, expires = held
        if self.clock() >= expires:
            del self._sessions[session]
            return None
        return reviewer

    def _session_id(self, request: web.Request) -> str | None:
        session, _, signature = request.cookies.get(COOKIE, "").rpartition(".")
        if session and hmac.compare_digest(signature, self._sign(f"session|{session}")):
            return session
        return None

    def throttled(self, reviewer_id: str, address: str) -> bool:
        """Whether sign-in is refused for now, for this reviewer id or this address."""
        return self.per_reviewer.blocked(reviewer_id) or self.per_address.blocked(address)

    def sign_in(
        self, reviewer_id: str, token: str, address: str, response: web.StreamResponse, *, secure: bool
    ) -> Reviewer | None:
        """Start a session for a known token of this reviewer; None (and a failure counted) otherwise."""
        found = next((who for known, who in self.tokens.items() if hmac.compare_digest(known, token)), None)
        if found is None or not hmac.compare_digest(found.reviewer_id, reviewer_id):
            self.per_reviewer.failed(reviewer_id)
            self.per_address.failed(address)
            return None
        session = secrets.token_urlsafe(24)
        self._sessions[session] = (found, self.clock() + self.session_seconds)
        response.set_cookie(
            COOKIE,
            f"{session}.{self._sign(f'session|{session}')}",
            httponly=True,
            samesite="Strict",
            path="/",
            secure=secure,
            max_age=int(self.session_seconds),
        )
        response.del_cookie(LOGIN_COOKIE, path="/login")
        return found

    def sign_out(self, request: web.Request, response: web.StreamResponse) -> None:
        """End the request's session on the server and clear its cookie."""
        session = self._session_id(request)
        if session is not None:
            self._sessions.pop(session, None)
        response.del_cookie(COOKIE, path="/")

    def login_csrf(self, request: web.Request, response: web.StreamResponse, *, secure: bool) -> str:
        """The sign-in form's CSRF token, bound to a pre-session cookie (set here when missing)."""
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if len(nonce) < 16:
            nonce = secrets.token_urlsafe(24)
            response.set_cookie(
                LOGIN_COOKIE, nonce, httponly=True, samesite="Strict", path="/login", secure=secure, max_age=3600
            )
        return self._sign(f"login|{nonce}")

    def login_csrf_ok(self, request: web.Request, token: str) -> bool:
        """Whether a posted sign-in form carries the token of this browser's pre-session cookie."""
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        return len(nonce) >= 16 and hmac.compare_digest(token, self._sign(f"login|{nonce}"))

    def csrf(self, reviewer: str, form: str) -> str:
        """The CSRF token a reviewer's form carries (bound to the reviewer and the form's target)."""
        return self._sign(f"csrf|{reviewer}|{form}")

    def csrf_ok(self, reviewer: str, form: str, token: str) -> bool:
        """Whether a posted CSRF token is the one this reviewer's form was given."""
        return hmac.compare_digest(token, self.csrf(reviewer, form))
